"""Probe (not a builder option): other root seedings of `balanced`, six-seed quality vs constrained k-means.

usage: python results/trees/root_seeding_probe.py R PROBE KEEP [param=value ...]
R root restarts; after PROBE iterations on the seeding sample only the KEEP best per node go on (successive
halving; KEEP = 0: plain best-of-R, as the builder). Extra builder parameters as key=value. Prints the
median cost ratio balanced / constrained at 5K and 20K items over seeds 0-2 and 3-5 (constrained costs
reused from results/trees/balanced_quality_synthetic*.json) and the summed balanced build seconds.
"""

import statistics
import sys

import torch

import seater.trees.balanced as B
from bench.speed.trees import TreeQualityConfig, run_tree_quality

R, PROBE, KEEP = map(int, sys.argv[1:4])
extra = {k: (float(v) if any(c in v for c in ".e") else int(v)) for k, v in (a.split("=", 1) for a in sys.argv[4:])}
_plain = B._restarts


def _halving(xl, mask, k, gen, params, max_iter, r):
    if r <= 1 or KEEP <= 0 or PROBE >= max_iter:
        return _plain(xl, mask, k, gen, params, max_iter, r)
    g = xl.shape[0]
    lab, hist, per, _ = B.balanced_kmeans_level(xl.repeat(r, 1, 1), mask.repeat(r, 1), k, gen, params, max_iter=PROBE)
    pick = (per.view(r, g).topk(KEEP, dim=0, largest=False).indices * g + torch.arange(g)).reshape(-1)
    xk, mk = xl.repeat(KEEP, 1, 1), mask.repeat(KEEP, 1)
    lab2, hist2, per2, cent2 = B.balanced_kmeans_level(xk, mk, k, gen, params, cent=B._centroids(xk, lab[pick], mk, k),
                                                       max_iter=max_iter - PROBE)
    best = per2.view(KEEP, g).argmin(0) * g + torch.arange(g)
    return lab2[best], hist + hist2, cent2[best]


B._restarts = _halving
rows = {}
for seeds, reuse in (((0, 1, 2), "results/trees/balanced_quality_synthetic.json"),
                     ((3, 4, 5), "results/trees/balanced_quality_synthetic_seeds345.json")):
    cfg = TreeQualityConfig(sizes=[5000, 20000], seeds=list(seeds), data=("synthetic",), k=16, dim=64, beauty_path="", threads=1,
                            params={"root_n_init": R, **extra}, reuse_constrained=reuse, notes=[])
    for r in run_tree_quality(cfg, log=lambda s: None)["rows"]:
        if r["seed"] != "median":
            rows.setdefault(r["n_items"], []).append((r["ratio"], r["balanced_s"]))
for n, v in rows.items():
    ratios = [x[0] for x in v]
    print(f"R={R} probe={PROBE} keep={KEEP} {extra} n={n}: median seeds 0-2 {statistics.median(ratios[:3]):.4f}, "
          f"3-5 {statistics.median(ratios[3:]):.4f}, all six {statistics.median(ratios):.4f}; "
          f"per seed {[round(x, 4) for x in ratios]}; balanced {sum(x[1] for x in v):.1f} s")
