"""Probe: one entropic Newton step, eager vs torch.compile on CPU.

The step is the loop body of `seater.trees.assignment.entropic_prices` (that function's loop, with its
compaction of finished nodes, cannot be compiled as is): `eager` is that body as the library writes it
(in place, on preallocated buffers), `fused` the same arithmetic written out-of-place for the compiler.

usage: python results/trees/newton_step_compile_probe.py [G K M]   (default 16 16 1250: level 1 of a 20K-item tree)
Prints compile seconds, ms per step for each (two alternating rounds), and the largest output difference.
"""

import sys
import time

import torch


def eager(c, p, eps, buf, hard):
    z = torch.sub(p[:, :, None], c, out=buf).div_(eps[:, None, None])
    pm = z.sub_(z.amax(1, keepdim=True)).clamp_min_(-80.0).exp_()
    sz = torch.floor(pm, out=hard).sum(2)
    pm = pm.div_(pm.sum(1, keepdim=True))
    col = pm.sum(2)
    return col, torch.diag_embed(col) - pm @ pm.transpose(1, 2), sz


def fused(c, p, eps):
    z = (p[:, :, None] - c) / eps[:, None, None]
    z = z - z.amax(1, keepdim=True)
    sz = (z == 0).to(c.dtype).sum(2)
    e = z.clamp_min(-80.0).exp()
    pm = e / e.sum(1, keepdim=True)
    col = pm.sum(2)
    return col, torch.diag_embed(col) - pm @ pm.transpose(1, 2), sz


def main() -> None:
    torch.set_num_threads(1)
    g_, k_, m_ = map(int, sys.argv[1:4]) if len(sys.argv) > 3 else (16, 16, 1250)
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(g_, k_, m_, generator=gen)
    p = torch.randn(g_, k_, generator=gen) * 0.1
    eps = torch.full((g_,), 0.05)
    buf, hard = torch.empty_like(c), torch.empty_like(c)
    t0 = time.perf_counter()
    compiled = torch.compile(fused, dynamic=True)
    compiled(c, p, eps)
    print("compile s", time.perf_counter() - t0)
    steps = {"eager": lambda: eager(c, p, eps, buf, hard), "compiled": lambda: compiled(c, p, eps)}
    for name in ("eager", "compiled", "eager", "compiled"):
        steps[name]()
        t = time.perf_counter()
        for _ in range(50):
            steps[name]()
        print(name, (time.perf_counter() - t) / 50 * 1e3, "ms")
    print([float((x - y).abs().max()) for x, y in zip(steps["eager"](), steps["compiled"]())])


if __name__ == "__main__":
    main()
