"""RQ-VAE semantic IDs on Amazon item attributes: codebook usage, collision rate, recon curve.

Run from the repository root (CPU, one thread: 20 epochs on Beauty took 160 s on a shared 2-core box):

    .venv/bin/python results/tiger/beauty_rqvae.py amazon-beauty --epochs 200 --out results/tiger/beauty_rqvae

Writes OUT.md (provenance header + figures), OUT.json (build_info) and OUT.npz (the tree).
Item attributes are the multi-hot brand/category ids of ../shared/data/DATASET/item2attributes.json
(row i = item i+1). Item ids in sequences.txt are used as they are (1..n_items, as preprocessed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from baselines.rqvae import build_rqvae  # noqa: E402
from bench.provenance import markdown_header, provenance  # noqa: E402


def attribute_matrix(folder: Path) -> np.ndarray:
    """Multi-hot float32 (n_items, n_attributes); row i = item i+1."""
    n_items = max(int(t) for line in open(folder / "sequences.txt") for t in line.split()[1:])
    attrs = json.loads((folder / "item2attributes.json").read_text())
    n_attr = max(a for v in attrs.values() for a in v)
    x = np.zeros((n_items, n_attr), dtype=np.float32)
    for item, ids in attrs.items():
        if 1 <= int(item) <= n_items:
            x[int(item) - 1, np.asarray(ids) - 1] = 1.0
    return x


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    folder = REPO.parent / "shared" / "data" / args.dataset
    x = attribute_matrix(folder)
    tree = build_rqvae(x, k=args.k, seed=args.seed, epochs=args.epochs, device="cpu")
    info = tree.build_info
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tree.save(out.with_suffix(".npz"))
    out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    curve = info["recon_loss"]
    marks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1})
    distinct_inputs = len(np.unique(x, axis=0))
    text = f"# RQ-VAE semantic IDs: {args.dataset} item attributes\n\n" + markdown_header(
        provenance(".venv/bin/python " + " ".join(["results/tiger/" + Path(sys.argv[0]).name, *sys.argv[1:]])), data=f"{folder.name}: {x.shape[0]} items, {x.shape[1]} multi-hot attributes, {distinct_inputs} distinct attribute sets"
    )
    text += "\n| figure | value |\n|---|---|\n"
    text += f"| codebook usage per level (of {args.k}) | {', '.join(f'{u:.1%}' for u in info['codebook_usage'])} |\n"
    text += f"| collision rate before the collision code | {info['collision_rate']:.1%} |\n"
    text += f"| distinct 3-code prefixes | {info['n_distinct_prefixes']} (upper bound: {distinct_inputs} distinct inputs) |\n"
    text += f"| largest collision group | {info['max_collision_group']} |\n"
    text += f"| collision levels | {info['collision_levels']} |\n"
    text += f"| build seconds | {info['seconds']:.1f} |\n"
    text += "| reconstruction MSE (epoch: value) | " + ", ".join(f"{i}: {curve[i]:.4f}" for i in marks) + " |\n"
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
