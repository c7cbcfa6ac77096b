"""Input checks shared by every tree builder: one clear message instead of a library traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seater.errors import ConfigError, DataError


def check_embeddings(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Return `embeddings` as C-contiguous float32 ``(n_items, dim)`` or raise naming the problem."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"branching factor k must be an integer >= 2, got {k!r}")
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (n_items, dim), got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError("embeddings are empty: the catalog has no items")
    if x.shape[1] == 0:
        raise DataError("embeddings have dimension 0")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"embeddings must be real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"embeddings contain NaN or inf in {len(rows)} row(s), first: row {rows[0]} (item {rows[0] + 1})")
    return x


def load_embeddings(path: Path) -> np.ndarray:
    """An ``.npy`` array from `path`, never unpickled; a missing or non-.npy file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"embeddings file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a .npy array ({e})") from None
