"""Evaluate a fitted retriever on an `EvalSet`: batched `recommend`, metrics, per-user arrays, timing.

Timing covers `recommend` calls only (not metric computation), so ``users_per_second`` is
the retriever's inference throughput at the given batch size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from seater.data.types import EvalSet
from seater.errors import ConfigError
from seater.metrics import _check_ks, first_occurrence, per_user_metrics, summarize


@dataclass
class EvalResult:
    """What one evaluation produced.

    metrics: means over users with a non-empty truth set (``recall@10`` ...).
    per_user: the same keys, float64 ``[U]`` (NaN for empty truth), for paired tests.
    seconds: wall time spent in `recommend`; users_per_second: U / seconds.
    predictions: int64 ``[U, max(ks)]`` as returned by the retriever.
    n_users: users evaluated; n_empty_truth: users left out of the means (empty truth set).
    prediction_checks: `check_predictions` of the predictions (invalid / duplicate / padding rates).
    """

    metrics: dict[str, float]
    per_user: dict[str, np.ndarray]
    seconds: float
    users_per_second: float
    predictions: np.ndarray
    n_users: int = 0
    n_empty_truth: int = 0
    prediction_checks: dict[str, float] = field(default_factory=dict)


def check_predictions(pred: np.ndarray, n_items: int) -> dict[str, float]:
    """Rates over all ``U * K`` slots, for generative retrievers whose decodes can fail.

    ``invalid_rate``: ids outside 1..n_items other than 0 (e.g. -1 or a code matching no item);
    ``padding_rate``: 0 slots ("fewer than k produced"); ``duplicate_rate``: valid ids that
    repeat an earlier id of the same row.
    """
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ConfigError(f"predictions must be a matrix [users, K], got shape {pred.shape}")
    total = max(pred.size, 1)
    in_range = (pred >= 1) & (pred <= n_items)
    padding = pred == 0
    first = first_occurrence(pred)
    return {
        "invalid_rate": float((~in_range & ~padding).sum() / total),
        "padding_rate": float(padding.sum() / total),
        "duplicate_rate": float((in_range & ~first).sum() / total),
    }


def evaluate_retriever(
    retriever,
    evalset: EvalSet,
    ks: Iterable[int] = (5, 10, 20, 50),
    batch_size: int = 1024,
    progress: bool = False,
    comirec_ndcg: bool = False,
    n_items: int | None = None,
) -> EvalResult:
    """Run ``retriever.recommend(histories, max(ks))`` in batches and score it.

    n_items (optional) enables `check_predictions`; the metrics themselves ignore invalid,
    padding and duplicate ids (see `seater.metrics`).
    """
    ks = _check_ks(ks, 10**12)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    k_max = max(ks)
    n = len(evalset)
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=(n + batch_size - 1) // batch_size, desc="evaluate", unit="batch")
    parts: list[np.ndarray] = []
    seconds = 0.0
    for a in starts:
        hist = evalset.histories[a : a + batch_size]
        t0 = time.perf_counter()
        out = retriever.recommend(hist, k_max)
        seconds += time.perf_counter() - t0
        out = np.asarray(out)
        if out.shape != (len(hist), k_max) or not np.issubdtype(out.dtype, np.integer):
            raise ConfigError(
                f"{type(retriever).__name__}.recommend returned {out.dtype} of shape {out.shape}; "
                f"expected integers of shape ({len(hist)}, {k_max})"
            )
        parts.append(out.astype(np.int64, copy=False))
    pred = np.concatenate(parts) if parts else np.zeros((0, k_max), dtype=np.int64)
    per_user = per_user_metrics(pred, evalset.truth, ks, comirec_ndcg=comirec_ndcg)
    any_key = per_user[f"recall@{ks[0]}"]
    return EvalResult(
        metrics=summarize(per_user),
        per_user=per_user,
        seconds=seconds,
        users_per_second=n / seconds if seconds > 0 else float("inf"),
        predictions=pred,
        n_users=n,
        n_empty_truth=int(np.isnan(any_key).sum()),
        prediction_checks=check_predictions(pred, n_items) if n_items is not None else {},
    )


def beam_vs_exact(
    retriever, evalset: EvalSet, ks: Iterable[int], n_users: int, seed: int = 0, beam_predictions: np.ndarray | None = None
) -> dict[str, float]:
    """How much quality a generative retriever's beam search loses against exact scoring.

    On ``n_users`` users drawn at random (``seed``), compares ``retriever.recommend`` (the beam)
    with ``retriever.recommend_exact`` (every item's full identifier scored, no pruning).
    Returns ``{metric}`` for the exact ranking, ``beam_{metric}`` for the beam on the same users,
    ``overlap@K`` (mean share of the beam's top-K that is in the exact top-K), ``n_users`` and
    ``seconds`` (of the exact scoring). ``beam_predictions``: the beam's predictions for all of
    `evalset` when already computed (rows are picked from it instead of decoding again).
    """
    ks = _check_ks(ks, 10**12)
    if not hasattr(retriever, "recommend_exact"):
        raise ConfigError(f"{type(retriever).__name__} has no recommend_exact: beam vs exact only applies to generative retrievers")
    m = min(int(n_users), len(evalset))
    if m < 1:
        raise ConfigError(f"beam vs exact needs at least one user, got n_users={n_users} and {len(evalset)} users")
    rows = np.sort(np.random.default_rng(seed).choice(len(evalset), m, replace=False))
    hist = evalset.histories[rows]
    truth = [evalset.truth[i] for i in rows]
    k_max = max(ks)
    beam = beam_predictions[rows] if beam_predictions is not None else np.asarray(retriever.recommend(hist, k_max))
    t0 = time.perf_counter()
    exact = np.asarray(retriever.recommend_exact(hist, k_max))
    seconds = time.perf_counter() - t0
    out = {"n_users": float(m), "seconds": seconds}
    out.update(summarize(per_user_metrics(exact, truth, ks)))
    out.update({f"beam_{k}": v for k, v in summarize(per_user_metrics(beam, truth, ks)).items()})
    for k in ks:
        shared = [len(np.intersect1d(b[:k][b[:k] > 0], e[:k])) / k for b, e in zip(beam, exact)]
        out[f"overlap@{k}"] = float(np.mean(shared))
    return out
