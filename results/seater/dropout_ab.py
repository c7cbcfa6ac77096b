"""CPU time of a SEATER training step with torch's dropout vs `seater.dropout.Dropout`, interleaved.

One process, one torch thread, the speed benchmark's training setup (12,101-item balanced random tree,
k = 16, batch 256, history 20, all three losses, AdamW). The two variants swap the class of every
dropout module of the same model and alternate round by round; times are process CPU seconds, so
another job on the machine slows both alike rather than one of them. Usage:

    python results/seater/dropout_ab.py [--rounds 8] [--steps 5] [--out results/seater/dropout_ab.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
from torch import nn

from bench.provenance import probe_header, write_markdown
from bench.speed.retrieval import balanced_random_tree
from seater.dropout import Dropout
from seater.model.config import SEATERConfig
from seater.model.seater import SEATER


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5, help="training steps per variant per round")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--out", help="markdown file (default: stdout)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    n = 12_101
    tree = balanced_random_tree(n, 16, 0)
    torch.manual_seed(0)
    model = SEATER(SEATERConfig(n_items=n, n_tokens=tree.n_tokens, depth=tree.depth, d_model=64), tree).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    hist = torch.randint(1, n + 1, (a.batch, 20), generator=g)
    target = torch.randint(1, n + 1, (a.batch,), generator=g)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]

    def run(cls: type, steps: int) -> float:
        for m in drops:
            m.__class__ = cls
        t0 = time.process_time()
        for _ in range(steps):
            loss = model.loss(hist, target)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (time.process_time() - t0) / steps

    variants = {"torch.nn.Dropout": nn.Dropout, "seater.dropout.Dropout": Dropout}
    for cls in variants.values():
        run(cls, 2)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(a.rounds):
        for name, cls in variants.items():
            times[name].append(run(cls, a.steps))
    base = statistics.median(times["torch.nn.Dropout"])
    lines = ["# SEATER training step on CPU: torch's dropout vs seater.dropout", ""]
    lines += probe_header("results/seater/dropout_ab.py", sys.argv[1:]) + [""]
    lines += [f"{len(drops)} dropout modules; batch {a.batch}, {n:,} items, k = 16, all three losses, 1 torch thread; "
              f"{a.rounds} rounds x {a.steps} steps per variant, interleaved; process CPU time; load average at the end "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.", ""]
    lines += ["| dropout | median ms / step | min ms / step | samples / CPU s | vs torch |", "|---|---:|---:|---:|---:|"]
    for name, ts in times.items():
        med = statistics.median(ts)
        lines.append(f"| {name} | {med * 1e3:.1f} | {min(ts) * 1e3:.1f} | {a.batch / med:,.0f} | {base / med:.2f}x |")
    write_markdown(lines, a.out)


if __name__ == "__main__":
    main()
