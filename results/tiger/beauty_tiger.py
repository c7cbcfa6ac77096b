"""TIGER on Amazon leave-one-out with a small CPU budget, both decoding modes (under-trained by design).

Run from the repository root after `beauty_rqvae.py` has written the semantic-ID tree:

    .venv/bin/python results/tiger/beauty_tiger.py amazon-beauty --tree results/tiger/beauty_rqvae.npz \
        --epochs 1 --steps 150 --test-users 2000 --out results/tiger/beauty_tiger_cpu_smoke

Trains the paper-sized TIGER (4+4 layers, d 128, 6 x 64 heads) for `epochs` x `steps` batches of 256,
then evaluates on a seeded sample of `test-users` test users (full ranking over all items):
unconstrained decoding (the paper: invalid IDs dropped) and trie-constrained decoding, the invalid
rate at top-10/20, and most-popular on the same users. Writes OUT.md and OUT.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from baselines.popular import MostPopular  # noqa: E402
from baselines.tiger import TIGER  # noqa: E402
from bench.provenance import markdown_header, provenance  # noqa: E402
from seater.data.loaders import load_dataset  # noqa: E402
from seater.data.splits import leave_one_out  # noqa: E402
from seater.metrics import evaluate  # noqa: E402
from seater.trees import Tree  # noqa: E402

PUBLISHED = {"amazon-beauty": ".0454 .0321 .0648 .0384", "amazon-sports": ".0264 .0181 .0400 .0225"}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dataset")
    p.add_argument("--tree", required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--test-users", type=int, default=2000)
    p.add_argument("--valid-users", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    inter = load_dataset(REPO.parent / "shared" / "data" / args.dataset, format="s3rec")
    split = leave_one_out(inter, max_history=20)
    raw = Tree.load(args.tree)  # codes indexed by the file's item ids (row i = item i+1)
    ids = np.asarray(inter.item_ids[1:]).astype(np.int64)  # internal id -> original id
    tree = Tree(raw.codes[ids - 1], raw.k, raw.build_info)
    model = TIGER(device="cpu", seed=args.seed, epochs=args.epochs, max_steps_per_epoch=args.steps,
                  valid_users=args.valid_users, patience=args.epochs)
    model.fit(split, tree)
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(split.test), min(args.test_users, len(split.test)), replace=False))
    hist, truth = split.test.histories[pick], [split.test.truth[i] for i in pick]
    rows, timing = {}, {}
    pop = MostPopular().fit(split)
    rows["popular"] = evaluate(pop.recommend(hist, 20), truth, ks=(5, 10, 20))
    for constrained in (False, True):
        model.cfg.constrained = constrained
        t0 = time.perf_counter()
        rows["tiger " + ("constrained" if constrained else "unconstrained")] = evaluate(model.recommend(hist, 20), truth, ks=(5, 10, 20))
        timing[constrained] = (time.perf_counter() - t0) / len(pick) * 1000
    invalid = model.invalid_rate(hist, ks=(10, 20))
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, "invalid": invalid, "fit_info": model.fit_info_,
                                                     "history": model.history_, "infer_ms_per_user": timing}, indent=1))
    info = model.fit_info_
    text = f"# TIGER on {args.dataset}: CPU smoke run (UNDER-TRAINED)\n\n" + markdown_header(
        provenance(".venv/bin/python " + " ".join(["results/tiger/" + Path(sys.argv[0]).name, *sys.argv[1:]])), data=f"{args.dataset} leave-one-out, {len(split.train)} training samples; semantic IDs {args.tree} (depth {tree.depth}, k {tree.k})"
    )
    text += (f"\nTrained {int(info['epochs'])} epoch(s) x {args.steps} steps x 256 samples = {int(info['epochs']) * args.steps * 256} samples "
             f"(~{int(info['epochs']) * args.steps * 256 / len(split.train):.2f} passes over the training data; the paper trains 200K steps) "
             f"in {info['train_seconds']:.0f} s on a shared 2-core CPU. Evaluated on {len(pick)} seeded test users (not all {len(split.test)}). "
             "These numbers say the pipeline runs end to end on real data, not how good TIGER is.\n\n")
    text += "| model | recall@5 | ndcg@5 | recall@10 | ndcg@10 | recall@20 | ndcg@20 |\n|---|---|---|---|---|---|---|\n"
    for name, m in rows.items():
        text += f"| {name} | " + " | ".join(f"{m[f'{key}@{K}']:.4f}" for K in (5, 10, 20) for key in ("recall", "ndcg")) + " |\n"
    text += f"| TIGER paper (R@5 N@5 R@10 N@10) | {PUBLISHED.get(args.dataset, 'n/a')} | | | | | |\n\n"
    text += f"Invalid-ID rate (unconstrained, share of top-K beams matching no item): top-10 {invalid['invalid_rate@10']:.1%}, top-20 {invalid['invalid_rate@20']:.1%}.\n"
    losses = ", ".join(f"{h['train/loss']:.3f}" for h in model.history_)
    text += f"Training loss per epoch: {losses}. "
    text += f"Inference: {timing[False]:.1f} ms/user unconstrained, {timing[True]:.1f} ms/user constrained (beam 20, batch 128).\n"
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
