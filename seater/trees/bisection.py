"""Seeds for balanced k-means by recursive balanced bisection, batched over the nodes of a level.

Each node is cut in two along its principal direction at the size the halves need (a group that
must hold m clusters gives floor(m/2) of them, and that share of its items, to the left), the cut
is refined by a few rounds of balanced 2-means (for fixed sizes the exact assignment is a sort),
and the halves are cut again until every group holds one cluster's worth of items. The group
means are the seeds. Why: a k-means++ seeding of a node often puts two centroids into one dense
group and none into another, a fault that balanced k-means cannot undo; a balanced cut places
centroids by mass. Splits of the 16 root children of the 20K synthetic catalog (1,250 items each,
k = 16, `results/trees/bisection_probe.md`), summed cost: 170,773 from bisection seeds, 174,650 from
one k-means++ seeding, 168,575 from the best of ten, 168,429 for k-means-constrained (ten inits).
In the builder (`results/trees/bisection_levels.md`, seeds 0-5) that level's mean cost fell from
8.3963 to 8.2869 and the mean total from 41.4562 to 41.3422 (5K items: 30.4645 to 30.4263). Not at
the root: there bisection seeds split the 20K catalog at 29.84 per item against 28.47 from the
builder's k-means++ restarts on a sample.
"""

from __future__ import annotations

import torch


def _split_rank(score: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Order of each row by `score` (padding last) and every item's rank in it."""
    order = score.masked_fill(~mask, float("inf")).argsort(dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return order, rank


def _means(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Weighted row means ``(B, P, d)`` of ``x`` ``(B, M, d)`` for the 0/1 weights ``w`` ``(B, P, M)`` (one pass over x)."""
    return torch.bmm(w, x) / w.sum(2, keepdim=True).clamp_min(1)


def bisection_seeds(
    xl: torch.Tensor, mask: torch.Tensor, k: int, gen: torch.Generator, power_iters: int = 30, lloyd_iters: int = 1
) -> torch.Tensor:
    """``(G, k, d)`` seeds for the nodes ``xl`` ``(G, M, d)`` (real items where ``mask``; each node holds >= k).

    The groups of a round are rows of a padded ``(groups, size, d)`` tensor (their sizes differ by at
    most one within a node), so every step is a dense batched operation. The principal direction
    is found by ``power_iters`` products with each group's d x d scatter matrix (one pass over the
    items forms it); each of the ``lloyd_iters`` 2-means steps is two more passes. Measured (20K
    synthetic items, seeds 0-5, mean total cost): 41.3816 with 2 power iterations on the items,
    41.3422 with 30 on the scatter matrix; 4 or 10 Lloyd steps instead of 1 gave 41.3403 / 41.3351
    for ~0.15 s each at 361,245 items.
    """
    g, _, d = xl.shape
    dev, dt = xl.device, xl.dtype
    x, real = xl, mask  # padding rows may hold anything finite: every sum below weighs them 0
    quota = torch.full((g,), k, dtype=torch.long, device=dev)  # clusters each group must hold
    while int(quota.max()) > 1:
        w = real.to(dt)
        cnt = real.sum(1)
        left_n = cnt * (quota // 2) // quota.clamp_min(1)  # floor(m/2) of m clusters' items go left
        mu = _means(x, w[:, None, :])  # (B, 1, d)
        # principal direction of each group: power iteration on its d x d scatter matrix (one pass
        # over the items to form it, then only d x d products)
        cov = torch.bmm(x.transpose(1, 2) * w[:, None, :], x) - cnt.to(dt)[:, None, None] * mu.transpose(1, 2) * mu
        v = torch.randn((x.shape[0], d, 1), generator=gen, device=dev, dtype=dt)
        for _ in range(power_iters):
            v = torch.bmm(cov, v)
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)
        order, rank = _split_rank(torch.bmm(x, v).squeeze(2), real)
        for _ in range(lloyd_iters):  # balanced 2-means: for fixed sizes the exact split is a sort
            left = (rank < left_n[:, None]) & real
            c = _means(x, torch.stack([left, real & ~left], dim=1).to(dt))
            c0, c1 = c[:, 0], c[:, 1]
            # ||x - c0||^2 - ||x - c1||^2: the lowest left_n go left
            score = 2 * torch.bmm(x, (c1 - c0)[..., None]).squeeze(2) + ((c0 * c0).sum(1) - (c1 * c1).sum(1))[:, None]
            order, rank = _split_rank(score, real)
        # the halves as new rows: left = the first left_n of the order, right = the rest
        right_n = cnt - left_n
        width = int(torch.maximum(left_n, right_n).max())
        pos = torch.arange(width, device=dev)
        take = torch.stack([pos[None, :].expand(len(cnt), -1), left_n[:, None] + pos[None, :]], dim=1)  # (B, 2, W)
        valid = take < torch.stack([left_n, cnt], dim=1)[..., None]
        src = order.gather(1, take.reshape(len(cnt), -1).clamp_max(order.shape[1] - 1))
        src = src + torch.arange(len(cnt), device=dev)[:, None] * x.shape[1]
        x = x.reshape(-1, d).index_select(0, src.reshape(-1)).view(-1, width, d)  # (faster than gather on CPU)
        real = valid.reshape(-1, width)
        quota = torch.stack([quota // 2, quota - quota // 2], dim=1).reshape(-1)
    keep = (quota == 1).view(g, -1)  # exactly k groups per node hold one cluster; the others are empty
    mu = _means(x, real.to(dt)[:, None, :]).view(g, -1, d)
    return mu[keep].view(g, k, d)
