"""SEATER's three losses, each a pure function of tensors (tested one by one in tests/model).

- `generation_loss`: cross-entropy of each identifier step over the current node's children only.
- `alignment_loss`: InfoNCE pulling each tree token towards its parent token (`batch_tokens` its input).
- `ranking_loss`: pairwise hinge ranking identifiers by how long a prefix they share with the target.

`child_logits` and `sample_rank_negatives` build their inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def child_logits(states: torch.Tensor, child: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Logit of every allowed child: decoder state · child token embedding.

    states (..., d); child int64 (..., k) child tokens, -1 = empty slot; emb (n_tokens, d).
    Returns (..., k), -inf at empty slots.
    """
    # F.embedding, not emb[...]: the rows repeat heavily (every sample holds the root's children),
    # and on CUDA the indexing backward accumulates repeats serially: 75% of a training step's
    # GPU time on an H200 (results/gpu/checks_9b9bb3f477.log); embedding's backward does not
    child_emb = F.embedding(child.clamp(min=0), emb)  # (..., k, d)
    logits = torch.einsum("...d,...kd->...k", states, child_emb)  # (..., k)
    return logits.masked_fill(child < 0, float("-inf"))


def generation_loss(logits: torch.Tensor, child: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Teacher-forced cross-entropy over children-only softmaxes, averaged over identifier steps.

    logits (B, T, k) from `child_logits`; child (B, T, k) the allowed tokens at each step;
    target (B, T) the true next token (0 = no step: padding after a short identifier).
    """
    valid = target > 0  # (B, T)
    slot = (child == target.unsqueeze(-1)).float().argmax(-1)  # (B, T) slot of the true child
    # masked, not logits[valid]: boolean indexing makes a GPU wait for the host (a sync per step);
    # the steps without a target get finite logits (0) so that no NaN reaches the sum
    logp = torch.log_softmax(logits.masked_fill(~valid.unsqueeze(-1), 0.0), dim=-1)  # (B, T, k)
    picked = logp.gather(-1, slot.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return -(picked * valid).sum() / valid.sum().clamp_min(1)


def batch_tokens(seq: torch.Tensor) -> torch.Tensor:
    """The tree tokens of a batch's identifiers, sorted, for `alignment_loss`.

    On CPU the distinct tokens (`torch.unique`: ~680 of 1,280 for a Beauty batch of 256, so the
    loss's token x token matrix is 3.5x smaller); on a GPU every token, repeats included: a fixed
    size, so the step never waits for the host to learn how many tokens are distinct (the loss
    masks the repeats, same value). Every token under torch.compile too: a size known only at run
    time would break the graph and recompile for each batch.
    """
    if seq.device.type == "cpu" and not torch.compiler.is_compiling():
        return torch.unique(seq)
    return seq.flatten().sort().values


def alignment_loss(emb: torch.Tensor, tokens: torch.Tensor, parent_token: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over the batch's distinct tree tokens: each token's positive is its parent token.

    emb (n_tokens, d) the token table; tokens int64 (M,) sorted tree tokens of the batch (every
    token's ancestors included, as whole identifiers are; repeats and padding 0 may be among them
    and are ignored); parent_token int64 (n_tokens,), 0 for the root and padding. Negatives of a
    token: every other distinct batch token except its own children. Similarity: cosine / tau.
    Tokens without a parent (the root) anchor nothing.
    """
    par = parent_token[tokens]  # (M,)
    repeat = torch.cat([tokens.new_zeros(1, dtype=torch.bool), tokens[1:] == tokens[:-1]])  # (M,) not the first of its run
    # every token is a row and only the anchors count, rather than tokens[par > 0]: boolean
    # indexing makes a GPU wait for the host (a sync per step)
    is_anchor = (par > 0) & ~repeat
    z = F.normalize(F.embedding(tokens, emb), dim=-1)  # (M, d)
    sim = z @ z.T / tau  # (M, M) anchor x candidate
    excluded = (
        (tokens.unsqueeze(0) == tokens.unsqueeze(1))  # itself
        | (par.unsqueeze(0) == tokens.unsqueeze(1))  # its children
        | ((tokens == 0) | repeat).unsqueeze(0)  # padding and repeats (each token counts once)
    )
    # rows that anchor nothing get finite values (no NaN into the sum) and weight 0
    sim = sim.masked_fill(excluded, float("-inf")).masked_fill(~is_anchor.unsqueeze(1), 0.0)
    pos = torch.searchsorted(tokens, par)  # (M,) column of the parent (the first of its run)
    per_anchor = F.cross_entropy(sim, pos, reduction="none")
    return (per_anchor * is_anchor).sum() / is_anchor.sum().clamp_min(1)


def ranking_loss(scores: torch.Tensor, shared: torch.Tensor, valid: torch.Tensor, beta: float) -> torch.Tensor:
    """Pairwise hinge: a candidate sharing a longer prefix with the target must score higher.

    scores (B, C) in [0, 1] (column 0 the target, then the negatives); shared (B, C) shared-prefix
    length with the target (the target's is its full length); valid (B, C) bool. For every ordered
    pair (a, b) with shared[a] > shared[b]: max(0, s_b - s_a + beta * (rank_b - rank_a)), where
    rank = number of candidates of the row sharing a strictly longer prefix. Mean over pairs.
    """
    shared = torch.where(valid, shared, torch.full_like(shared, -1))
    rank = (shared.unsqueeze(1) > shared.unsqueeze(2)).sum(-1)  # (B, C): candidates above each
    better = (shared.unsqueeze(2) > shared.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)  # (B, a, b)
    margin = beta * (rank.unsqueeze(1) - rank.unsqueeze(2)).float()  # (B, a, b) rank_b - rank_a
    hinge = F.relu(scores.unsqueeze(1) - scores.unsqueeze(2) + margin)  # s_b - s_a + margin
    # masked sum, not hinge[better] or a test of n: both would make a GPU wait for the host
    return (hinge * better).sum() / better.sum().clamp_min(1)


def sample_rank_negatives(
    targets: torch.Tensor,
    q: int,
    item_path: torch.Tensor,
    lengths: torch.Tensor,
    node_start: torch.Tensor,
    node_size: torch.Tensor,
    item_pos: torch.Tensor,
    sorted_items: torch.Tensor,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Up to q negative items per target, each sharing a different prefix length with it.

    targets int64 (B,) item ids; item_path (N, D) node id per level (-1 after the end); lengths (N,);
    node_start / node_size (n_nodes,): items of a node are ``sorted_items[start : start + size]``
    (items sorted by code); item_pos (N + 1,) position of each item in `sorted_items`.
    The shared lengths are drawn without replacement from ``0 .. len(target) - 1``; the negative
    for length l is uniform among the items under the target's level-l node but not under its
    level-(l+1) child. Returns negatives (B, q'), shared (B, q'), valid (B, q') with
    q' = min(q, D); invalid where the target is too short or the node has a single child.
    """
    B, D = targets.shape[0], item_path.shape[1]
    qq = min(q, D)
    tl = lengths[targets - 1]  # (B,)
    key = torch.rand(B, D, device=targets.device, generator=generator)
    key = key.masked_fill(torch.arange(D, device=targets.device) >= tl.unsqueeze(1), 2.0)
    shared = key.argsort(dim=1)[:, :qq]  # (B, qq) distinct levels, real ones first
    valid = shared < tl.unsqueeze(1)
    path = item_path[targets - 1]  # (B, D)
    node = path.gather(1, shared).clamp(min=0)  # (B, qq) node the negative shares
    child_level = (shared + 1).clamp(max=D - 1)
    child_is_item = (shared + 1) >= tl.unsqueeze(1)
    child_node = path.gather(1, child_level).clamp(min=0)
    c_start = torch.where(child_is_item, item_pos[targets].unsqueeze(1).expand_as(shared), node_start[child_node])
    c_size = torch.where(child_is_item, torch.ones_like(shared), node_size[child_node])
    room = node_size[node] - c_size  # (B, qq) items under node but outside the target's child
    valid &= room > 0
    r = (torch.rand(B, qq, device=targets.device, generator=generator) * room.clamp(min=1)).long()
    p = node_start[node] + r
    p = torch.where(p >= c_start, p + c_size, p)
    p = p.clamp(max=sorted_items.shape[0] - 1)
    neg = torch.where(valid, sorted_items[p], torch.ones_like(p))
    return neg, shared, valid
