"""Input checks shared by every tree builder: one clear message instead of a library traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from seater.errors import ConfigError, DataError


MAX_K = 1 << 16  # a tree keeps a (nodes, k) table of children; no identifier scheme uses wider nodes


def check_embeddings(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Return `embeddings` as C-contiguous float32 ``(n_items, dim)`` or raise naming the problem."""
    check_int("branching factor k", k, 2, MAX_K)
    return embedding_matrix(embeddings)


def embedding_matrix(embeddings) -> np.ndarray:
    """`embeddings` as C-contiguous float32 ``(n_items, dim)``, checked before the cast: real numbers
    (strings and complex values would cast silently), within float32's range, finite."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array (n_items, dim), got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError("embeddings are empty: the catalog has no items")
    if x.shape[1] == 0:
        raise DataError("embeddings have dimension 0")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"embeddings must be real numbers, got dtype {x.dtype}")
    big = np.abs(x[np.isfinite(x)]).max(initial=0) if x.dtype.itemsize > 4 and np.issubdtype(x.dtype, np.floating) else 0
    if big > np.finfo(np.float32).max:
        raise DataError(f"embeddings hold values up to {big:.3g}, beyond float32's range ({np.finfo(np.float32).max:.3g}); rescale them")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"embeddings contain NaN or inf in {len(rows)} row(s), first: row {rows[0]} (item {rows[0] + 1})")
    return x


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """`value` as an int if it is an integer in minimum..maximum (not a bool), else one clear error naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:,}, got {value!r}")
    return int(value)


def check_seconds(name: str, value) -> float | None:
    """A time limit: None (no limit) or a number of seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0:
        raise ConfigError(f"{name} must be a number of seconds > 0, or null for no limit, got {value!r}")
    return float(value)


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK"


def read_array_file(path: Path, what: str, archive: bool = False):
    """`np.load` of a ``.npy`` array (or, with `archive`, an ``.npz`` archive), never unpickled.

    The first bytes say what the file is, so an empty file, an archive where an array is expected
    (or the reverse) or some other file get one message naming it, not numpy's "pickled data" error.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a {what} file")
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(6)
    want, other = (_ZIP_MAGIC, ".npz archive (np.savez)") if archive else (_NPY_MAGIC, ".npy array (np.save)")
    if not head:
        raise DataError(f"{path}: the {what} file is empty")
    if not head.startswith(want):
        found = "a .npy array" if head.startswith(_NPY_MAGIC) else "an .npz archive" if head.startswith(_ZIP_MAGIC) else "not a NumPy file"
        raise DataError(f"{path}: the {what} file must be a {other}, but it is {found}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: unreadable {what} file ({e})") from None


def load_embeddings(path: Path) -> np.ndarray:
    """An ``.npy`` array from `path`, never unpickled; a missing or non-.npy file is one clear error."""
    return read_array_file(path, "embeddings")
