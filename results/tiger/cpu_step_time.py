"""What one TIGER training step costs on this CPU: why TIGER is trained on a GPU, not here.

Run from the repository root:

    .venv/bin/python results/tiger/cpu_step_time.py --out results/tiger/cpu_step_time.md
    python3 results/tiger/cpu_step_time.py --device cuda --out results/tiger/gpu_step_time.md   # bench/gpu_checks.sh

Times forward + backward + AdamW of the paper-size model (4+4 layers, d 128, 6 x 64 heads, FFN 1024) on one
batch of 256 synthetic samples shaped like Beauty's (1 user token + 20 items x 4 codes in, 4 codes out, 256
codes per level), on one torch thread (or a GPU, in bf16 autocast as the training loop runs there), and scales it to one Beauty epoch and to the paper's 200K steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from baselines.tiger import TIGERConfig, TIGERModel  # noqa: E402
from bench.provenance import markdown_header, provenance  # noqa: E402
from seater.training import bf16_autocast  # noqa: E402

BEAUTY_TRAIN_SAMPLES = 131_413  # leave-one-out training samples of Amazon Beauty, history 20 (protocol card)
PAPER_STEPS = 200_000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu", help="cpu (one thread) or cuda (bf16 autocast)")
    args = p.parse_args()
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if not cuda:
        torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg, k, depth = TIGERConfig(), 256, 4
    model = TIGERModel(cfg, k, depth).to(dev)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    enc = torch.randint(1, 1 + cfg.user_buckets + depth * k, (args.batch, 1 + cfg.max_history * depth)).to(dev)
    dec = torch.randint(2, 2 + depth * k, (args.batch, depth)).to(dev)
    labels = torch.randint(0, k, (args.batch, depth)).to(dev)
    times = []
    for _ in range(args.steps + 1):  # the first step warms up and is not counted
        t0 = time.perf_counter()
        with bf16_autocast(dev):
            memory, mask = model.encode(enc)
            loss = F.cross_entropy(model.decode(dec, memory, mask).reshape(-1, k + 1).float(), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[1:])
    epoch_steps = -(-BEAUTY_TRAIN_SAMPLES // args.batch)
    n_params = sum(q.numel() for q in model.parameters())
    lines = [
        f"# TIGER training step on {'GPU' if cuda else 'CPU'}", "",
        markdown_header(provenance(" ".join(["python", *sys.argv])), data=f"synthetic batch of {args.batch}, Beauty-shaped"),
        f"- model: paper size, {n_params:,} parameters; {'bf16 autocast' if cuda else 'one torch thread'}", "",
        "| what | seconds | hours | days |", "|---|---:|---:|---:|",
        f"| one step (batch {args.batch}, median of {args.steps}) | {step:.2f} | | |",
        f"| one Beauty epoch ({BEAUTY_TRAIN_SAMPLES:,} samples, {epoch_steps} steps) | {step * epoch_steps:,.0f} | {step * epoch_steps / 3600:.2f} | |",
        f"| the paper's {PAPER_STEPS:,} steps | {step * PAPER_STEPS:,.0f} | {step * PAPER_STEPS / 3600:,.0f} | {step * PAPER_STEPS / 86400:.1f} |",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
