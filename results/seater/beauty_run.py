"""One-off CPU run of SEATER on Amazon Beauty (leave-one-out), written to results/seater/.

    nice -n 5 .venv/bin/python results/seater/beauty_run.py --epochs 3 --k 16 [--sasrec /tmp/sasrec_beauty_seed0.npy]

Tree: the `balanced` builder (k) on SASRec item embeddings when --sasrec is given, else on a
64-d truncated SVD of the item co-occurrence matrix of the training sequences (window +-3),
which this script says in its output. The harness route (`seater-bench run
bench/suites/beauty_seater.toml`) is the full grid (3 seeds, ablations, k in {4, 8, 16}).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds

import bench.registry as registry
from baselines.popular import MostPopular
from bench.provenance import markdown_header, provenance
from seater.data.loaders import load_s3rec
from seater.data.splits import leave_one_out
from seater.evaluation import evaluate_retriever
from seater.model.retriever import SEATERRetriever


def cooccurrence_svd(split, dim: int = 64, window: int = 3) -> np.ndarray:
    rows, cols = [], []
    for s in split.train_sequences:
        for w in range(1, window + 1):
            rows.append(s[:-w]), cols.append(s[w:])
    r, c = np.concatenate(rows) - 1, np.concatenate(cols) - 1
    n = split.n_items
    m = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    m = m + m.T
    m.data = np.log1p(m.data)
    u, s, _ = svds(m.astype(np.float64), k=dim, random_state=0)
    return (u * np.sqrt(s)).astype(np.float32) + 1e-4 * np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/amazon-beauty")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sasrec", default=None)
    ap.add_argument("--val-users", type=int, default=500)
    ap.add_argument("--exact-users", type=int, default=200)
    ap.add_argument("--out", default="results/seater")
    ap.add_argument("--tag", default="full")
    ap.add_argument("--max-train-samples", type=int, default=0, help="0 = all; else a seeded random subset (CPU budget)")
    ap.add_argument("--test-users", type=int, default=0, help="0 = all; else a seeded random subset of test users")
    ap.add_argument("--no-align", action="store_true")
    ap.add_argument("--no-rank", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    builders, _ = registry.load_all()
    split = leave_one_out(load_s3rec(a.data))
    rng = np.random.default_rng(a.seed)
    if a.max_train_samples and a.max_train_samples < len(split.train):
        from seater.data.types import TrainSamples

        keep = np.sort(rng.choice(len(split.train), a.max_train_samples, replace=False))
        t = split.train
        split.train = TrainSamples(t.histories[keep], t.targets[keep], t.users[keep])
    if a.test_users and a.test_users < len(split.test):
        from seater.data.types import EvalSet

        keep = np.sort(rng.choice(len(split.test), a.test_users, replace=False))
        t = split.test
        split.test = EvalSet(t.users[keep], t.histories[keep], [t.truth[i] for i in keep])
    t0 = time.perf_counter()
    from seater.trees.tree import Tree

    cache = Path(f"/tmp/seater_beauty_tree_k{a.k}_s{a.seed}{'_sasrec' if a.sasrec else '_svd'}.npz")
    if cache.is_file():
        tree = Tree.load(cache)
        emb_src = tree.build_info.get("embeddings", "?")
    elif a.sasrec:
        emb, emb_src = np.load(a.sasrec).astype(np.float32), f"SASRec item embeddings {a.sasrec}"
    else:
        emb, emb_src = cooccurrence_svd(split), "64-d truncated SVD of log item co-occurrence (window 3) — SASRec embeddings were not available"
    if not cache.is_file():
        tree = builders.get("balanced").factory(emb, a.k, seed=a.seed)
        tree.build_info["embeddings"] = emb_src
        tree.save(cache)
    tree_s = time.perf_counter() - t0
    if "seconds" in tree.build_info:  # builder time, also when the tree came from the cache
        tree_s = float(tree.build_info["seconds"])
    print(f"{tree} ({'cached ' + str(cache) + ', ' if tree_s > time.perf_counter() - t0 else ''}builder {tree_s:.1f}s) from {emb_src}", flush=True)
    r = SEATERRetriever(device="cpu", seed=a.seed, epochs=a.epochs, val_users=a.val_users, progress=False,
                        use_align=not a.no_align, use_rank=not a.no_rank,
                        checkpoint_dir=f"/tmp/seater_beauty_{a.tag}_k{a.k}_s{a.seed}")
    r.fit(split, tree)
    print("fit", r.fit_info_, flush=True)
    res = evaluate_retriever(r, split.test, ks=(5, 10, 20, 50), batch_size=256, n_items=split.n_items)
    pop = evaluate_retriever(MostPopular().fit(split), split.test, ks=(5, 10, 20, 50)).metrics
    # decoding accounting: invalid / duplicate ids, and beam vs exact scoring of every identifier
    pred = res.predictions
    invalid = float(((pred < 1) | (pred > split.n_items)).mean())
    dup = float(np.mean([len(row) - len(set(row)) for row in pred.tolist()]) / pred.shape[1])
    rows = np.random.default_rng(0).choice(len(split.test), min(a.exact_users, len(split.test)), replace=False)
    from seater.metrics import evaluate
    hist, truth = split.test.histories[rows], [split.test.truth[i] for i in rows]
    beam_m = evaluate(pred[rows], truth, ks=(5, 10, 20, 50))
    exact_m = evaluate(r.recommend_exact(hist, 50), truth, ks=(5, 10, 20, 50))
    out = {"provenance": provenance(), "dataset": "amazon-beauty", "train_samples": len(split.train), "test_users": len(split.test), "protocol": "leave_one_out", "tree": repr(tree),
           "tree_embeddings": emb_src, "tree_seconds": tree_s, "k": a.k, "seed": a.seed, "tag": a.tag, "params": r.p,
           "fit_info": r.fit_info_, "history": r.train_result_.history, "test": res.metrics, "popular": pop,
           "infer_users_per_s": res.users_per_second, "invalid_rate": invalid, "duplicate_rate": dup,
           "beam_vs_exact": {"users": a.exact_users, "beam": beam_m, "exact": exact_m}}
    path = Path(a.out) / f"beauty_{a.tag}_k{a.k}_seed{a.seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    print(json.dumps({k: out[k] for k in ("test", "popular", "invalid_rate", "duplicate_rate", "beam_vs_exact")}, indent=1), flush=True)
    print("wrote", path)


if __name__ == "__main__":
    main()
