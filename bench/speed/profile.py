"""Where the time goes: torch.profiler tables for one beam-search batch and one balanced-tree build.

A diagnostic for a GPU session (bench/gpu_checks.sh runs it last; the build has ~10^5 operator
calls, whose table alone takes tens of seconds, so it comes second), so a missed speed target comes
back with the operators to work on rather than one number:
    python3 -m bench.speed.profile --device cuda --tree-items 1000000 --beam-items 361000
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from bench.speed.retrieval import balanced_random_tree
from seater.data.synthetic import synthetic_embeddings
from seater.model.config import SEATERConfig
from seater.model.seater import SEATER
from seater.trees.balanced import build as build_balanced


def _table(prof, device: torch.device, rows: int) -> str:
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def _profiled(fn, device: torch.device):
    fn()  # warm-up: CUDA context, kernel loading, allocator
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return prof


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tree-items", type=int, default=1_000_000)
    ap.add_argument("--beam-items", type=int, default=361_000)
    ap.add_argument("--users", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=25)
    args = ap.parse_args(argv)
    dev = torch.device(args.device)

    tree = balanced_random_tree(args.beam_items, 16, seed=0)
    conf = SEATERConfig(n_items=args.beam_items, n_tokens=tree.n_tokens, depth=tree.depth, d_model=64)
    model = SEATER(conf, tree).to(dev).eval()
    hist = torch.randint(1, args.beam_items + 1, (args.users, 20), generator=torch.Generator().manual_seed(0)).to(dev)
    prof = _profiled(lambda: model.recommend(hist, beam_size=50, topk=50), dev)
    print(f"### beam search, {args.beam_items:,} items, {args.users} users, beam 50, top-50, {dev}")
    print(_table(prof, dev, args.rows))

    x = synthetic_embeddings(args.tree_items, 64, seed=0)
    prof = _profiled(lambda: build_balanced(x, 16, seed=0, device=args.device), dev)
    print(f"### balanced build, {args.tree_items:,} items, d 64, k 16, {dev}")
    print(_table(prof, dev, args.rows))


if __name__ == "__main__":
    main()
