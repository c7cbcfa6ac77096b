"""Probe: one entropic Newton step (seater.trees.assignment.entropic_prices) eager vs torch.compile on CPU.

usage: python results/trees/newton_step_compile_probe.py [G K M]   (default 16 16 1250: level 1 of a 20K-item tree)
Prints compile seconds, ms per step for each (two alternating rounds), and the largest output difference.
"""
import sys
import time

import torch

torch.set_num_threads(1)
G, K, M = map(int, sys.argv[1:4]) if len(sys.argv) > 3 else (16, 16, 1250)
g = torch.Generator().manual_seed(0)
c = torch.randn(G, K, M, generator=g)
p = torch.randn(G, K, generator=g) * 0.1
eps = torch.full((G,), 0.05)
buf = torch.empty_like(c); hard = torch.empty_like(c)
def eager(c, p, eps):
    z = torch.sub(p[:, :, None], c, out=buf).div_(eps[:, None, None])
    pm = z.sub_(z.amax(1, keepdim=True)).clamp_min_(-80.0).exp_()
    h = torch.floor(pm, out=hard); sz = h.sum(2)
    pm = pm.div_(pm.sum(1, keepdim=True))
    col = pm.sum(2)
    a = torch.diag_embed(col) - pm @ pm.transpose(1, 2)
    return col, a, sz
def fused(c, p, eps):
    z = (p[:, :, None] - c) / eps[:, None, None]
    z = z - z.amax(1, keepdim=True)
    sz = (z == 0).to(c.dtype).sum(2)
    e = z.clamp_min(-80.0).exp()
    pm = e / e.sum(1, keepdim=True)
    col = pm.sum(2)
    a = torch.diag_embed(col) - pm @ pm.transpose(1, 2)
    return col, a, sz
t0 = time.perf_counter()
comp = torch.compile(fused, dynamic=True)
comp(c, p, eps); print("compile s", time.perf_counter() - t0)
for name, f in [("eager", eager), ("compiled", comp), ("eager", eager), ("compiled", comp)]:
    f(c, p, eps)
    t = time.perf_counter(); n = 50
    for _ in range(n): out = f(c, p, eps)
    print(name, (time.perf_counter() - t) / n * 1e3, "ms")
a, b = eager(c, p, eps), comp(c, p, eps)
print([float((x - y).abs().max()) for x, y in zip(a, b)])
