"""A/B: `balanced` with and without frozen items (the `freeze` parameter), alternating builds.

Data as the large-k notes in results/trees/README.md: standard normal coordinates times 1e6 (d = 32),
seed 0, 2 torch threads; every build is checked balanced and its total cost printed (freezing is
exact, so the costs agree up to float ties).
Run: python results/trees/large_k/freeze_ab.py --n 20000 --ks 16,64 --repeats 2 --out results/trees/large_k/freeze_ab_gaussian.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.provenance import provenance
from bench.speed.trees import _builders
from seater.trees.quality import tree_quality


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--ks", default="16,64")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    info = provenance("python results/trees/large_k/freeze_ab.py " + " ".join(sys.argv[1:]))
    x = (np.random.default_rng(0).standard_normal((args.n, 32)) * 1e6).astype(np.float32)
    build = _builders().get("balanced").factory
    lines = ["# balanced: freeze on / off, alternating builds", ""]
    lines += [f"- {key}: `{info[key]}`" for key in ("command", "commit", "hardware", "date")]
    lines += [f"- data: {args.n:,} items, N(0, 1) coordinates x 1e6, d = 32, seed 0; threads = 2", ""]
    lines += ["| k | freeze | run | s | total cost | balanced |", "|---:|---|---:|---:|---:|---|"]
    for k in (int(v) for v in args.ks.split(",")):
        for rep in range(args.repeats):
            for freeze in ("off", "on"):
                t0 = time.perf_counter()
                tree = build(x, k, seed=0, threads=2, freeze=freeze)
                secs = time.perf_counter() - t0
                cost = tree_quality(tree, x)["total_cost"]
                lines.append(f"| {k} | {freeze} | {rep + 1} | {secs:.2f} | {cost:.6g} | {'yes' if tree.is_balanced() else 'no'} |")
                print(lines[-1], flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
