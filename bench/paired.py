"""Two runs compared cell by cell, users matched: did setting A beat setting B on the same cells?

The leaderboard's p compares every row of one table with its best row. Asking instead whether one
change helps (another embedding table, a rerun at a later commit, SEATER against SASRec on the
same split) means pairing each cell of run A with its twin in run B, per seed, and testing the
per-user differences, each user's averaged over the seeds (`user_means`). ``--match cell`` pairs cells with the same name
(dataset / retriever / tree) and seed; ``--match seed`` pairs by dataset and seed alone, whatever
the retriever or tree, each cell of one run with the other run's one cell (several trees against
one SASRec).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seater.errors import ConfigError, DataError
from seater.metrics import metric_cutoff

MATCHES = ("cell", "seed")
DEFAULT_METRICS = ("ndcg@10", "recall@10", "ndcg@5", "recall@5")


@dataclass
class Comparison:
    """One metric of one matched group of cells: means over every user of every paired seed; `users`
    the distinct users, the paired test's pairs (each user's mean over the seeds, `user_means`)."""

    group: str
    metric: str
    seeds: list[int]
    users: int
    a: float
    b: float
    p: float
    per_seed: list[float]  # A / B - 1 of each seed: does the sign hold across training runs?

    @property
    def change(self) -> float:
        return _change(self.a, self.b)


def _change(a: float, b: float) -> float:
    return a / b - 1 if b else math.nan


def paired_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired t-test p over matched values (NaN pairs dropped); nan with fewer than 2 pairs."""
    from scipy import stats

    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok], b[ok]
    if len(a) < 2:
        return math.nan
    d = a - b
    if np.allclose(d, d[0], rtol=0, atol=1e-12):  # constant difference: the t statistic is undefined
        return 1.0 if abs(d[0]) <= 1e-12 else 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def user_means(parts: list[tuple[np.ndarray | None, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Each user's mean of A and of B over the seeds that scored them, from ``(users, a, b)`` per seed.

    The paired t-test's unit is a user: under leave-one-out every seed scores the same users, and
    their per-seed values joined end to end counted each user once per seed, as if independent.
    With three seeds that made p far too small: 24% of comparisons of two equally good settings came
    out "significant" at 0.05, against 5.5% on the per-user means. Seeds with other users (a user
    split) add their users. ``users`` None for any seed (rows from before `test_users.npy`): row i of
    every seed is taken as one user, as leave-one-out scored them. NaN pairs are dropped first.
    """
    by_row = any(u is None for u, _, _ in parts)  # one seed without ids: every seed by row, not ids and rows mixed
    keys = np.concatenate([np.arange(len(a)) if by_row else np.asarray(u, dtype=np.int64) for u, a, _ in parts])
    a = np.concatenate([np.asarray(a, dtype=np.float64) for _, a, _ in parts])
    b = np.concatenate([np.asarray(b, dtype=np.float64) for _, _, b in parts])
    ok = ~(np.isnan(a) | np.isnan(b))
    _, inv = np.unique(keys[ok], return_inverse=True)
    n = np.bincount(inv)
    return np.bincount(inv, a[ok]) / n, np.bincount(inv, b[ok]) / n


def _name(row: dict[str, Any]) -> str:
    """The cell's name without its seed: ``beauty/seater/balanced:k=16``."""
    name, suffix = str(row["name"]), f"/s{row['cell']['seed']}"
    return name[: -len(suffix)] if name.endswith(suffix) else name


def _finished(runfile: Path) -> list[dict[str, Any]]:
    from bench.leaderboard import merged_rows
    from bench.tracking import latest_rows

    rows = [r for r in latest_rows(merged_rows([runfile])).values() if r.get("status") == "FINISHED"]
    if not rows:
        raise DataError(f"{runfile}: no finished cells")
    return rows


def _by(rows: list[dict[str, Any]], key) -> dict[tuple, list[dict[str, Any]]]:
    out: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def _pairs(run_a: Path, run_b: Path, match: str) -> dict[str, dict[int, tuple[dict, dict]]]:
    """{group label: {seed: (row of A, row of B)}}. With ``seed``, a run holding several cells per
    dataset and seed pairs each of them with the other run's one cell (several trees vs one SASRec)."""
    key = (lambda r: (_name(r), int(r["cell"]["seed"]))) if match == "cell" else \
        (lambda r: (r["cell"]["dataset"]["name"], int(r["cell"]["seed"])))
    a, b = _by(_finished(run_a), key), _by(_finished(run_b), key)
    out: dict[str, dict[int, tuple[dict, dict]]] = {}
    for k in sorted(set(a) & set(b)):
        ra, rb = a[k], b[k]
        if len(ra) > 1 and len(rb) > 1:
            names = ", ".join(r["name"] for r in ra + rb)
            raise DataError(f"both runs hold several finished cells for {k[0]!r} seed {k[1]} ({names}): "
                            + ("a suite edited between runs? " if match == "cell" else "use --match cell, or ")
                            + "compare runs where one side has one cell per seed")
        for x in ra:
            for y in rb:
                label = _name(x) if match == "cell" else f"{_name(x)} vs {_name(y)}"
                out.setdefault(label, {})[k[1]] = (x, y)
    if not out:
        raise DataError(f"{run_a} and {run_b} share no cell under --match {match}: A has "
                        f"{sorted({_name(r) for v in a.values() for r in v})}, B has {sorted({_name(r) for v in b.values() for r in v})}")
    return out


def _per_user(row: dict[str, Any], runfile: Path, name: str) -> np.ndarray:
    from bench.leaderboard import per_user_values

    values = per_user_values(row, name)
    if values is None:
        raise DataError(f"{runfile}: cell {row['name']} has no per-user file test_{name}.npy "
                        f"(per-user metrics are saved under <run folder>/per_user/<cell id>/)")
    return values


def _default_metrics(pairs: dict[str, dict[int, tuple[dict, dict]]]) -> list[str]:
    """`DEFAULT_METRICS` at the cut-offs every paired cell was evaluated at (a suite with ks = [10, 20]
    has no @5), else NDCG and recall at the two smallest cut-offs they share."""
    rows = [r for by_seed in pairs.values() for ab in by_seed.values() for r in ab]
    common = set.intersection(*(set(r["cell"].get("ks", [])) for r in rows))
    wanted = [m for m in DEFAULT_METRICS if metric_cutoff(m) in common]
    if not wanted and not common:
        raise DataError("the paired cells share no evaluation cut-off (rows without ks?): pass --metrics")
    return wanted or [f"{name}@{k}" for k in sorted(common)[:2] for name in ("ndcg", "recall")]


def compare_runs(run_a: Path, run_b: Path, metrics=None, match: str = "cell") -> list[Comparison]:
    """Every metric of every group of cells that both runs finished, over the seeds both have.
    `metrics` None: `DEFAULT_METRICS` where the cells have them (`_default_metrics`)."""
    if match not in MATCHES:
        raise ConfigError(f"--match must be one of {', '.join(MATCHES)}, got {match!r}")
    if metrics is not None and not metrics:
        raise ConfigError("no metrics to compare")
    pairs = _pairs(run_a, run_b, match)
    metrics = _default_metrics(pairs) if metrics is None else metrics
    out = []
    for group, by_seed in sorted(pairs.items()):
        seeds = sorted(by_seed)
        users = {}
        for s in seeds:
            ra, rb = by_seed[s]
            ua, ub = _per_user(ra, run_a, "users"), _per_user(rb, run_b, "users")
            if not np.array_equal(ua, ub):
                raise DataError(f"{group} seed {s}: the two runs scored different test users "
                                f"({len(ua)} vs {len(ub)}): not the same split, nothing to pair")
            users[s] = ua
        for m in metrics:
            xs = [_per_user(by_seed[s][0], run_a, m) for s in seeds]
            ys = [_per_user(by_seed[s][1], run_b, m) for s in seeds]
            for s, u, v in zip(seeds, xs, ys):
                if not len(u) == len(v) == len(users[s]):
                    raise DataError(f"{group} seed {s}: test_{m}.npy does not hold one value per test user")
            x, y = np.concatenate(xs), np.concatenate(ys)
            per_seed = [_change(float(np.nanmean(u)), float(np.nanmean(v))) for u, v in zip(xs, ys)]
            ux, uy = user_means([(users[s], u, v) for s, u, v in zip(seeds, xs, ys)])
            out.append(Comparison(group, m, seeds, len(ux), float(np.nanmean(x)), float(np.nanmean(y)), paired_p(ux, uy), per_seed))
    return out


def markdown_table(rows: list[Comparison]) -> list[str]:
    lines = ["| cells | metric | seeds | users | A | B | A / B - 1 | per seed | p |", "|---|---|---|---:|---:|---:|---:|---|---:|"]
    for c in rows:
        p = "–" if math.isnan(c.p) else f"{c.p:.2g}" + (" *" if c.p < 0.05 else "")
        lines.append(f"| {c.group} | {c.metric} | {','.join(map(str, c.seeds))} | {c.users} | {c.a:.4f} | {c.b:.4f} "
                     f"| {c.change:+.1%} | {' '.join(f'{x:+.1%}' for x in c.per_seed)} | {p} |")
    return lines
