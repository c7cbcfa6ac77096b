"""Recall@K, HitRate@K and NDCG@K over a ``[users, K]`` matrix of predicted ids and ragged truth sets.

Definitions (per user, truth set T of distinct item ids, top-K list P after clean-up):

- ``recall@K`` = |P ∩ T| / |T|  (ComiRec / SEATER's recall; equals HR for one-item truth)
- ``hit@K``    = 1 if |P ∩ T| > 0 else 0
- ``ndcg@K``   = DCG / IDCG with DCG = sum over hit ranks r (0-based) of 1 / log2(r + 2) and
  IDCG the DCG of min(|T|, K) hits at the top: the correct definition the SEATER paper uses.
  ``comirec_ndcg=True`` divides by the IDCG of the number of *recalled* positives instead
  (ComiRec's legacy code); it is never lower than the correct value, and 0 when nothing hits.

Clean-up, stated once: a predicted id that repeats an earlier one in its row counts only at
its first occurrence; ids <= 0 (padding 0, or -1 from a failed decode) never count. Truth
ids are de-duplicated and ids <= 0 in them ignored. A user whose truth set is empty after
that has NaN in every per-user array and is left out of the means (`evaluate` raises
`DataError` if no user has a truth item). Vectorised: membership of every (user, item)
prediction in the truth sets is one `searchsorted` over sorted int64 keys user * M + item
(or a direct comparison when every user has exactly one truth item, as in leave-one-out).
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from seater.errors import ConfigError, DataError


def _check_ks(ks: Iterable[int], k_max: int) -> list[int]:
    try:
        ks = [int(k) for k in ks]
    except (TypeError, ValueError):
        raise ConfigError(f"ks must be a list of positive integers, got {ks!r}") from None
    if not ks or min(ks) < 1:
        raise ConfigError(f"ks must be a non-empty list of positive integers, got {ks!r}")
    if max(ks) > k_max:
        raise ConfigError(f"K = {max(ks)} is larger than the {k_max} predictions per user; recommend at least max(ks) items")
    return sorted(set(ks))


def first_occurrence(pred: np.ndarray) -> np.ndarray:
    """Boolean ``[U, K]``: True where the id is > 0 and has not appeared earlier in its row."""
    pred = np.asarray(pred)
    if pred.shape[1] == 0:
        return np.zeros(pred.shape, dtype=bool)
    order = np.argsort(pred, axis=1, kind="stable")  # equal ids keep their column order
    sorted_ids = np.take_along_axis(pred, order, axis=1)
    repeat_sorted = np.zeros(pred.shape, dtype=bool)
    repeat_sorted[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
    repeat = np.empty_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    return (pred > 0) & ~repeat


def _hits(pred: np.ndarray, truth: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(hit matrix bool [U, K], truth set sizes int64 [U]) after the clean-up rules."""
    n_users = pred.shape[0]
    sizes = np.fromiter((len(t) for t in truth), dtype=np.int64, count=n_users)
    flat = np.concatenate([np.asarray(t, dtype=np.int64).reshape(-1) for t in truth]) if n_users else np.zeros(0, np.int64)
    if n_users and (sizes == 1).all() and (flat > 0).all():
        # one truth item per user (leave-one-out): a direct comparison, no sorting;
        # the cumulative count keeps only the first occurrence of a repeated prediction
        eq = pred == flat[:, None]
        return eq & (np.cumsum(eq, axis=1) == 1), sizes
    owner = np.repeat(np.arange(n_users, dtype=np.int64), sizes)
    good = flat > 0
    flat, owner = flat[good], owner[good]
    m = int(flat.max(initial=0)) + 1  # from the truth alone: a huge predicted id overflowed the keys
    keys = np.unique(owner * m + flat)  # distinct (user, item) truth pairs, sorted
    truth_sizes = np.bincount(keys // m, minlength=n_users).astype(np.int64)
    valid = first_occurrence(pred)
    hit_able = np.where((pred > 0) & (pred < m), pred, 0)  # ids no truth holds count as padding 0, never a hit
    pkeys = np.arange(n_users, dtype=np.int64)[:, None] * m + hit_able
    at = np.searchsorted(keys, pkeys)
    found = keys[np.minimum(at, len(keys) - 1)] == pkeys if len(keys) else np.zeros(pred.shape, dtype=bool)
    return found & valid, truth_sizes


def per_user_metrics(
    pred: np.ndarray, truth: Sequence[np.ndarray], ks: Iterable[int] = (5, 10, 20, 50), comirec_ndcg: bool = False
) -> dict[str, np.ndarray]:
    """Per-user ``recall@K``, ``hit@K``, ``ndcg@K`` as float64 arrays ``[U]`` (NaN for empty truth).

    pred: int ``[U, K_max]`` predicted item ids, best first; truth: U arrays of item ids.
    K larger than K_max raises `ConfigError` (a short list would silently deflate metrics).
    """
    pred = np.asarray(pred)
    if pred.ndim != 2 or not np.issubdtype(pred.dtype, np.integer):
        raise ConfigError(f"predictions must be an integer matrix [users, K], got {pred.dtype} of shape {pred.shape}")
    if len(truth) != pred.shape[0]:
        raise ConfigError(f"{pred.shape[0]} prediction rows for {len(truth)} truth sets")
    ks = _check_ks(ks, pred.shape[1])
    pred = pred[:, : max(ks)].astype(np.int64, copy=False)
    hits, n_truth = _hits(pred, truth)

    discount = 1.0 / np.log2(np.arange(pred.shape[1], dtype=np.float64) + 2.0)
    idcg_table = np.concatenate([[0.0], np.cumsum(discount)])  # idcg_table[n] = DCG of n top hits
    cum_hits = np.cumsum(hits, axis=1)
    cum_dcg = np.cumsum(hits * discount[None, :], axis=1)
    empty = n_truth == 0
    denom = np.where(empty, 1, n_truth).astype(np.float64)

    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in ks:
            n_hit = cum_hits[:, k - 1]
            dcg = cum_dcg[:, k - 1]
            ideal = idcg_table[n_hit] if comirec_ndcg else idcg_table[np.minimum(n_truth, k)]
            ndcg = np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), 0.0)
            out[f"recall@{k}"] = np.where(empty, np.nan, n_hit / denom)
            out[f"hit@{k}"] = np.where(empty, np.nan, (n_hit > 0).astype(np.float64))
            out[f"ndcg@{k}"] = np.where(empty, np.nan, ndcg)
    return out


def summarize(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of every per-user array over users with a non-empty truth set."""
    if not per_user:
        return {}
    any_key = next(iter(per_user.values()))
    if len(any_key) == 0 or np.isnan(any_key).all():
        raise DataError("no user has a non-empty ground-truth set; nothing to evaluate")
    return {k: float(np.nanmean(v)) for k, v in per_user.items()}


def evaluate(
    pred: np.ndarray, truth: Sequence[np.ndarray], ks: Iterable[int] = (5, 10, 20, 50), comirec_ndcg: bool = False
) -> dict[str, float]:
    """Means of `per_user_metrics` over users with a non-empty truth set."""
    return summarize(per_user_metrics(pred, truth, ks, comirec_ndcg=comirec_ndcg))


def metric_cutoff(metric: str) -> int:
    """K of a metric name such as ``ndcg@10``."""
    return int(str(metric).partition("@")[2])


def is_metric_name(metric) -> bool:
    """Whether `metric` names a ranking metric the evaluation computes: recall@K, hit@K or ndcg@K."""
    return isinstance(metric, str) and re.fullmatch(r"(recall|hit|ndcg)@[1-9]\d*", metric) is not None


def check_metric_name(metric: str, who: str) -> str:
    """`metric` if it names a ranking metric the evaluation computes (recall@K, hit@K, ndcg@K), for
    early stopping; checked when a model is configured, not after its first training epoch."""
    if not is_metric_name(metric):
        raise ConfigError(f"{who}: val_metric must be recall@K, hit@K or ndcg@K, got {metric!r}")
    return metric
