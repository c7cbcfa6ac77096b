"""Dataset readers and writers (S3-Rec/TIGER text format; ComiRec and LightGCN formats follow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seater.data.interactions import Interactions


def write_s3rec(inter: Interactions, out_dir: str | Path) -> Path:
    """Write `inter` as S3-Rec text: ``sequences.txt`` (``user item item ...`` per line, original
    ids) and, when items have attributes, ``item2attributes.json`` (``{"item": [attr, ...]}``).

    Returns the directory. Reading it back with `load_s3rec` gives the same sequences.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    item_ids = np.asarray(inter.item_ids)
    with open(out / "sequences.txt", "w") as fh:
        for uid, seq in zip(inter.user_ids.tolist(), inter.sequences):
            fh.write(f"{uid} {' '.join(map(str, item_ids[seq].tolist()))}\n")
    if inter.item_attributes is not None:
        attrs = {str(item_ids[i]): np.asarray(a).tolist() for i, a in enumerate(inter.item_attributes) if i > 0 and len(a)}
        with open(out / "item2attributes.json", "w") as fh:
            json.dump(attrs, fh)
    return out
