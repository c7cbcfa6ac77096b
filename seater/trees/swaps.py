"""Pairwise swap refinement of balanced clusterings (the step after balanced k-means).

Balanced k-means stops at a fixed point of "assign optimally, move centroids", which on small
nodes is often far from the best balanced partition: Lloyd's step cannot see that moving an
item also moves its cluster's mean. Exchanging two items i in A and j in B keeps every size
and changes the sum of squared distances by exactly (s = cluster sums, n = sizes,
delta = x_j - x_i)::

    dSSE = -(2 s_A.delta + |delta|^2) / n_A - (-2 s_B.delta + |delta|^2) / n_B

so all exchanges of a node are scored at once from ``Q = sums @ x^T`` (``(k, M)``) and the
item Gram matrix. Each pass applies, per node, the best exchange of up to k/2 cluster pairs
that share no cluster (their gains then add up exactly), until no exchange gains or the pass
budget runs out. Every applied exchange lowers the objective, so the refined split is never
worse than the one it starts from.

Cost per pass is ``O(M^2)`` per node of M items (``O(N M)`` for a level), which is why the
builder only refines levels up to a total work (`swap_work` = items x node size).
"""

from __future__ import annotations

import torch


def swap_refine(
    xl: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, k: int, max_passes: int, chunk: int = 1 << 22,
    tol: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Refine the balanced `labels` ``(G, M)`` of every node by exact pairwise exchanges.

    xl ``(G, M, d)``, mask ``(G, M)`` (real items). Nodes are processed `chunk` // M^2 at a time
    to bound memory. Exchanges are scored in float32 and each chosen one is re-scored in float64
    and applied only if it lowers the node's objective by more than `tol` times the node's mean
    squared item norm, so rounding never drives a swap. Returns the new labels and the objective
    decrease per node (float64, >= 0).
    """
    g, m, _ = xl.shape
    out = labels.clone()
    gain = torch.zeros(g, dtype=torch.float64, device=xl.device)
    step = max(1, chunk // max(m * m, 1))
    for s in range(0, g, step):
        e = min(g, s + step)
        out[s:e], gain[s:e] = _refine_chunk(xl[s:e], mask[s:e], out[s:e], k, max_passes, tol)
    return out, gain


_BIG = 1e30  # pushes same-cluster pairs and padding far below any real score (float32-safe)


def _refine_chunk(xl, mask, labels, k, max_passes, tol):
    g, m, _ = xl.shape
    dev = xl.device
    fm = mask.to(torch.float64)[..., None]
    x = xl.to(torch.float64) * fm
    x = (x - x.sum(1, keepdim=True) / fm.sum(1, keepdim=True)) * fm  # centred, float64: exact gains
    x32 = x.float()
    sq = (x32 * x32).sum(-1)
    dist = (sq[:, :, None] + sq[:, None, :]).baddbmm_(x32, x32.transpose(1, 2), alpha=-2.0).clamp_min_(0.0)
    onehot = torch.nn.functional.one_hot(labels, k).to(torch.float64) * fm
    sizes = onehot.sum(1).clamp_min(1.0)  # (G, k); exchanges keep sizes
    w = (1.0 / sizes).float()
    wi = torch.nn.functional.one_hot(labels, k).float() @ w[..., None]
    st = {  # per-node state; rows leave it once their node has no improving exchange left
        "x": x, "x32": x32, "dist": dist, "mask": mask, "lab": labels.clone(), "sizes": sizes, "w": w,
        "sums": onehot.transpose(1, 2) @ x,  # (G, k, d) float64, updated with every exchange
        # dist * (1/n_L(i) + 1/n_L(j)), kept up to date as items change clusters (O(M) per moved item)
        "dist_w": (dist * wi).add_(dist * wi.transpose(1, 2)),
        "min_gain": tol * (x * x).sum((1, 2)) / fm.sum((1, 2)).clamp_min(1.0),
        "gain": torch.zeros(g, dtype=torch.float64, device=dev),
        "ids": torch.arange(g, device=dev),
    }
    out_lab, out_gain = labels.clone(), torch.zeros(g, dtype=torch.float64, device=dev)
    score = torch.empty((g, m, m), device=dev)  # reused: a fresh (G, M, M) every pass costs page faults
    for _ in range(max_passes):
        moved = _exchange_pass(st, k, score[: st["ids"].numel()])
        done = ~moved
        if bool(done.all()):
            break
        # a node without an applied exchange is unchanged, so it is finished: once half of the
        # rows are, drop them (copying the state costs about one pass)
        if int(moved.sum()) <= moved.numel() // 2:
            out_lab[st["ids"][done]], out_gain[st["ids"][done]] = st["lab"][done], st["gain"][done]
            st = {key: t[moved] for key, t in st.items()}
    out_lab[st["ids"]], out_gain[st["ids"]] = st["lab"], st["gain"]
    return out_lab, out_gain


def _exchange_pass(st: dict, k: int, score: torch.Tensor) -> torch.Tensor:
    """One pass over every node in `st` (updated in place; `score` is scratch space); returns which
    nodes applied an exchange."""
    x, lab, sums, sizes, w, mask, dist_w = st["x"], st["lab"], st["sums"], st["sizes"], st["w"], st["mask"], st["dist_w"]
    g, m, _ = x.shape
    dev = x.device
    rows = torch.arange(g, device=dev)
    # score[i, j] = -dSSE of exchanging i and j = t[i, j] + t[j, i] with
    # t[i, j] = (2 s_L(i).(x_j - x_i) + |x_i - x_j|^2) / n_L(i), as one batched matmul of rank
    # 2k + 2 on top of the distance term; same-cluster pairs and padding get -_BIG
    a = torch.nn.functional.one_hot(lab, k).float() * mask[..., None]  # (G, M, k)
    wi = a @ w[..., None]  # (G, M, 1): 1 / n_L(i)
    q = sums.float() @ st["x32"].transpose(1, 2)  # (G, k, M): s_c . x_j
    own = 2.0 * wi * (a * q.transpose(1, 2)).sum(-1, keepdim=True) + (~mask).float()[..., None] * _BIG
    ones = torch.ones((g, m, 1), device=dev)
    left = torch.cat([a, q.transpose(1, 2), -own, ones], 2)
    right = torch.cat([2.0 * w[..., None] * q - _BIG * a.transpose(1, 2),
                       2.0 * w[:, :, None] * a.transpose(1, 2), ones.transpose(1, 2), -own.transpose(1, 2)], 1)
    best, partner = torch.baddbmm(dist_w, left, right, out=score).max(2)  # every item's best exchange
    # the best exchange per unordered cluster pair {a, b}, and the item whose row holds it
    la, lb = lab, lab.gather(1, partner)
    pair = torch.minimum(la, lb) * k + torch.maximum(la, lb)
    top = torch.full((g, k * k), -torch.inf, device=dev).scatter_reduce_(1, pair, best, "amax")
    hit = (best == top.gather(1, pair)) & (best > 0)
    row = torch.full((g, k * k), m, dtype=torch.long, device=dev).scatter_reduce_(
        1, pair, torch.where(hit, torch.arange(m, device=dev).expand(g, -1), m), "amin")
    upper = torch.ones(k, k, dtype=torch.bool, device=dev).triu(1)
    top = torch.where(upper & (top.view(g, k, k) > 0), top.view(g, k, k), -torch.inf)
    # greedily, best first, exchanges whose clusters are all distinct: their gains add up exactly
    picked_r, picked_ab = [], []
    for _ in range(k // 2):
        val, ab = top.view(g, -1).max(1)
        live = val > 0
        if not bool(live.any()):
            break
        r, ab = rows[live], ab[live]
        picked_r.append(r)
        picked_ab.append(ab)
        for c in (ab // k, ab % k):
            top[r, c, :] = -torch.inf
            top[r, :, c] = -torch.inf
    moved = torch.zeros(g, dtype=torch.bool, device=dev)
    if not picked_r:
        return moved
    r, ab = torch.cat(picked_r), torch.cat(picked_ab)
    i = row[r, ab]
    j = partner[r, i]
    ci, cj = lab[r, i], lab[r, j]
    delta = x[r, j] - x[r, i]
    dd = (delta * delta).sum(-1)
    exact = ((2.0 * (sums[r, ci] * delta).sum(-1) + dd) / sizes[r, ci]
             + (-2.0 * (sums[r, cj] * delta).sum(-1) + dd) / sizes[r, cj])  # -dSSE, float64
    ok = exact > st["min_gain"][r]
    r, i, j, ci, cj, delta = r[ok], i[ok], j[ok], ci[ok], cj[ok], delta[ok]
    sums.index_put_((r, ci), delta, accumulate=True)
    sums.index_put_((r, cj), -delta, accumulate=True)
    lab[r, i], lab[r, j] = cj, ci
    st["gain"].index_put_((r,), exact[ok], accumulate=True)
    change = (w[r, cj] - w[r, ci])[:, None]  # i moved ci -> cj, j the other way
    dist = st["dist"]
    for item, dw in ((i, change), (j, -change)):
        dist_w[r, item, :] += dist[r, item, :] * dw
        dist_w[r, :, item] += dist[r, :, item] * dw
    moved[r] = True
    return moved
