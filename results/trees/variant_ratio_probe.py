"""Probe: total cost of `balanced` under parameter variants, against the first variant, on many seeds.

The constrained reference of `trees-quality` costs 1.5-6 min per 20K build, which limits it to a few
seeds; a change that only reorders the root lottery (e.g. how the root trial ranks its seedings) needs
more seeds than that to tell from noise. This builds each variant on the synthetic data of
`trees-quality` (the seed drives the data and the builder) and reports, per size, the mean total cost
and the mean / median ratio to the first variant, with how many seeds it is worse / better on.
Run: python results/trees/variant_ratio_probe.py --sizes 5000,20000 --seeds 0-35 \
    --variants '[{"trial_eps": 0}, {}]' --out results/trees/trial_ratio_probe.md
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch

from bench.provenance import probe_header, write_markdown
from bench.speed.trees import synthetic
from seater.trees.balanced import build
from seater.trees.quality import tree_quality


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(v) for v in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,20000")
    ap.add_argument("--seeds", default="0-11", help="a range lo-hi or a comma list")
    ap.add_argument("--variants", default='[{"trial_eps": 0}, {}]', help="JSON list of balanced parameter dicts; the first is the reference")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = json.loads(args.variants)
    seeds = _seeds(args.seeds)
    lines = ["# balanced: total cost of parameter variants against the first", ""]
    lines += probe_header("results/trees/variant_ratio_probe.py", sys.argv[1:])
    lines += [f"- data: synthetic clustered embeddings (d = 64), k = 16, seeds {args.seeds}; total cost = `tree_quality` total_cost", ""]
    lines += ["| items | params | mean total cost | mean ratio | median ratio | worse / better seeds |", "|---:|---|---:|---:|---:|---:|"]
    for n in (int(v) for v in args.sizes.split(",")):
        costs = np.zeros((len(variants), len(seeds)))
        for j, seed in enumerate(seeds):
            x = synthetic(n, 64, seed)
            for i, params in enumerate(variants):
                costs[i, j] = tree_quality(build(x, 16, seed=seed, threads=args.threads, **params), x)["total_cost"]
        for i, params in enumerate(variants):
            r = costs[i] / costs[0]
            row = (f"| {n:,} | `{json.dumps(params)}` | {costs[i].mean():.4f} | {r.mean():.4f} | {np.median(r):.4f} | "
                   f"{int((r > 1 + 1e-9).sum())} / {int((r < 1 - 1e-9).sum())} |")
            print(row, flush=True)
            lines.append(row)
    write_markdown(lines, args.out)


if __name__ == "__main__":
    main()
