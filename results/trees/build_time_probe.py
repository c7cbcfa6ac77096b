"""Probe: where a 20K-item `balanced` build spends its time, and two ways to spend less that do not work.

Issue 5 asks for 200x constrained k-means at 20,000 items (about 0.36 s on the 2-core EPYC, where
constrained takes ~72 s). Three tables, all on `trees-quality`'s synthetic data (d = 64, k = 16),
builder defaults, nothing in the builder changed (functions are wrapped or monkeypatched here):
1. seconds per tree level and per stage (one build after a warm-up; stages nest, so rows overlap);
2. the Newton price schedule (`newton_fast` / `newton_hold`): best of 3 builds each, and whether
   the codes equal the defaults' (the assignment is exact, so the schedule may only change time);
3. from the 2nd k-means iteration on, repairing ``argmin_j cost - last exact duals`` (feasible or not)
   instead of cold Newton prices: seconds of both per assignment call, repair rounds, items the
   warm labels put off their cluster's size, and the cost difference (must be 0: both exact).
Run: python results/trees/build_time_probe.py --out results/trees/build_time_probe.md
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np
import torch

import seater.trees.assignment as assignment
import seater.trees.balanced as balanced
from bench.provenance import probe_header, write_markdown
from bench.speed.trees import synthetic

STAGES = {
    balanced: ("balanced_kmeans_level", "swap_refine", "bisection_seeds", "_kmeanspp", "approx_balanced_labels",
               "balanced_assignment_batched", "_costs", "_centroids", "_node_objective"),
    assignment: ("entropic_prices", "_bellman_ford", "_feasibility_moves", "_cancel_cycles", "_move_weights"),
}
SCHEDULES = [{}, {"newton_fast": 22, "newton_hold": 8}, {"newton_fast": 26, "newton_hold": 4},
             {"newton_fast": 20, "newton_hold": 6}, {"newton_fast": 18, "newton_hold": 8}]


def stage_table(x: np.ndarray) -> list[str]:
    seconds, calls = collections.defaultdict(float), collections.defaultdict(int)
    level = [-1]
    originals = []

    def timed(mod, name, marks_level=False):
        fn = getattr(mod, name)
        originals.append((mod, name, fn))

        def wrapper(*a, **kw):
            if marks_level:
                level[0] += 1
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            seconds[(level[0], name)] += time.perf_counter() - t0
            calls[(level[0], name)] += 1
            return out

        setattr(mod, name, wrapper)

    balanced.build(x, 16, seed=0)  # warm-up
    timed(balanced, "balanced_kmeans_restarts", marks_level=True)
    for mod, names in STAGES.items():
        for name in names:
            timed(mod, name)
    t0 = time.perf_counter()
    tree = balanced.build(x, 16, seed=0)
    total = time.perf_counter() - t0
    for mod, name, fn in originals:
        setattr(mod, name, fn)
    levels = ", ".join(f"{s:.3f}" for s in tree.build_info["level_seconds"])
    lines = [f"Build {total:.3f} s (levels {levels} s, timers included).", "",
             "| level | stage | s | calls |", "|---:|---|---:|---:|"]
    for key in sorted(seconds):
        lines.append(f"| {key[0]} | `{key[1]}` | {seconds[key]:.3f} | {calls[key]} |")
    return lines


def schedule_table(sizes: list[int], seeds: list[int]) -> list[str]:
    lines = ["| items | data seed | schedule | best of 3 s | codes |", "|---:|---:|---|---:|---|"]
    for n in sizes:
        for seed in seeds:
            x = synthetic(n, 64, seed)
            ref = None
            for cfg in SCHEDULES:
                balanced.build(x, 16, seed=0, **cfg)
                best = np.inf
                for _ in range(3):
                    t0 = time.perf_counter()
                    tree = balanced.build(x, 16, seed=0, **cfg)
                    best = min(best, time.perf_counter() - t0)
                same = "–" if ref is None else ("same" if np.array_equal(ref, tree.codes) else "DIFFERENT")
                ref = tree.codes if ref is None else ref
                name = ", ".join(f"{k} {v}" for k, v in cfg.items()) or "defaults (fast 22, hold 4)"
                lines.append(f"| {n:,} | {seed} | {name} | {best:.3f} | {same} |")
                print(lines[-1], flush=True)
    return lines


def warm_repair_table(x: np.ndarray) -> list[str]:
    """Both routes on every exact assignment of one build (the build itself follows the cold labels)."""
    solve = assignment.balanced_assignment_batched
    rows = []

    def both(cost, mask=None, prices=None, **kw):
        kw.pop("warm_steps", None), kw.pop("warm_eps", None)
        t0 = time.perf_counter()
        lab, p, info = solve(cost, mask, **kw)
        cold = time.perf_counter() - t0
        if prices is not None:  # the builder passes the last exact duals from the 2nd iteration on
            t0 = time.perf_counter()
            init = (cost - prices[:, None, :].to(cost.dtype)).argmin(2)
            lab_w, _, info_w = solve(cost, mask, init=init, **kw)
            warm = time.perf_counter() - t0
            k, q = cost.shape[2], mask.sum(1, keepdim=True) // cost.shape[2]
            sizes = torch.zeros(cost.shape[0], k, dtype=torch.long).scatter_add_(1, init, mask.long())
            off = int(((sizes - q - 1).clamp_min(0) + (q - sizes).clamp_min(0)).sum())
            dcost = float(((cost.gather(2, lab_w[..., None]) - cost.gather(2, lab[..., None])).squeeze(2) * mask).sum())
            rows.append(f"| {cost.shape[0]} x {int(mask.sum(1).max())} | {cold:.4f} | {warm:.4f} | "
                        f"{info['rounds']} / {info_w['rounds']} | {off} | {dcost:.3g} |")
        return lab, p, info

    balanced.balanced_assignment_batched = both
    try:
        balanced.build(x, 16, seed=0, warm_steps=1)  # warm_steps > 0: the builder hands over its last duals
    finally:
        balanced.balanced_assignment_batched = solve
    return ["| nodes x items | cold Newton + repair s | warm labels + repair s | repair rounds cold / warm | "
            "items off size (warm labels) | cost warm - cold |", "|---|---:|---:|---|---:|---:|", *rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--schedule-sizes", default="5000,20000")
    ap.add_argument("--schedule-seeds", default="0,1")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = synthetic(args.items, 64, 0)
    lines = ["# balanced: where a build's time goes, and two ways to cut it that do not", ""]
    lines += probe_header("results/trees/build_time_probe.py", sys.argv[1:])
    lines += [f"- data: synthetic clustered embeddings (d = 64), k = 16; {args.threads} torch threads; builder defaults", ""]
    lines += [f"## Stages of one {args.items:,}-item build", "", *stage_table(x), ""]
    lines += ["## Newton schedule", ""]
    lines += schedule_table([int(v) for v in args.schedule_sizes.split(",")], [int(v) for v in args.schedule_seeds.split(",")])
    lines += ["", f"## Warm labels + repair vs cold Newton, every exact assignment of one {args.items:,}-item build", ""]
    lines += warm_repair_table(x)
    write_markdown(lines, args.out)


if __name__ == "__main__":
    main()
