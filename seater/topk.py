"""Exact inner-product top-K over a whole item table, in chunks of items.

Dual encoders retrieve by scoring every item; with hundreds of thousands of items a
``[B, N]`` score matrix does not fit, so items are scored `chunk` at a time and a running
top-K is merged after each chunk. Memory is ``O(B * (chunk + k))``.
"""

from __future__ import annotations

import torch

from seater.errors import ConfigError


def topk_inner_product(
    queries: torch.Tensor,
    items: torch.Tensor,
    k: int,
    exclude: torch.Tensor | None = None,
    chunk: int = 65536,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-`k` items by ``queries @ items.T``, exactly.

    Parameters
    ----------
    queries : float tensor ``(B, d)``.
    items : float tensor ``(N, d)``; row ``i`` is item ``i + 1`` (no padding row).
    k : items per query.
    exclude : optional int64 ``(B, L)`` item ids (1..N) never returned for that row, e.g. the
        history; 0 (padding) and ids outside 1..N are ignored.
    chunk : items scored per step.

    Returns
    -------
    scores : float32 ``(B, k)``, best first.
    ids : int64 ``(B, k)`` item ids in 1..N; 0 (with score ``-inf``) where fewer than `k`
        items are eligible (k > N, or too many excluded).
    """
    if queries.dim() != 2 or items.dim() != 2 or queries.shape[1] != items.shape[1]:
        raise ConfigError(f"topk_inner_product needs queries (B, d) and items (N, d); got {tuple(queries.shape)} and {tuple(items.shape)}")
    if k < 1:
        raise ConfigError(f"topk_inner_product: k must be >= 1, got {k}")
    if chunk < 1:
        raise ConfigError(f"topk_inner_product: chunk must be >= 1, got {chunk}")
    if exclude is not None and (exclude.dim() != 2 or exclude.shape[0] != queries.shape[0]):
        raise ConfigError(f"topk_inner_product: exclude must be (B, L) with B = {queries.shape[0]}, got {tuple(exclude.shape)}")
    b, n = queries.shape[0], items.shape[0]
    q = queries.float()
    best_scores = torch.full((b, k), float("-inf"), device=q.device)  # (B, k)
    best_idx = torch.full((b, k), -1, dtype=torch.long, device=q.device)  # (B, k) 0-based rows
    if exclude is not None:
        exclude = exclude.to(device=q.device, dtype=torch.long)
    for start in range(0, n, chunk):
        block = items[start : start + chunk].to(device=q.device, dtype=torch.float32)  # (C, d)
        scores = q @ block.T  # (B, C)
        if exclude is not None:
            local = exclude - 1 - start  # (B, L) column in this chunk
            hit = (local >= 0) & (local < block.shape[0]) & (exclude > 0)
            rows = torch.arange(b, device=q.device).unsqueeze(1).expand_as(local)
            scores[rows[hit], local[hit]] = float("-inf")
        cols = torch.arange(start, start + block.shape[0], device=q.device).expand(b, -1)  # (B, C)
        merged_s = torch.cat([best_scores, scores], dim=1)  # (B, k + C)
        merged_i = torch.cat([best_idx, cols], dim=1)
        top_s, pos = merged_s.topk(k, dim=1)  # (B, k)
        best_scores, best_idx = top_s, merged_i.gather(1, pos)
    ids = best_idx + 1  # (B, k) item ids
    ids[torch.isneginf(best_scores)] = 0
    return best_scores, ids
