"""Digests of the files a cell reads, so rows and caches made from files that changed since are
not taken for current ones.

A cell id hashes the suite's description of its inputs (a dataset's path and format, an embeddings
file's path), not their bytes: regenerate a dataset in place and the id stays the same. So each row
records the digests of its input files (``lineage.dataset_files``, ``lineage.embeddings_file``); a
rerun compares them with the files as they are now and runs a cell whose files changed again
(`changed_inputs`), and a cached embedding table keeps them beside it (`bench.runner`), so a
rewritten dataset trains its model again. Rows and tables older than these digests are taken as
they are.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from seater.errors import SeaterError


def file_digest(path: str | Path) -> str:
    """blake2b of the file's bytes (kept per process while its size and mtime stay the same)."""
    path = Path(path).resolve()
    st = path.stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def dataset_digest(dataset) -> str | None:
    """One digest over the names and bytes of the files a dataset spec loads; None for generated data."""
    if dataset.source == "synthetic":
        return None
    from seater.data.loaders import dataset_files

    h = hashlib.blake2b(digest_size=16)
    for f in dataset_files(dataset.source, dataset.format):
        h.update(f"{f.name}\0{file_digest(f)}\n".encode())
    return h.hexdigest()


def input_digests(cell) -> dict[str, str]:
    """``{"dataset_files": ..., "embeddings_file": ...}``, for the inputs of `cell` that are files."""
    out = {}
    if (d := dataset_digest(cell.dataset)) is not None:
        out["dataset_files"] = d
    if cell.tree is not None and cell.embeddings is not None and cell.embeddings.kind == "file":
        out["embeddings_file"] = file_digest(cell.embeddings.source)
    return out


def changed_inputs(row: dict[str, Any], cell) -> list[str]:
    """The inputs of `cell` whose files differ from the ones `row` was computed from.

    An input the row has no digest of (an older row), or whose files cannot be read now (the cell
    would fail on them with its own message), is not reported."""
    recorded = row.get("lineage") or {}
    if not {"dataset_files", "embeddings_file"} & set(recorded):  # nothing to compare: no hashing
        return []
    try:
        now = input_digests(cell)
    except (OSError, SeaterError):
        return []
    return [k for k, v in now.items() if k in recorded and recorded[k] != v]
