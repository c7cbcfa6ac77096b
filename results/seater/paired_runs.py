"""Paired t-test over test users between the cells of two runs with the same trees and seeds.

    python results/seater/paired_runs.py runs/sports_seater_init runs/sports_seater_builders

For every tree builder in both runs: the mean of each metric over seeds x users in run A and run B,
the relative change and the paired p (users matched per seed; the leaderboard's p only compares
against its best row).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

METRICS = ("ndcg@10", "recall@10", "ndcg@5", "recall@5")


def load(run: Path) -> dict[tuple[str, int], dict[str, np.ndarray]]:
    out = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["status"] != "FINISHED" or r["cell"].get("tree") is None:
            continue
        d = run / "per_user" / r["cell_id"]
        key = (r["cell"]["tree"]["label"], r["cell"]["seed"])
        out[key] = {m: np.load(d / f"test_{m}.npy", allow_pickle=False) for m in (*METRICS, "users")}
    return out


def main(a_dir: str, b_dir: str) -> None:
    a, b = load(Path(a_dir)), load(Path(b_dir))
    for tree in sorted({t for t, _ in a} & {t for t, _ in b}):
        seeds = sorted(s for t, s in a if t == tree and (t, s) in b)
        for m in METRICS:
            for s in seeds:
                if not np.array_equal(a[(tree, s)]["users"], b[(tree, s)]["users"]):
                    raise SystemExit(f"{tree} seed {s}: the two runs scored different test users")
            x = np.concatenate([a[(tree, s)][m] for s in seeds])
            y = np.concatenate([b[(tree, s)][m] for s in seeds])
            print(f"{tree} {m} (seeds {seeds}): A {x.mean():.4f}  B {y.mean():.4f}  ({x.mean() / y.mean() - 1:+.0%})  p {stats.ttest_rel(x, y).pvalue:.2g}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
