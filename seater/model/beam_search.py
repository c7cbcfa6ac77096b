"""Constrained beam search over a prefix tree, generic over the model that scores each step.

Works for any tree in the `Tree` token space (SEATER's balanced trees, unbalanced k-means
trees, TIGER's semantic-ID tries): the only things it needs are

- ``next_table`` int64 ``(n_tokens, k)``: allowed next tokens per token, -1 = none
  (`Tree.next_token_table()`); a token whose row is all -1 ends an identifier;
- ``start_token``: the token every identifier starts from (`Tree.root_token`);
- ``step(path, parent) -> logits``: the model. ``path`` int64 ``(B, W, t)`` is each beam's
  tokens so far (W = current number of beams: 1 at the root, then min(beam_size, W * k));
  start token first, 0 after a finished beam's end; ``parent`` int64 ``(B, W)``
  says which beam of the previous call each current beam extends (None on the first call), so a
  model that caches keys/values reorders its cache with it (cache[b, parent[b, w]]). It returns
  float ``(B, W, k)``: a logit for each slot of ``next_table[path[..., -1]]`` (slots that are -1
  are masked here, so their value does not matter). Scores are log-softmax over the allowed
  children only.

Usage from another model (e.g. TIGER)::

    table = torch.as_tensor(tree.next_token_table())
    def step(path, parent):               # path (B, W, t)
        h = my_decoder(path, parent)      # (B, W, d), with a cache of its own
        child = table[path[..., -1]].clamp(min=0)          # (B, W, k)
        return (h.unsqueeze(2) * emb[child]).sum(-1)       # (B, W, k)
    items, scores = beam_search(step, table, tree.root_token, n_items=tree.n_items,
                                batch_size=B, beam_size=50, topk=10)

Unbalanced trees: a beam that has reached an item keeps its score and competes with the beams
still descending; it is carried as one candidate (never duplicated), so the returned items are
always distinct and valid. With ``beam_size`` >= number of items nothing is ever pruned and the
result equals exhaustive scoring of every identifier.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from seater.errors import ConfigError

StepFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def beam_search(
    step: StepFn,
    next_table: torch.Tensor,
    start_token: int,
    n_items: int,
    batch_size: int,
    beam_size: int,
    topk: int,
    max_steps: int | None = None,
    mode: str = "beam",
    temperature: float | Sequence[float] = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode `batch_size` users at once; returns ``(items, scores)``, each ``(B, topk)``.

    Parameters
    ----------
    step : the model (see module docstring).
    next_table : int64 ``(n_tokens, k)`` on the decoding device.
    start_token : root token (`Tree.root_token`).
    n_items : item tokens are ``1..n_items``; only they end an identifier.
    batch_size : users decoded together (the B of every tensor).
    beam_size : beams per user (W). ``mode="greedy"`` forces W = 1.
    topk : items returned per user (<= W); 0 with score -inf where fewer were reachable.
    max_steps : steps to run (default: until every beam has ended, at most n_tokens).
    mode : "beam" (deterministic), "greedy" (W = 1, argmax per level) or "sample": at each
        level W candidates are drawn without replacement from softmax(cumulative score / T)
        (Gumbel-top-k), T = ``temperature`` (one value, or one per level); returned scores are
        always the true summed log-probabilities and the output is sorted by them.
    generator : RNG for ``mode="sample"``.

    Returns
    -------
    items : int64 ``(B, topk)`` item ids, best first. scores : float ``(B, topk)`` summed
    log-probabilities of the identifiers.
    """
    if mode not in ("beam", "greedy", "sample"):
        raise ConfigError(f"beam search mode must be beam, greedy or sample, got {mode!r}")
    if beam_size < 1 or topk < 1:
        raise ConfigError(f"beam_size and topk must be >= 1, got {beam_size} and {topk}")
    W = 1 if mode == "greedy" else beam_size
    topk = min(topk, W)
    B, device = batch_size, next_table.device
    k = next_table.shape[1]
    neg_inf = torch.tensor(float("-inf"), device=device)
    steps = max_steps if max_steps is not None else next_table.shape[0]

    # the beam grows as min(W, W_prev * k): one beam at the root, so no step computes W copies of it
    path = torch.full((B, 1, 1), start_token, dtype=torch.long, device=device)  # (B, Wc, t)
    last = path[..., 0]  # (B, Wc) last token of each beam
    score = torch.zeros((B, 1), device=device)  # (B, Wc) summed log-prob
    parent: torch.Tensor | None = None
    for level in range(steps):
        finished = (last >= 1) & (last <= n_items)  # (B, W) beams that already hold an item
        alive = torch.isfinite(score) & ~finished
        if not alive.any():
            break
        child = next_table[last]  # (B, W, k) allowed next tokens, -1 = none
        logits = step(path, parent).float()  # (B, W, k)
        logits = logits.masked_fill(child < 0, float("-inf"))
        logp = torch.log_softmax(logits, dim=-1)  # children-only softmax
        logp = torch.nan_to_num(logp, nan=float("-inf"))  # rows with no child at all
        cand = score.unsqueeze(-1) + logp  # (B, W, k)
        cand = torch.where(alive.unsqueeze(-1), cand, neg_inf)
        # a finished beam stays as exactly one candidate (slot 0) with its score unchanged
        keep = finished & torch.isfinite(score)
        cand[..., 0] = torch.where(keep, score, cand[..., 0])
        Wc = last.shape[1]
        Wn = min(W, Wc * k)  # beams after this step
        flat = cand.reshape(B, Wc * k)  # (B, Wc*k)
        if mode == "sample":
            t = temperature[min(level, len(temperature) - 1)] if isinstance(temperature, Sequence) else temperature
            if t <= 0:
                raise ConfigError(f"sampling temperature must be > 0, got {t}")
            u = torch.rand(flat.shape, device=device, generator=generator).clamp_(1e-20, 1.0)
            key = flat / t - torch.log(-torch.log(u))  # Gumbel-top-k = sampling without replacement
            _, pick = key.topk(Wn, dim=-1)  # (B, Wn)
            new_score = flat.gather(1, pick)
        else:
            new_score, pick = flat.topk(Wn, dim=-1)  # (B, Wn)
        parent = pick // k  # (B, Wn) beam each new beam extends
        slot = pick % k
        prev_last = last.gather(1, parent)
        was_finished = keep.gather(1, parent)
        new_tok = child.gather(1, parent.unsqueeze(-1).expand(B, Wn, k)).gather(2, slot.unsqueeze(-1)).squeeze(-1)
        new_tok = torch.where(was_finished, prev_last, new_tok)  # finished beams keep their item
        new_tok = torch.where(torch.isfinite(new_score), new_tok.clamp(min=0), torch.zeros_like(new_tok))
        score = new_score
        last = new_tok
        # the path gets 0 after a finished beam's end, so models see padding there
        appended = torch.where(was_finished, torch.zeros_like(new_tok), new_tok)
        path = torch.cat([path.gather(1, parent.unsqueeze(-1).expand(-1, -1, path.shape[2])), appended.unsqueeze(-1)], dim=2)
    is_item = (last >= 1) & (last <= n_items) & torch.isfinite(score)
    score = torch.where(is_item, score, neg_inf)
    n = min(topk, score.shape[1])  # a tiny tree may end with fewer beams than topk
    best, order = score.topk(n, dim=-1)  # (B, n)
    items = last.gather(1, order)
    items = torch.where(torch.isfinite(best), items, torch.zeros_like(items))
    if n < topk:
        items = torch.cat([items, items.new_zeros(B, topk - n)], 1)
        best = torch.cat([best, best.new_full((B, topk - n), float("-inf"))], 1)
    return items, best
