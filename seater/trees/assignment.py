"""Exact balanced assignment for fixed centroids, batched over the nodes of a tree level.

Problem (one node): n items, k clusters, cost ``c[i, j]`` (squared distances, or anything
that differs from them by a per-item constant). Choose labels so every cluster holds
``q = n // k`` or ``q + 1`` items (exactly ``r = n % k`` clusters get ``q + 1``; which ones is
free) and ``sum_i c[i, label_i]`` is minimal. It is a transportation problem, so its LP is
integral, and a feasible assignment is optimal iff the residual graph has no negative cycle.

Why a *contracted* residual graph suffices: every residual cycle alternates cluster -> item
-> cluster, so it only ever uses, for each ordered pair of clusters (a, b), the cheapest
item of a to move to b. The graph therefore has k cluster nodes plus one slot node ``S`` for
the floor/ceil choice (``S -> a`` with weight 0 when a holds q+1 items and may give one up,
``b -> S`` with weight 0 when b holds q items and may take one more). A simple cycle visits
each cluster once, so it moves distinct items; "no negative cycle" is the certificate and the
Bellman-Ford distances are then exact dual prices.

Method: (1) prices from Newton on the entropic semi-dual (joint in all k prices, eps decreasing);
(2) every item to ``argmin_j c[i, j] - p[j]``; (3) repair: move the cheapest items from over- to
under-full clusters until sizes are feasible, then cancel negative cycles (Bellman-Ford on k+1
nodes) until none is left. Every step is a batched torch computation over all nodes of a level,
so the same code runs on CPU and GPU.
"""

from __future__ import annotations

import numpy as np
import torch

from seater.errors import ConfigError, DataError, TreeBuildError

__all__ = [
    "approx_balanced_labels",
    "balanced_assignment",
    "balanced_assignment_batched",
    "entropic_prices",
    "is_optimal",
    "sizes_ok",
    "slot_assignment",
]


# --------------------------------------------------------------------------- helpers
def _sizes(labels: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Cluster sizes ``(G, k)`` (padding excluded)."""
    g = labels.shape[0]
    key = torch.arange(g, device=labels.device)[:, None] * k + labels
    key = torch.where(mask, key, g * k)
    return torch.bincount(key.reshape(-1), minlength=g * k + 1)[: g * k].view(g, k)


def _move_weights(cost: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``w[g, a, b]``: cheapest cost change of moving one item of cluster a to b (inf if a is empty or a == b).

    Each weight is raised by ``2 (k+1)`` ulps of its own size, more than the rounding of a
    difference and of a sum of up to k+1 of them: a cycle is then negative only when it really
    lowers the cost (so cancelling it always makes progress), and "no negative cycle" certifies
    the labels as optimal for the cost matrix up to that rounding. (A tolerance scaled by the
    node's largest entry, as before, hid real cycles worth thousands when a far outlier group
    shared the node.)
    """
    g, m, k = cost.shape
    cur = cost.gather(2, labels[..., None])
    delta = (cost - cur).reshape(g * m, k)
    key = torch.arange(g, device=cost.device)[:, None] * k + labels
    key = torch.where(mask, key, g * k).reshape(g * m, 1).expand(-1, k)
    w = torch.full((g * k + 1, k), float("inf"), dtype=cost.dtype, device=cost.device)
    w = w.scatter_reduce(0, key, delta, reduce="amin", include_self=True)[: g * k].view(g, k, k)
    w = w + w.abs() * (2 * (k + 1) * torch.finfo(cost.dtype).eps)
    eye = torch.eye(k, dtype=torch.bool, device=cost.device)
    return w.masked_fill(eye, float("inf"))


def _pick(v: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """``v[rows]``, or `v` itself when rows is None (all rows: no copy, no operator)."""
    return v if rows is None else v[rows]


def _residual_graph(w: torch.Tensor, sizes: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Contracted residual graph ``(G, k+1, k+1)``: clusters 0..k-1 plus the slot node k."""
    g, k, _ = w.shape
    inf = float("inf")
    full = torch.full((g, k + 1, k + 1), inf, dtype=w.dtype, device=w.device)
    full[:, :k, :k] = w
    zero = torch.zeros((), dtype=w.dtype, device=w.device)
    full[:, k, :k] = torch.where(sizes == q[:, None] + 1, zero, inf)  # S -> a: a may give up its extra item
    full[:, :k, k] = torch.where(sizes == q[:, None], zero, inf)  # b -> S: b may take an extra item
    return full


def _bellman_ford(wg: torch.Tensor):
    """Batched Bellman-Ford from a virtual source joined to every node by 0-weight edges.

    Returns distances, predecessors (-1 = the virtual source) and whether round n still
    improved a distance (then a negative cycle exists and the predecessor graph holds one);
    None instead of that mask when every node converged before round n (no negative cycle
    anywhere: the caller skips the cycle search, ~35 operators per certifying round).
    """
    g, n, _ = wg.shape
    d = torch.zeros((g, n), dtype=wg.dtype, device=wg.device)
    pred = torch.full((g, n), -1, dtype=torch.long, device=wg.device)
    for _ in range(n):
        best, arg = (d[:, :, None] + wg).min(dim=1)
        upd = best < d
        if not bool(upd.any()):
            return d, pred, None
        d = torch.where(upd, best, d)
        pred = torch.where(upd, arg, pred)
    return d, pred, upd.any(dim=1)


def _find_cycles(wg: torch.Tensor, pred: torch.Tensor):
    """Most negative cycle of each node's predecessor graph.

    Returns ``(weight (G,), frm (G, n), to (G, n), valid (G, n))``: the cycle's edges are
    ``frm[j] -> to[j]`` where ``valid[j]`` (to = j, frm = pred[j]); weight is +inf where no cycle
    was found. Pointer doubling instead of walking the graph: a few gathers per call whatever n,
    which matters on a GPU, where this runs every repair round and each operation is a launch.
    """
    g, n, _ = wg.shape
    dev = wg.device
    # pred with the virtual source as an absorbing node n
    p = torch.cat([torch.where(pred >= 0, pred, n), torch.full((g, 1), n, dtype=torch.long, device=dev)], 1)
    # after the loop: jump = p^(2^s) with 2^s >= n, low[u] = min(u, p(u), ..., p^(2^s - 1)(u))
    jump, low = p, torch.arange(n + 1, device=dev).expand(g, n + 1)
    span = 1
    while span < n:
        low = torch.minimum(low, low.gather(1, jump))
        jump = jump.gather(1, jump)
        span *= 2
    # n or more steps back from any node land on a cycle, and every cycle node is reached so
    on = torch.zeros((g, n + 1), dtype=torch.bool, device=dev).scatter_(1, jump, True)[:, :n]
    # a cycle node's window covers its whole cycle: low = the cycle's smallest node, its id
    cyc = low[:, :n]
    edge = wg.gather(1, pred.clamp_min(0)[:, None, :]).squeeze(1)  # edge[u] = weight of pred[u] -> u
    member = on[:, None, :] & (cyc[:, None, :] == torch.arange(n, device=dev)[None, :, None])  # (G, cycle id, node)
    zero = torch.zeros((), dtype=wg.dtype, device=dev)
    weight = torch.where(member, edge[:, None, :], zero).sum(2)
    weight = torch.where(member.any(2), weight, torch.full_like(weight, float("inf")))
    best_w, best = weight.min(dim=1)
    valid = on & (cyc == best[:, None]) & torch.isfinite(best_w)[:, None]
    to = torch.arange(n, device=dev).expand(g, n)
    return best_w, pred.clamp_min(0), to, valid


def _move_keys(cost, labels, mask, frm, to):
    """Cost change of moving each item of cluster ``frm`` to ``to`` (inf for other items), per node."""
    c_to = cost.gather(2, to[:, None, None].expand(-1, cost.shape[1], 1)).squeeze(2)
    c_from = cost.gather(2, frm[:, None, None].expand(-1, cost.shape[1], 1)).squeeze(2)
    key = torch.where(mask & (labels == frm[:, None]), c_to - c_from, torch.full_like(c_to, float("inf")))
    return key


def _feasibility_moves(cost, labels, mask, sizes, q, w):
    """One round per node: move the cheapest items from one over-full to one under-full cluster."""
    g, m, k = cost.shape
    qq = q[:, None]
    over = (sizes - qq - 1).clamp_min(0)
    under = (qq - sizes).clamp_min(0)
    has_over, has_under = over.any(1, keepdim=True), under.any(1, keepdim=True)
    surplus = torch.where(has_over, over, (sizes == qq + 1).long())
    need = torch.where(has_under, under, (sizes == qq).long())
    pair = torch.where((surplus[:, :, None] > 0) & (need[:, None, :] > 0), w, torch.full_like(w, float("inf")))
    flat = pair.reshape(g, k * k)
    # an over-full cluster is never empty, so a finite pair always exists; prefer the cheapest move
    idx = flat.argmin(dim=1)
    a, b = idx // k, idx % k
    cnt = torch.minimum(surplus.gather(1, a[:, None]), need.gather(1, b[:, None])).squeeze(1)
    key = _move_keys(cost, labels, mask, a, b)
    kk = int(cnt.max())
    kk = min(kk, m)
    _, items = key.topk(kk, dim=1, largest=False)
    take = torch.arange(kk, device=cost.device)[None, :] < cnt[:, None]
    rows = torch.arange(g, device=cost.device)[:, None].expand(-1, kk)
    new = labels.clone()
    new[rows[take], items[take]] = b[:, None].expand(-1, kk)[take]
    return new


def _cancel_cycles(cost, labels, mask, frm, to, valid):
    """Move one item along every item edge (cluster -> cluster) of each node's cycle.

    A simple cycle leaves each cluster at most once, so every node has a map ``nxt[a]`` (the
    cluster a's item moves to, or -1); one pass over the items finds, for every (node, a), the
    cheapest item of a to move to ``nxt[a]`` (lowest index on ties), against the labels before
    the moves. The moved items are distinct (one per source cluster).
    """
    g, m, k = cost.shape
    dev = cost.device
    use = valid & (frm < k) & (to < k)
    nxt = torch.full((g, k + 1), -1, dtype=torch.long, device=dev)
    nxt.scatter_(1, torch.where(use, frm, k), torch.where(use, to, -1))
    nxt = nxt[:, :k]
    tgt = nxt.gather(1, labels)  # (G, M) target cluster of each item's cluster, -1 = none
    moving = mask & (tgt >= 0)
    c_to = cost.gather(2, tgt.clamp_min(0)[..., None]).squeeze(2)
    c_from = cost.gather(2, labels[..., None]).squeeze(2)
    inf = torch.full((), float("inf"), dtype=cost.dtype, device=dev)
    key = torch.where(moving, c_to - c_from, inf)
    slot = torch.arange(g, device=dev)[:, None] * k + labels
    slot = torch.where(moving, slot, g * k).reshape(-1)
    best = torch.full((g * k + 1,), float("inf"), dtype=cost.dtype, device=dev)
    best = best.scatter_reduce(0, slot, key.reshape(-1), reduce="amin", include_self=True)
    hit = moving.reshape(-1) & (key.reshape(-1) == best[slot])
    pos = torch.arange(g * m, device=dev)
    first = torch.full((g * k + 1,), g * m, dtype=torch.long, device=dev)
    first = first.scatter_reduce(0, torch.where(hit, slot, g * k), torch.where(hit, pos, g * m), reduce="amin", include_self=True)
    pick = first[: g * k]
    pick = pick[pick < g * m]
    new = labels.clone().reshape(-1)
    new[pick] = tgt.reshape(-1)[pick]
    return new.view(g, m)


# --------------------------------------------------------------------------- prices
def _spread(cost: torch.Tensor) -> torch.Tensor:
    """Per-node standard deviation of the entries of ``(G, M, k)``, as ``std(dim=(1, 2))``.

    Two passes of whole-tensor operations: torch's multi-dim ``std`` reduces each node on one CPU
    thread, ~10x slower for 16 nodes of 1,250 x 16 entries (1.2 ms against 0.11).
    """
    mu = cost.mean((1, 2), keepdim=True)
    n = cost.shape[1] * cost.shape[2]
    return (cost - mu).square_().sum((1, 2)).div_(max(n - 1, 1)).sqrt_()


def entropic_prices(
    cost: torch.Tensor,
    mask: torch.Tensor,
    prices: torch.Tensor | None = None,
    steps: int = 12,
    eps_start: float = 2.0,
    eps_end: float = 1e-5,
    stop_feasible: bool = False,
    return_live: bool = False,
    freeze: bool = False,
    stats: dict | None = None,
    dtype: torch.dtype | None = None,
    hold: int = 0,
):
    """Joint prices ``(G, k)`` by Newton on the entropic semi-dual with decreasing eps.

    The sizes are q or q+1 (q = n // k, r = n % k clusters get the +1), so each price also
    decides its cluster's size: the semi-dual of ``q <= size_j <= q+1`` is
    ``sum_i -eps log sum_j exp((p_j - c_ij)/eps) + sum_j (q p_j + min(p_j, 0))``, and the
    clusters with negative prices are the ones that take q+1. The kink ``min(p, 0)`` is smoothed
    the same way, ``-eps log(1 + exp(-p/eps))``: its gradient ``sigmoid(-p/eps)`` joins the
    target q and its curvature the Newton matrix. (The target n/k for every cluster, used
    before, left the choice of the r larger clusters to the repair: 73% of its negative cycles
    went through the slot node, and the repair took ~3x the rounds.) For r = 0 the target is q
    and prices are only defined up to a common shift, which the loop removes.
    All k prices move together (a k x k Newton system per node), which is what keeps them from
    jamming the way independent per-cluster price nudges do. ``eps`` runs geometrically from
    ``eps_start`` to ``eps_end`` times the node's cost spread. Only a starting point for the
    exact repair.
    ``stop_feasible``: a node whose hard assignment ``argmin_j c_ij - p_j`` already has feasible
    sizes (every cluster q or q+1) keeps its prices; all such -> return early.
    ``return_live``: also return a bool ``(G,)`` mask of the nodes still infeasible at the end.
    ``freeze`` (with ``stop_feasible``): once at most half of the working items are undecided, the
    decided ones leave the loop. An item is decided when its best cluster leads every other by
    more than the rest of the schedule can move a price difference; from then on it only counts
    towards its cluster's size. Exact (those labels cannot change); it pays where the k x k
    Newton matrix (O(items k^2) per step) dominates, i.e. large k on CPU. ``stats``: a dict that
    receives ``frozen``, the number of items frozen (one host sync per compaction). ``dtype``: of
    the loop and the prices (default: the cost's), e.g. float32 prices for float64 costs.
    ``hold``: Newton steps at ``eps_end`` after the schedule (a short schedule's last chance to
    reach feasible sizes).

    The loop works on the cost transposed to ``(G, k, M)``: every per-item reduction over the k
    clusters then runs along an outer axis, which torch vectorises over the contiguous items
    (on CPU ~10x faster than reducing a trailing axis of 16).
    """
    g, m, k = cost.shape
    dt, dev = dtype or cost.dtype, cost.device
    all_real = bool(mask.all())
    spread = _spread(cost if all_real else torch.where(mask[..., None], cost, cost.new_zeros(()))).to(dt).clamp_min(1e-12)
    p = torch.zeros((g, k), dtype=dt, device=dev) if prices is None else prices.to(dt).clone()
    if steps <= 0:
        return (p, torch.ones(g, dtype=torch.bool, device=dev)) if return_live else p
    q, r = mask.sum(1) // k, mask.sum(1) % k
    # working set: the nodes still iterating (compacted once at most half of them are left);
    # views and per-node constants are made once per compaction, not per step: on a GPU the loop
    # is bound by operator launches, and each indexing or broadcast view is one more
    idx = torch.arange(g, device=dev)
    c_w = torch.empty((g, k, m), dtype=dt, device=dev).copy_(cost.transpose(1, 2))
    buf = torch.empty_like(c_w)
    hard = torch.empty_like(c_w) if stop_feasible else None
    if prices is not None:
        # warm prices may carry any common shift: move it so the r lowest prices are negative
        rr = r[:, None]
        srt = p.sort(1).values
        mid = (srt.gather(1, (rr - 1).clamp_min(0)) + srt.gather(1, rr.clamp_max(k - 1))) / 2
        p = p - torch.where(rr > 0, mid, p.mean(1, keepdim=True))
    lo_w = q[:, None]
    m_w, s_w, p_w, hi_w, buf_w, hard_w = mask[:, None, :], spread[:, None], p, lo_w + 1, buf, hard
    fix_w = None  # (G, k) items per cluster frozen out of the working set (once any are)
    n_steps = steps + max(hold, 0)
    sched = [eps_start ** (1 - f) * eps_end**f for f in (min(t, steps - 1) / max(steps - 1, 1) for t in range(n_steps + 1))]
    t_w = lo_w.to(dt)  # the target q; + sigmoid(-p/eps) where r > 0
    r_w = (r > 0).to(dt)[:, None]  # 1: sizes q or q+1; 0: all q, prices free up to a shift
    f_w = 1 - r_w
    # levels where every node has r > 0 (or none has) skip the terms that vanish: ~8 of a step's
    # ~35 operators, what a launch-bound GPU loop or a small CPU level pays for (the same arithmetic)
    any_r, all_r = (bool(v) for v in torch.stack([r.gt(0).any(), r.gt(0).all()]).tolist())
    # with r = 0 the Newton matrix is singular along ones (a common shift): a ridge of 1e-5 of a
    # cluster's size keeps it regular (for r > 0 the smoothed kink's curvature does too)
    ridge_w = t_w * 1e-5 + 1e-9
    # a cold start is far from feasible while eps is large: check sizes from a third of the schedule
    first_check = 0 if prices is not None else max(1, steps // 3)
    live = None
    for t in range(n_steps + (1 if stop_feasible else 0)):
        frac = min(t, steps - 1) / max(steps - 1, 1)
        eps = s_w * (eps_start ** (1 - frac) * eps_end**frac)  # (G, 1)
        # in place on one buffer: these (G, k, M) temporaries dominate the time at large levels
        z = torch.sub(p_w[:, :, None], c_w, out=buf_w).div_(eps[:, :, None])
        # exp of inputs below about -88 (float32 underflow) takes a ~10x slower path on CPU;
        # e^-80 is already negligible next to the row maximum's 1
        pm = z.sub_(z.amax(1, keepdim=True)).clamp_min_(-80.0).exp_()
        checking = stop_feasible and t >= first_check
        if checking:
            # the hard argmax is where pm == 1 exactly (exp(0)); a float tie counts twice and
            # merely keeps the node live one more step
            h = torch.floor(pm, out=hard_w)
            if not all_real:
                h.mul_(m_w)
            sz = h.sum(2) if fix_w is None else h.sum(2).add_(fix_w)
            live = ((sz < lo_w) | (sz > hi_w)).any(1)
            if not freeze:
                n_live = int(live.sum())  # the loop's one host sync per step
            else:
                # frozen: the item's best cluster leads every other by more than the rest of the
                # schedule can change a price difference (a step moves a price by at most 4 eps), so
                # its hard label is final. rest < e^-bound <=> every other z trails the best by more
                # than bound (exact in float32: the leader's entry is exactly 1 and cancels)
                bound = 1.25 * 8.0 * sum(sched[t:]) / sched[t]
                frozen = (pm.sub(h).sum(1) < float(np.exp(-bound))) & (h.sum(1) == 1)
                undecided = m_w.squeeze(1) & ~frozen
                keep_n = undecided.sum(1)
                n_live, n_keep = (int(v) for v in torch.stack([live.sum(), keep_n.max()]).tolist())  # one host sync
            if t == n_steps or n_live == 0:
                break
            if freeze and t < n_steps - 1 and 2 * n_keep <= c_w.shape[2]:
                # at most half the items still undecided: the frozen ones leave the working set (their
                # counts go to fix_w), the others are packed to the left
                fixed = (h * frozen[:, None, :]).sum(2)
                if stats is not None:
                    stats["frozen"] = stats.get("frozen", 0) + int(fixed.sum())
                fix_w = fixed if fix_w is None else fix_w + fixed
                slot = torch.where(undecided, undecided.cumsum(1) - 1, n_keep)[:, None, :].expand(-1, k, -1)
                wide = (pm.shape[0], k, n_keep + 1)  # column n_keep takes the frozen items and is cut
                pm = pm.new_zeros(wide).scatter_(2, slot, pm)[:, :, :n_keep].contiguous()
                c_w = c_w.new_zeros(wide).scatter_(2, slot, c_w)[:, :, :n_keep].contiguous()
                m_w = (torch.arange(n_keep, device=dev)[None, :] < keep_n[:, None])[:, None, :]
                all_real = False
                buf = buf_w = pm
                hard = hard_w = torch.empty_like(pm)
            if 2 * n_live <= live.numel():
                if p_w is not p:
                    p[idx] = p_w
                keep = live.nonzero().squeeze(1)
                idx = idx[keep]
                live_w = (c_w, m_w, t_w, r_w, f_w, ridge_w, s_w, p_w, lo_w, hi_w)
                c_w, m_w, t_w, r_w, f_w, ridge_w, s_w, p_w, lo_w, hi_w = (v[keep] for v in live_w)
                fix_w = None if fix_w is None else fix_w[keep]
                eps, live = eps[keep], live[keep]
                buf_w, hard_w = buf[: keep.numel()], hard[: keep.numel()]
                pm = buf_w.copy_(pm[keep])
        pm = pm.div_(pm.sum(1, keepdim=True))
        if not all_real:
            pm = pm.mul_(m_w)
        col = pm.sum(2)
        if any_r:
            sig = torch.sigmoid(-p_w / eps)  # the smoothed share of the +1 sizes
            sig = sig if all_r else sig.mul_(r_w)
            # Newton matrix diag(col + ridge + sig (1 - sig)) - pm pm^T in one batched matmul
            diag = torch.addcmul(ridge_w, sig, 1 - sig).add_(col)
            grad = t_w + sig
        else:  # no smoothed kink (r = 0 everywhere): sig = 0
            diag, grad = ridge_w + col, t_w
        a = torch.baddbmm(torch.diag_embed(diag), pm, pm.transpose(1, 2), alpha=-1.0)
        grad = grad - (col if fix_w is None else col.add_(fix_w))
        # solve_ex: linalg.solve checks for singular systems, a device-to-host copy every step on a
        # GPU; a step that still fails is dropped (nan -> 0); steps at most 4 eps per price.
        # grad (G, k) is a batch of vectors for (G, k, k) systems
        step = torch.linalg.solve_ex(a, grad)[0]
        step = step.nan_to_num_(0.0, 0.0, 0.0).clamp_(-4.0, 4.0).mul_(eps)
        if checking:
            step = torch.where(live[:, None], step, 0.0)
        p_w = p_w + step
        if not all_r:  # r = 0: drop the free common shift
            shift = p_w.mean(1, keepdim=True)
            p_w = p_w - (shift if not any_r else shift * f_w)
    if p_w is not p:
        p[idx] = p_w
    if return_live:
        out = torch.zeros(g, dtype=torch.bool, device=dev)
        if stop_feasible:
            out[idx] = live
        else:
            out[:] = True
        return p, out
    return p


# --------------------------------------------------------------------------- batched solver
def _cold_prices(cost, mask, steps, fast, hold, eps_start, stop_feasible, freeze, dtype):
    """Newton prices from zero: a `fast`-step schedule (then `hold` steps at its end), the full
    `steps` schedule for the nodes whose sizes are still infeasible after it.

    Why: eps must fall to ~1e-4 of the cost spread before the hard sizes are feasible, and a
    faster fall gets there in fewer steps (the builder's 22 + 4 against 30: 18-26% less Newton work
    per 20K-item build, seeds 0-2, same labels). Too fast and Newton loses track: with 18 steps and
    no restart, nodes ended hundreds of items off and the repair took 506 rounds instead of 13; at
    20 + 6 the restarts cost more than the short schedule saved on some builds. The restart bounds
    the loss: a node costs at most fast + hold + steps steps.
    """
    if not (stop_feasible and 0 < fast < steps):
        return entropic_prices(cost, mask, None, steps, eps_start, stop_feasible=stop_feasible, freeze=freeze, dtype=dtype)
    p, live = entropic_prices(cost, mask, None, fast, eps_start, stop_feasible=True, return_live=True, freeze=freeze, dtype=dtype, hold=hold)
    if bool(live.any()):
        li = live.nonzero().squeeze(1)
        p[li] = entropic_prices(cost[li], mask[li], None, steps, eps_start, stop_feasible=True, freeze=freeze, dtype=dtype)
    return p


def approx_balanced_labels(cost, mask, steps: int = 10, eps_end: float = 1e-2, dtype=None):
    """Labels ``argmin_j c_ij - p_j`` for Newton prices at a coarse eps, without the repair.

    Sizes come out near balanced, not exact (10 steps to 1e-2 of the cost spread: within 6 items
    of 256 per cluster, 1.4 on average, at 16 x 4,096 items), for less than half the exact step's
    Newton steps and no repair rounds: for ranking seedings (the builder's root trial), not for a
    split. The schedule must not fall faster than the exact one's ~1.8x per step: 8 steps to 1e-2
    (2.1x) left a cluster 134 items off, 6 to 3e-2 (2.3x) 399. No per-step check of the hard
    sizes (a node at this eps is rarely exactly balanced early; the checks cost ~20% of the steps).
    Returns ``(labels, prices)``; padding rows get label 0.
    """
    p = entropic_prices(cost, mask, None, steps, eps_end=eps_end, dtype=dtype)
    labels = (cost - p[:, None, :].to(cost.dtype)).argmin(2)
    return labels.masked_fill_(~mask, 0), p


def _median_split(cost: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Exact k = 2 solution: the q items with the smallest c1 - c0 go to cluster 1 (+1 more if it helps)."""
    n = mask.sum(1)
    q, r = n // 2, n % 2
    delta = torch.where(mask, cost[..., 1] - cost[..., 0], torch.full_like(cost[..., 0], float("inf")))
    order = delta.argsort(dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(cost.shape[1], device=cost.device).expand_as(order))
    sorted_d = delta.gather(1, order)
    extra = (r == 1) & (sorted_d.gather(1, q[:, None].clamp_max(cost.shape[1] - 1)).squeeze(1) < 0)
    n1 = q + extra.long()
    return (rank < n1[:, None]).long()


def balanced_assignment_batched(
    cost: torch.Tensor,
    mask: torch.Tensor | None = None,
    init: torch.Tensor | None = None,
    prices: torch.Tensor | None = None,
    newton_steps: int = 30,
    eps_start: float = 2.0,
    max_rounds: int = 100_000,
    median_split: bool = True,
    stop_feasible: bool = True,
    warm_steps: int = 8,
    warm_eps: float = 0.05,
    freeze: bool = False,
    price_dtype: torch.dtype | None = None,
    fast_steps: int = 0,
    hold_steps: int = 4,
):
    """Exact balanced assignment for every node of a level at once.

    Parameters
    ----------
    cost : float tensor ``(G, M, k)``; node g's items in rows ``mask[g]`` (padding rows ignored).
    mask : bool ``(G, M)`` or None (all rows real). Every node must hold more than k items.
    init : optional int64 labels ``(G, M)`` to repair (feasible or not); when given, no prices are computed.
    prices : optional warm-start prices ``(G, k)`` (e.g. the last exact duals): ``warm_steps`` Newton
        steps from them with eps from ``warm_eps``; nodes still infeasible then get the cold schedule.
    freeze : drop decided items from the Newton loop (`entropic_prices`): same labels, less work at large k.
    fast_steps, hold_steps : 0 < fast_steps < newton_steps (with ``stop_feasible``): prices from zero
        first follow a schedule of fast_steps over the same eps range, plus hold_steps at its smallest
        eps; only the nodes whose sizes are still infeasible then get the full newton_steps schedule
        (`_cold_prices`).
    price_dtype : dtype of the Newton prices (default: the cost's). The builder passes float64 costs
        (a float32 cost ||c||^2 - 2 x.c cannot resolve items far from their node's centre) and float32
        prices: the prices only start the repair, which works on `cost` itself.

    Returns ``(labels (G, M) int64, prices (G, k), info)``: labels optimal for `cost` up to the
    rounding of its move costs (`_move_weights`), prices a dual for them (Bellman-Ford distances
    of the certificate; zeros for k = 2 median splits), info = {"rounds": repair rounds}.
    Padding rows get label 0. Real rows must be finite (not checked here: a check costs a pass and,
    on a GPU, a host sync per call; the builder checks its embeddings once).
    """
    if not isinstance(cost, torch.Tensor) or cost.ndim != 3 or not cost.is_floating_point() or cost.shape[2] < 2:
        raise ConfigError(f"cost must be a float tensor (nodes, items, k) with k >= 2, got "
                          f"{tuple(cost.shape) if isinstance(cost, torch.Tensor) else type(cost).__name__}"
                          f"{' ' + str(cost.dtype) if isinstance(cost, torch.Tensor) else ''}")
    g, m, k = cost.shape
    dev = cost.device
    if mask is None:
        mask = torch.ones((g, m), dtype=torch.bool, device=dev)
    elif mask.dtype != torch.bool or tuple(mask.shape) != (g, m):
        raise ConfigError(f"mask must be a bool tensor of shape {(g, m)}, got {mask.dtype} {tuple(mask.shape)}")
    n = mask.sum(1)
    if bool((n <= k).any()):
        raise ConfigError(f"every node passed to the balanced assignment needs more than k={k} items")
    q = n // k
    if k == 2 and median_split and init is None:
        return _median_split(cost, mask), torch.zeros((g, k), dtype=cost.dtype, device=dev), {"rounds": 0}
    if init is None:
        p = None
        if prices is not None:
            p, live = entropic_prices(
                cost, mask, prices, steps=warm_steps, eps_start=warm_eps, stop_feasible=True, return_live=True, freeze=freeze, dtype=price_dtype
            )
            if newton_steps > 0 and bool(live.any()):
                li = live.nonzero().squeeze(1)
                p[li] = _cold_prices(cost[li], mask[li], newton_steps, fast_steps, hold_steps, eps_start, stop_feasible, freeze, price_dtype)
        elif newton_steps > 0:
            p = _cold_prices(cost, mask, newton_steps, fast_steps, hold_steps, eps_start, stop_feasible, freeze, price_dtype)
        labels = (cost - p[:, None, :].to(cost.dtype)).argmin(2) if p is not None else cost.argmin(2)
    else:
        labels = init.to(device=dev, dtype=torch.long).clone()
        if labels.shape != (g, m) or bool(((labels < 0) | (labels >= k))[mask].any()):
            raise DataError(f"init labels must have shape {(g, m)} with values in [0, {k})")
    labels = torch.where(mask, labels, torch.zeros_like(labels))
    out_prices = torch.zeros((g, k), dtype=cost.dtype, device=dev)
    active = torch.arange(g, device=dev)
    rounds = 0
    feas_rounds = 0
    while active.numel() > 0:
        if rounds >= max_rounds:
            raise TreeBuildError(f"balanced assignment did not converge in {max_rounds} repair rounds")
        rounds += 1
        whole = active.numel() == g  # skip the (G, M, k) copies while every node is still active
        c, lab, mk, qa = (cost, labels, mask, q) if whole else (cost[active], labels[active], mask[active], q[active])
        sz = _sizes(lab, mk, k)
        w = _move_weights(c, lab, mk)
        infeasible = ((sz < qa[:, None]) | (sz > qa[:, None] + 1)).any(1)
        new = lab
        any_infeasible = bool(infeasible.any())
        if any_infeasible:
            feas_rounds += 1
            fi = infeasible.nonzero().squeeze(1)
            new = new.clone()
            new[fi] = _feasibility_moves(c[fi], lab[fi], mk[fi], sz[fi], qa[fi], w[fi])
        # the nodes with feasible sizes (None = all of them, the usual case: no selection copies)
        feas = (~infeasible).nonzero().squeeze(1) if any_infeasible else None
        done = torch.zeros(active.numel(), dtype=torch.bool, device=dev)
        if feas is None or feas.numel() > 0:
            wg = _residual_graph(_pick(w, feas), _pick(sz, feas), _pick(qa, feas))
            d, pred, improved = _bellman_ford(wg)
            if improved is None:  # no negative cycle in any of them: all certified
                fin = slice(None) if feas is None else feas  # positions in `active`
                done[fin] = True
                out_prices[active[fin]] = d[:, :k]
                n_cancel = 0
            else:
                weight, frm, to, valid = _find_cycles(wg, pred)
                cancel = improved & (weight < 0)
                # no improvement in round n = certified
                ok = ~cancel
                fin = ok if feas is None else feas[ok]  # positions in `active`
                done[fin] = True
                out_prices[active[fin]] = d[ok, :k]
                n_cancel = int(cancel.sum())
            if n_cancel and n_cancel == cancel.numel() and feas is None:  # every node moves: no selection copies
                new = _cancel_cycles(c, lab, mk, frm, to, valid)
            elif n_cancel:
                ci = cancel.nonzero().squeeze(1)
                sel = ci if feas is None else feas[ci]
                new = new.clone() if new is lab else new
                new[sel] = _cancel_cycles(c[sel], lab[sel], mk[sel], frm[ci], to[ci], valid[ci])
        if new is not lab:
            labels[active] = new
        active = active[~done]
    return labels, out_prices, {"rounds": rounds, "feasibility_rounds": feas_rounds}


# --------------------------------------------------------------------------- single problem API
def _as_cost(cost) -> torch.Tensor:
    """`cost` as a float64 tensor (on its device), checked: the single-problem API solves in float64
    whatever it is given (a float32 tensor's repair tolerance left gaps of up to ~3e-6 x max|c|
    beside far outlier groups, where the same values as numpy were exact)."""
    if isinstance(cost, torch.Tensor):
        t = cost.detach()
        if t.is_complex() or t.dtype == torch.bool:
            raise DataError(f"cost must be real numbers, got dtype {t.dtype}")
        t = t.to(torch.float64)
    else:
        try:
            arr = np.asarray(cost)
        except ValueError as e:  # a ragged list
            raise DataError(f"cost must be a 2-D array (n_items, k): {e}") from None
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise DataError(f"cost must be real numbers, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
    if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] < 2:
        raise DataError(f"cost must be a 2-D array (n_items, k) with k >= 2 and n_items >= 1, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise DataError("cost contains NaN or inf")
    if float(t.max() - t.min()) * 4.0 > 1.0e308:  # the solvers add multiples of the spread
        raise DataError(f"cost spread {float(t.max() - t.min()):.3g} too large (at most ~1e307)")
    return t


# below this many items a single problem goes to the Hungarian method on the slot expansion:
# measured on random costs (k = 16), 0.6 ms vs 108 ms from prices at 78 items, 47 vs 61 ms at
# 320, and 235 vs 65 ms at 640 (the expansion grows as n x n)
SLOTS_MAX_ITEMS = 256


def balanced_assignment(cost, init=None, newton_steps: int = 30, method: str = "auto") -> np.ndarray:
    """Optimal labels ``(n,)`` for cost ``(n, k)`` with every cluster size floor(n/k) or floor(n/k)+1.

    ``cost`` may be numpy or torch (CPU or CUDA); every input is solved in float64. ``init``:
    any starting labels (e.g. a greedy assignment); the repair turns them into the optimum, one
    negative cycle per round, so labels far from optimal take many rounds: solving from prices
    (no init) reaches the same optimum faster (20K items, k = 16, greedy's labels: 0.35 s
    from prices vs 20-24 s from init). ``newton_steps``: as the `balanced` builder (fewer leave
    the repair more work: 12 took that 20K case 5 s).
    ``method``: "prices" (Newton prices + exact repair, `balanced_assignment_batched`), "slots"
    (Hungarian method on the slot expansion, `slot_assignment`), or "auto": slots for at most
    `SLOTS_MAX_ITEMS` items without ``init`` (and always for n <= k), prices otherwise.
    """
    if method not in ("auto", "prices", "slots"):
        raise ConfigError(f"method must be 'auto', 'prices' or 'slots', got {method!r}")
    t = _as_cost(cost)
    n, k = t.shape
    init_t = None
    if init is not None:
        init_np = np.asarray(init.cpu() if isinstance(init, torch.Tensor) else init)
        if init_np.shape != (n,) or not np.issubdtype(init_np.dtype, np.integer):
            raise DataError(f"init must be integer labels of shape ({n},), got {init_np.dtype} {init_np.shape}")
        if n and (init_np.min() < 0 or init_np.max() >= k):
            raise DataError(f"init labels must lie in [0, {k})")
        init_t = torch.as_tensor(init_np, dtype=torch.long, device=t.device)[None]
    if n <= k or method == "slots" or (method == "auto" and init is None and n <= SLOTS_MAX_ITEMS):
        return slot_assignment(t.cpu().numpy())
    lab, _, _ = balanced_assignment_batched(t[None], init=init_t, newton_steps=newton_steps)
    return lab[0].cpu().numpy()


def slot_assignment(cost: np.ndarray) -> np.ndarray:
    """Exact balanced labels by the Hungarian method on the slot expansion (for small n).

    With n = kq + r, cluster j becomes q mandatory slots (cost minus a bonus larger than any
    cost difference, so every optimum fills them all) and, when r > 0, one optional slot; the
    rectangular assignment of n items to these k(q + [r > 0]) slots then gives every cluster q or
    q + 1 items at minimum total cost. Memory and time grow as n x n: for small nodes only.
    """
    from scipy.optimize import linear_sum_assignment

    n, k = cost.shape
    q, r = divmod(n, k)
    spread = float(cost.max() - cost.min())
    bonus = 2.0 * spread if spread > 0 else 1.0
    wide = np.hstack([cost - bonus] * q + ([cost] if r else []))
    rows, cols = linear_sum_assignment(wide)
    out = np.empty(n, dtype=np.int64)
    out[rows] = cols % k
    return out


def sizes_ok(labels: np.ndarray, k: int) -> bool:
    """True when the cluster sizes of `labels` are all floor(n/k) or floor(n/k)+1."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= k)):
        return False
    n = len(labels)
    sizes = np.bincount(labels, minlength=k)
    return bool(np.isin(sizes, (n // k, n // k + 1)).all())


def is_optimal(cost, labels, tol: float | None = None) -> bool:
    """Certificate: sizes feasible and no negative cycle in the contracted residual graph.

    Independent of the solver above: plain numpy, float64, Floyd-Warshall on k+1 nodes. Each move's
    cost is raised by `tol` times the size of the two entries it subtracts, the most their rounding can
    move it, so a cycle still negative is a real gain and one within rounding of 0 is not. Default
    `tol`: 1e-12 for float64 costs (~4,500 ulps), 2(k+1) float32 ulps for float32 ones (the solver's own
    per-move allowance: a float32 cost resolves no finer). A tolerance on the largest |cost| passed a
    labelling 2.0 worse beside entries of 1e10. The search stops at the first negative cycle; past
    one, Floyd-Warshall's sums compound (rounding-level cycles grew to -1e9 and failed exact optima).
    """
    single = getattr(cost, "dtype", None) in (torch.float32, np.float32)
    c = _as_cost(cost).cpu().numpy()
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    n, k = c.shape
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= k:
        return False
    labels = labels.astype(np.int64)
    if not sizes_ok(labels, k):
        return False
    q = n // k
    sizes = np.bincount(labels, minlength=k)
    if tol is None:
        tol = 2 * (k + 1) * float(np.finfo(np.float32).eps) if single else 1e-12
    own = c[np.arange(n), labels][:, None]
    move = c - own + tol * (np.abs(c) + np.abs(own))  # item i from its cluster to each other one
    g = np.full((k + 1, k + 1), np.inf)
    for a in range(k):
        rows = labels == a
        if rows.any():
            g[a, :k] = move[rows].min(axis=0)
        g[a, a] = np.inf
    g[k, :k] = np.where(sizes == q + 1, 0.0, np.inf)  # slot node: which clusters hold q + 1
    g[:k, k] = np.where(sizes == q, 0.0, np.inf)
    dist = g.copy()
    for m in range(k + 1):
        dist = np.minimum(dist, dist[:, m : m + 1] + dist[m : m + 1, :])
        if (np.diag(dist) < 0).any():
            return False
    return True
