"""Count the torch operators one `balanced` build issues, by calling function (a proxy for GPU launches).

On a GPU the build is launch-bound (results/trees/README.md): its time follows the number of
operators, not the arithmetic. Counting them on CPU with a TorchFunctionMode shows where they come
from without a GPU. Usage: python results/trees/operator_count_probe.py [--n 361245] [--k 16]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import torch
from torch.overrides import TorchFunctionMode

from bench.speed.trees import synthetic
from seater.trees.balanced import build


class Count(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.by_caller: collections.Counter[str] = collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        frame = sys._getframe(1)
        while frame is not None and "seater/trees/" not in frame.f_code.co_filename:
            frame = frame.f_back
        self.by_caller[frame.f_code.co_name if frame else "?"] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=361_245)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    x = synthetic(a.n, 64, 0)
    mode = Count()
    t = time.perf_counter()
    with mode:
        tree = build(x, a.k, seed=a.seed, threads=2)
    total = sum(mode.by_caller.values())
    print(f"n={a.n} k={a.k}: {total:,} torch operators, {time.perf_counter() - t:.1f} s with counting, depth {tree.depth}")
    for name, c in mode.by_caller.most_common(12):
        print(f"  {name:32s} {c:>9,}")


if __name__ == "__main__":
    main()
