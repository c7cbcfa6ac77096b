"""Where the time goes on a GPU: torch.profiler tables for one beam-search batch and one training step.

A diagnostic for a GPU session (bench/gpu_checks.sh runs it last), so a missed speed target comes
back with the operators to work on rather than one number:
    python3 -m bench.speed.profile --device cuda --beam-items 361000 --train-items 12101
The balanced tree builder is left out: it issues ~2 x 10^5 small operators at 361K items (count
them on CPU with a TorchFunctionMode), so its time is launch overhead and the profiler's own
bookkeeping of that many events outlasts the build.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from bench.speed.retrieval import balanced_random_tree, seater_default
from seater.model.config import SEATERConfig
from seater.model.seater import SEATER
from seater.training import backward_step, bf16_autocast


def _table(prof, device: torch.device, rows: int) -> str:
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def _profiled(fn, device: torch.device):
    fn()  # warm-up: CUDA context, kernel loading, allocator
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # its kernels must not land in the profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return prof


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--train-items", type=int, default=12_101)
    ap.add_argument("--train-batch", type=int, default=2048)
    ap.add_argument("--beam-items", type=int, default=361_000)
    ap.add_argument("--users", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=25)
    args = ap.parse_args(argv)
    for name in ("train_items", "train_batch", "beam_items", "users", "rows"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.beam_items < 50:
        ap.error(f"--beam-items must be >= 50 (beam 50, top-50), got {args.beam_items}")
    if args.train_items < 2:
        ap.error(f"--train-items must be >= 2, got {args.train_items}")
    from seater.device import resolve_device
    from seater.errors import ConfigError

    try:
        dev = resolve_device(args.device)
    except ConfigError as e:  # "gpu", or cuda without CUDA
        ap.error(str(e))

    tree = balanced_random_tree(args.beam_items, 16, seed=0)
    conf = SEATERConfig(n_items=args.beam_items, n_tokens=tree.n_tokens, depth=tree.depth, d_model=64)
    model = SEATER(conf, tree).to(dev).eval()
    hist = torch.randint(1, args.beam_items + 1, (args.users, 20), generator=torch.Generator().manual_seed(0)).to(dev)
    for attention in ("auto", "math"):
        prof = _profiled(lambda: model.recommend(hist, beam_size=50, topk=50, attention=attention), dev)
        print(f"### beam search, {args.beam_items:,} items, {args.users} users, beam 50, top-50, attention {attention}, {dev}")
        print(_table(prof, dev, args.rows))

    train_tree = balanced_random_tree(args.train_items, 16, seed=0)
    conf = SEATERConfig(n_items=args.train_items, n_tokens=train_tree.n_tokens, depth=train_tree.depth, d_model=64)
    model = SEATER(conf, train_tree).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=seater_default("weight_decay"))
    clip = seater_default("grad_clip")
    gen = torch.Generator().manual_seed(1)
    th = torch.randint(1, args.train_items + 1, (args.train_batch, 20), generator=gen).to(dev)
    tt = torch.randint(1, args.train_items + 1, (args.train_batch,), generator=gen).to(dev)

    def train_step():
        with bf16_autocast(dev):
            loss = model.loss(th, tt)["loss"]
        backward_step(loss, opt, model.parameters(), clip)

    prof = _profiled(train_step, dev)
    print(f"### training step, {args.train_items:,} items, batch {args.train_batch}, all three losses, {dev}")
    print(_table(prof, dev, args.rows))


if __name__ == "__main__":
    main()
