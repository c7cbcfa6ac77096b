"""Evaluation protocols: turn `Interactions` into a `Split` (train samples, valid, test).

Two protocols, as in ../shared/DESIGN.md:

``leave_one_out`` (TIGER / S3-Rec)
    Per user: test truth = last item (history = the items before it), valid truth = second
    to last (history = the items before it), training sequence = ``seq[:-2]``. Users with
    fewer than 3 items cannot give a train, a valid and a test item: they are dropped and
    counted in ``n_dropped_users`` (the S3-Rec 5-core data has >= 5 items per user, so none).

``user_split`` (SEATER / ComiRec)
    Users with >= 2 items are shuffled with `seed` and cut 8:1:1 (``ratios``) into disjoint
    train / valid / test users (counts: ``round(n * r_train)``, ``round(n * r_valid)``, the
    rest to test). Train users give their full sequence; a valid/test user with n items gives
    ``c = clip(floor(n * context_fraction), 1, n - 1)`` context items (as ComiRec's
    ``int(len * 0.8)``) and the remaining ``n - c`` items as the ground-truth set. Users with
    fewer than 2 items are dropped and counted.

In both, train samples are every (prefix -> next item) pair of a training sequence, the
prefix cut to its last `max_history` items, and every history is left-padded with 0.
Everything is vectorised over one flat array of all items, so Beauty (198K interactions)
splits in a fraction of a second.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from seater.data.interactions import Interactions
from seater.data.types import EvalSet, Split, TrainSamples
from seater.errors import ConfigError, DataError

DEFAULT_MAX_HISTORY = 20


# --------------------------------------------------------------------------- helpers
def _flatten(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All sequences in one int64 array plus the start offset and length of each."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    starts = np.zeros(len(seqs), dtype=np.int64)
    if len(seqs) > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs]) if len(seqs) else np.zeros(0, np.int64)
    return flat, starts, lengths


def _windows(flat: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Rows ``flat[max(start, end - length):end]`` left-padded with 0 to ``length``: int64 ``[R, length]``."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    cols = np.arange(length, dtype=np.int64)
    idx = ends[:, None] - length + cols[None, :]  # (R, length) positions in flat
    keep = idx >= starts[:, None]
    out = np.zeros((len(ends), length), dtype=np.int64)
    if flat.size:
        out[keep] = flat[idx[keep]]
    return out


def _check_max_history(max_history: int, name: str = "max_history") -> int:
    if isinstance(max_history, bool) or not isinstance(max_history, (int, np.integer)) or max_history < 1:
        raise ConfigError(f"{name} must be a positive integer, got {max_history!r}")
    return int(max_history)


def pad_left(seqs: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Last `length` items of every sequence, left-padded with 0: int64 ``[len(seqs), length]``.

    The one history layout every model reads (most recent item in the last column).
    """
    length = _check_max_history(length, "length")
    flat, starts, lengths = _flatten(seqs)
    return _windows(flat, starts, starts + lengths, length)


def _train_samples(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, users: np.ndarray, length: int) -> TrainSamples:
    """Every (prefix -> next) pair inside the sequences ``flat[start:start+len]``."""
    n_samples = np.maximum(lengths - 1, 0)
    total = int(n_samples.sum())
    row = np.repeat(np.arange(len(lengths)), n_samples)
    # offset of each sample within its user's block of samples, +1 = position of the target
    first = np.cumsum(n_samples) - n_samples
    pos = np.arange(total, dtype=np.int64) - first[row] + 1
    target_at = starts[row] + pos
    hist = _windows(flat, starts[row], target_at, length)
    return TrainSamples(histories=hist, targets=flat[target_at].copy(), users=users[row].astype(np.int64))


def _empty_eval(length: int) -> EvalSet:
    return EvalSet(users=np.zeros(0, np.int64), histories=np.zeros((0, length), np.int64), truth=[])


# --------------------------------------------------------------------------- protocols
def leave_one_out(inter: Interactions, max_history: int = DEFAULT_MAX_HISTORY) -> Split:
    """Last item = test, second to last = valid, the rest trains (see the module docstring)."""
    length = _check_max_history(max_history)
    flat, starts, lengths = _flatten(inter.sequences)
    keep = np.flatnonzero(lengths >= 3)
    s, n = starts[keep], lengths[keep]
    test = EvalSet(users=keep.astype(np.int64), histories=_windows(flat, s, s + n - 1, length), truth=list(flat[s + n - 1].reshape(-1, 1)))
    valid = EvalSet(users=keep.astype(np.int64), histories=_windows(flat, s, s + n - 2, length), truth=list(flat[s + n - 2].reshape(-1, 1)))
    train_sequences = [inter.sequences[u][:-2] for u in keep]
    train = _train_samples(flat, s, n - 2, keep, length)
    return Split(
        protocol="leave_one_out",
        n_items=inter.n_items,
        max_history=length,
        seed=0,
        train_sequences=train_sequences,
        train=train,
        valid=valid,
        test=test,
        n_dropped_users=int(len(lengths) - len(keep)),
        dataset=inter.name,
    )


def _check_ratios(ratios: Sequence[float], context_fraction: float) -> tuple[float, float, float]:
    try:
        r = tuple(float(x) for x in ratios)
    except (TypeError, ValueError):
        raise ConfigError(f"ratios must be three numbers (train, valid, test), got {ratios!r}") from None
    if len(r) != 3 or min(r) < 0 or r[0] <= 0 or sum(r) <= 0 or not all(np.isfinite(r)):
        raise ConfigError(f"ratios must be three non-negative numbers with a positive train share, got {ratios!r}")
    if not (0.0 < float(context_fraction) < 1.0):
        raise ConfigError(f"context_fraction must lie strictly between 0 and 1, got {context_fraction!r}")
    total = sum(r)
    return r[0] / total, r[1] / total, r[2] / total


def _context_eval(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, users: np.ndarray, frac: float, length: int) -> EvalSet:
    if len(users) == 0:
        return _empty_eval(length)
    s, n = starts[users], lengths[users]
    # floor like ComiRec's int(len * 0.8); the epsilon keeps 5 * 0.8 from flooring to 3
    n_ctx = np.clip(np.floor(n * frac + 1e-9).astype(np.int64), 1, n - 1)
    hist = _windows(flat, s, s + n_ctx, length)
    truth = [flat[a:b] for a, b in zip((s + n_ctx).tolist(), (s + n).tolist())]
    return EvalSet(users=users.astype(np.int64), histories=hist, truth=truth)


def user_split(
    inter: Interactions,
    seed: int = 0,
    max_history: int = DEFAULT_MAX_HISTORY,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    context_fraction: float = 0.8,
) -> Split:
    """Disjoint train/valid/test users; eval users keep 80% as context, 20% as truth set."""
    length = _check_max_history(max_history)
    r_train, r_valid, _ = _check_ratios(ratios, context_fraction)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"user_split seed must be an integer >= 0, got {seed!r}")
    flat, starts, lengths = _flatten(inter.sequences)
    eligible = np.flatnonzero(lengths >= 2)
    order = np.random.default_rng(seed).permutation(eligible)
    n = len(order)
    n_train = int(round(n * r_train))
    n_valid = min(int(round(n * r_valid)), n - n_train)
    train_users = np.sort(order[:n_train])
    valid_users = np.sort(order[n_train : n_train + n_valid])
    test_users = np.sort(order[n_train + n_valid :])

    train = _train_samples(flat, starts[train_users], lengths[train_users], train_users, length)
    return Split(
        protocol="user_split",
        n_items=inter.n_items,
        max_history=length,
        seed=int(seed),
        train_sequences=[inter.sequences[u] for u in train_users],
        train=train,
        valid=_context_eval(flat, starts, lengths, valid_users, context_fraction, length),
        test=_context_eval(flat, starts, lengths, test_users, context_fraction, length),
        n_dropped_users=int(len(lengths) - n),
        dataset=inter.name,
    )


PROTOCOLS: dict[str, Callable[..., Split]] = {
    "leave_one_out": lambda inter, seed, max_history: leave_one_out(inter, max_history=max_history),
    "user_split": lambda inter, seed, max_history: user_split(inter, seed=seed, max_history=max_history),
}


def make_split(inter: Interactions, protocol: str, seed: int = 0, max_history: int = DEFAULT_MAX_HISTORY) -> Split:
    """Apply the protocol named `protocol` (``leave_one_out`` or ``user_split``)."""
    try:
        fn = PROTOCOLS[protocol]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown protocol {protocol!r}; known: {', '.join(sorted(PROTOCOLS))}") from None
    split = fn(inter, seed, max_history)
    split.seed = int(seed)  # recorded even for leave_one_out, which uses no randomness
    no_train = not any(len(s) for s in split.train_sequences)
    if no_train or len(split.test.users) == 0:
        need = 3 if protocol == "leave_one_out" else 2
        short = sum(len(s) < need for s in inter.sequences)
        what = "no training interactions" if no_train else "no test users"
        raise DataError(
            f"{inter.name or 'dataset'}: the {protocol} split has {what}: {protocol} needs users with at least "
            f"{need} items and enough of them ({len(inter.sequences)} users, {short} with fewer than {need} items)"
        )
    return split
