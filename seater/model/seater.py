"""The SEATER network: a small encoder-decoder that generates an item's tree identifier.

Reads top-down: attention and layers, then `SEATER` (encode, decode, losses, decoding).

Token space is the `Tree`'s: 0 pad, 1..N items, N+1+node internal nodes, root N+1 = start token.
One embedding table of ``tree.n_tokens`` rows serves the encoder (history items), the decoder
input (root and internal nodes) and the output (a step's logits are the decoder state dotted
with the embeddings of the current node's children), so an item's leaf token *is* its encoder
embedding.

Choices where the paper is silent (documented here): pre-LayerNorm blocks with a final
LayerNorm; a bidirectional encoder over the left-padded history; decoder positions are learned
per identifier step; the ranking score is sigmoid(lin_x(mean enc)ᵀ W lin_y(mean dec)) with the
means taken over non-padding positions.

Usage::

    model = SEATER(SEATERConfig(n_items=tree.n_items, n_tokens=tree.n_tokens, depth=tree.depth), tree)
    parts = model.loss(histories, targets)          # dict: loss, gen, align, rank
    items, scores = model.recommend(histories, beam_size=50, topk=10)
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from seater.dropout import Dropout
from seater.model.beam_search import beam_search
from seater.model.config import SEATERConfig
from seater.model.losses import alignment_loss, batch_tokens, child_logits, generation_loss, ranking_loss, sample_rank_negatives
from seater.trees.tree import Tree


def attention_kernels(name: str):
    """Context for the attention kernels: "math" (plain matmuls + softmax) or "auto" (torch's choice)."""
    if name not in ("math", "auto"):
        raise ValueError(f"attention must be 'math' or 'auto', got {name!r}")
    return sdpa_kernel(SDPBackend.MATH) if name == "math" else contextlib.nullcontext()


def decode_attention(device: torch.device) -> str:
    """The kernels `SEATER.recommend` decodes with when not told: math on CUDA (see there), torch's choice elsewhere."""
    return "math" if device.type == "cuda" else "auto"


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.dropout = dropout

    def split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.h, self.dh)).transpose(-3, -2)  # (..., T, d) -> (..., h, T, dh)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        return self.o(x.transpose(-3, -2).flatten(-2))  # (..., h, T, dh) -> (..., T, d)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, causal: bool = False):
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)
        return self.merge(out)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False):
        return self.attend(self.split(self.q(x)), self.split(self.k(mem)), self.split(self.v(mem)), mask, causal)


class FeedForward(nn.Sequential):
    def __init__(self, d: int, d_ff: int, dropout: float):
        super().__init__(nn.Linear(d, d_ff), nn.GELU(), Dropout(dropout), nn.Linear(d_ff, d))


class EncoderLayer(nn.Module):
    def __init__(self, c: SEATERConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.attn = Attention(c.d_model, c.n_heads, c.dropout)
        self.ffn = FeedForward(c.d_model, c.d_ff, c.dropout)
        self.drop = Dropout(c.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.drop(self.attn(h, h, mask))
        return x + self.drop(self.ffn(self.ln2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, c: SEATERConfig):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(c.d_model) for _ in range(3))
        self.self_attn = Attention(c.d_model, c.n_heads, c.dropout)
        self.cross_attn = Attention(c.d_model, c.n_heads, c.dropout)
        self.ffn = FeedForward(c.d_model, c.d_ff, c.dropout)
        self.drop = Dropout(c.dropout)

    def forward(self, x: torch.Tensor, mem: torch.Tensor, mem_mask: torch.Tensor, self_mask: torch.Tensor | None = None) -> torch.Tensor:
        """self_mask (T, T) True = attend; None = causal."""
        h = self.ln1(x)
        x = x + self.drop(self.self_attn(h, h, self_mask, causal=self_mask is None))
        x = x + self.drop(self.cross_attn(self.ln2(x), mem, mem_mask))
        return x + self.drop(self.ffn(self.ln3(x)))


def tree_tensors(tree: Tree) -> dict[str, torch.Tensor]:
    """The tree tables the model needs, as int64 tensors."""
    n, D = tree.n_items, tree.item_path.shape[1]
    parent_token = np.zeros(tree.n_tokens, dtype=np.int64)  # 0 = no parent (pad, root)
    nodes = np.arange(1, tree.n_nodes)
    parent_token[n + 1 + nodes] = n + 1 + tree.parent[nodes]
    parent_token[1 : n + 1] = n + 1 + tree.item_path[np.arange(n), tree.lengths - 1]
    order = np.lexsort(tree.codes.T[::-1])  # items sorted by code: every node is a contiguous range
    item_pos = np.zeros(n + 1, dtype=np.int64)
    item_pos[order + 1] = np.arange(n)
    node_start = np.full(tree.n_nodes, n, dtype=np.int64)
    rows, levels = np.nonzero(tree.item_path >= 0)
    np.minimum.at(node_start, tree.item_path[rows, levels], item_pos[rows + 1])
    # every node's token prefix root .. node, right-padded with 0: the decoder input whose last
    # state scores the node's children (`catalog_log_prob`)
    node_prefix = np.zeros((tree.n_nodes, D), dtype=np.int64)
    anc, up = np.arange(tree.n_nodes), 0
    while (live := tree.node_level - up >= 0).any():
        rows = np.flatnonzero(live)
        node_prefix[rows, tree.node_level[rows] - up] = n + 1 + anc[rows]
        anc = np.where(live, tree.parent[np.maximum(anc, 0)], -1)
        up += 1
    tables = {
        "node_prefix": node_prefix,  # (n_nodes, D)
        "item_tokens": tree.item_tokens(),  # (N+1, D+1)
        "next_table": tree.next_token_table(),  # (n_tokens, k)
        "parent_token": parent_token,  # (n_tokens,)
        "item_path": tree.item_path,  # (N, D)
        "lengths": tree.lengths,  # (N,)
        "node_start": node_start,  # (n_nodes,)
        "node_size": tree.node_size,  # (n_nodes,)
        "item_pos": item_pos,  # (N+1,)
        "sorted_items": order + 1,  # (N,)
    }
    assert tables["item_tokens"].shape[1] == D + 1
    return {k: torch.as_tensor(np.ascontiguousarray(v), dtype=torch.long) for k, v in tables.items()}


def _inference(method):
    """no_grad and eval mode (no dropout) for the call, the module's mode restored after it: a
    caller that decodes mid-training gets the same scores as the retriever."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return method(self, *args, **kwargs)
        finally:
            self.train(was)

    return wrapper


class SEATER(nn.Module):
    def __init__(self, config: SEATERConfig, tree: Tree):
        super().__init__()
        c = self.config = config
        if (tree.n_items, tree.n_tokens, tree.depth) != (c.n_items, c.n_tokens, c.depth):
            raise ValueError("SEATERConfig n_items/n_tokens/depth disagree with the tree")
        for name, t in tree_tensors(tree).items():
            self.register_buffer(name, t, persistent=False)
        self.tok_emb = nn.Embedding(c.n_tokens, c.d_model, padding_idx=0)
        self.enc_pos = nn.Embedding(c.max_history, c.d_model)
        self.dec_pos = nn.Embedding(c.depth + 1, c.d_model)
        self.encoder = nn.ModuleList(EncoderLayer(c) for _ in range(c.enc_layers))
        self.decoder = nn.ModuleList(DecoderLayer(c) for _ in range(c.dec_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.drop = Dropout(c.dropout)
        self.rank_x = nn.Linear(c.d_model, c.d_model)  # ranking score: x̄ = rank_x(mean enc)
        self.rank_y = nn.Linear(c.d_model, c.d_model)  # ȳ = rank_y(mean dec)
        self.rank_w = nn.Parameter(torch.eye(c.d_model))  # s = sigmoid(x̄ᵀ W ȳ)
        for e in (self.tok_emb, self.enc_pos, self.dec_pos):  # GPT-2 style: positions must not swamp items
            nn.init.normal_(e.weight, std=0.02)
        with torch.no_grad():
            self.tok_emb.weight[0].zero_()

    @torch.no_grad()
    def init_tokens(self, item_emb: torch.Tensor) -> None:
        """Start the token table from item embeddings ``(n_items, d_model)`` (row i = item i+1).

        Item tokens take their rows and every internal node the mean of its items' rows (the
        centroid the tree builder split on), all rescaled to the default init's std of 0.02 so
        the positions keep their share: the directions carry over, the scale does not.
        """
        n = self.config.n_items
        x = item_emb.to(self.tok_emb.weight)
        x = x * (0.02 / x.std().clamp_min(1e-12))
        rows, levels = torch.nonzero(self.item_path >= 0, as_tuple=True)
        nodes = self.item_path[rows, levels]
        sums = torch.zeros((self.node_size.numel(), x.shape[1]), dtype=x.dtype, device=x.device).index_add_(0, nodes, x[rows])
        self.tok_emb.weight[1 : n + 1] = x
        self.tok_emb.weight[n + 1 :] = sums / self.node_size.clamp_min(1)[:, None].to(x.dtype)

    # ------------------------------------------------------------------ encoder / decoder
    def encode(self, hist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hist int64 (B, L) left-padded -> memory (B, L, d), attention mask (B, 1, 1, L) True = attend."""
        L = hist.shape[1]
        keep = hist > 0  # (B, L)
        keep = keep.clone()
        keep[:, -1] = True  # an empty history still attends to one (padding) position: no NaN
        pos = torch.arange(self.config.max_history - L, self.config.max_history, device=hist.device)
        x = self.drop(self.tok_emb(hist) + self.enc_pos(pos))  # (B, L, d)
        mask = keep[:, None, None, :]  # (B, 1, 1, L)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.enc_ln(x), mask

    def decode(self, mem: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: tokens int64 (B, T) (root first) -> decoder states (B, T, d)."""
        T = tokens.shape[1]
        x = self.drop(self.tok_emb(tokens) + self.dec_pos(torch.arange(T, device=tokens.device)))  # (B, T, d)
        for layer in self.decoder:
            x = layer(x, mem, mask)
        return self.dec_ln(x)

    def decode_many(self, mem: torch.Tensor, mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher forcing of C identifiers per user at once: tokens (B, C, T) -> states (B, C, T, d).

        The C sequences are laid side by side as one row of C*T tokens whose self-attention mask
        is block-diagonal and causal, so each attends only to its own earlier steps (the same
        states as C separate `decode` calls) while the cross-attention keys and values of the
        user's memory are computed once, not once per candidate.
        """
        B, C, T = tokens.shape
        dev = tokens.device
        block = torch.arange(C * T, device=dev) // T
        step = torch.arange(C * T, device=dev) % T
        self_mask = (block[:, None] == block[None, :]) & (step[:, None] >= step[None, :])  # (CT, CT)
        x = self.drop(self.tok_emb(tokens.reshape(B, C * T)) + self.dec_pos(step))  # (B, CT, d)
        for layer in self.decoder:
            x = layer(x, mem, mask, self_mask)
        return self.dec_ln(x).view(B, C, T, -1)

    # ------------------------------------------------------------------ training
    def loss(self, hist: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """hist (B, L), targets (B,) item ids -> {"loss", "gen", "align", "rank"} (scalars)."""
        c = self.config
        seq = self.item_tokens[targets]  # (B, D+1) root .. item, 0-padded
        dec_in, dec_out = seq[:, :-1], seq[:, 1:]  # (B, D)
        mem, mask = self.encode(hist)
        rank = c.use_rank and c.lambda_rank > 0
        if rank:  # the target's and the negatives' identifiers in one decoder pass
            neg, shared, valid = sample_rank_negatives(
                targets, c.q, self.item_path, self.lengths, self.node_start, self.node_size, self.item_pos, self.sorted_items, generator
            )  # (B, q') each
            # rank_item_token: whole identifiers (D+1 positions; causal, so the first D states are the
            # generation loss's); otherwise root .. parent (D)
            rank_in = seq if c.rank_item_token else dec_in
            neg_in = self.item_tokens[neg][:, :, : rank_in.shape[1]]  # (B, q', D or D+1)
            all_states = self.decode_many(mem, mask, torch.cat([rank_in.unsqueeze(1), neg_in], 1))  # (B, 1+q', D(+1), d)
            states = all_states[:, 0, : dec_in.shape[1]]
        else:
            states = self.decode(mem, mask, dec_in)  # (B, D, d)
        child = self.next_table[dec_in]  # (B, D, k)
        emb = self.tok_emb.weight
        gen = generation_loss(child_logits(states, child, emb), child, dec_out)
        out = {"gen": gen}
        total = gen
        if c.use_align and c.lambda_align > 0:
            tokens = batch_tokens(seq)  # sorted tree tokens of the batch (and 0 if padded)
            out["align"] = alignment_loss(emb, tokens, self.parent_token, c.tau)
            total = total + c.lambda_align * out["align"]
        if rank:
            out["rank"] = self._rank_loss(hist, mem, rank_in, neg_in, all_states, targets, shared, valid)
            total = total + c.lambda_rank * out["rank"]
        out["loss"] = total
        return out

    def _pooled_enc(self, hist: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        w = (hist > 0).float().unsqueeze(-1)  # (B, L, 1)
        return self.rank_x((mem * w).sum(1) / w.sum(1).clamp(min=1.0))  # (B, d)

    def _pooled_dec(self, states: torch.Tensor, dec_in: torch.Tensor) -> torch.Tensor:
        w = (dec_in > 0).float().unsqueeze(-1)  # (..., D, 1)
        return self.rank_y((states * w).sum(-2) / w.sum(-2).clamp(min=1.0))  # (..., d)

    def _rank_loss(self, hist, mem, dec_in, neg_in, all_states, targets, shared, valid) -> torch.Tensor:
        """Pairwise ranking of the target (column 0) and its negatives by shared-prefix length."""
        x = self._pooled_enc(hist, mem)  # (B, d)
        y = self._pooled_dec(all_states, torch.cat([dec_in.unsqueeze(1), neg_in], 1))  # (B, 1+q, d)
        scores = torch.sigmoid(torch.einsum("bd,de,bce->bc", x, self.rank_w, y))  # (B, 1+q)
        full = self.lengths[targets - 1].unsqueeze(1)  # the target shares its whole identifier
        all_shared = torch.cat([full, shared], 1)
        all_valid = torch.cat([torch.ones_like(valid[:, :1]), valid], 1)
        return ranking_loss(scores, all_shared, all_valid, self.config.beta)

    # ------------------------------------------------------------------ scoring and decoding
    @_inference
    def identifier_log_prob(self, hist: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Exact log-probability of full identifiers by teacher forcing (in eval mode).

        hist (B, L); items int64 (B, M) -> (B, M) sum over steps of the children-only log-softmax.
        """
        B, M = items.shape
        mem, mask = self.encode(hist)
        seq = self.item_tokens[items]  # (B, M, D+1)
        dec_in, dec_out = seq[..., :-1].reshape(B * M, -1), seq[..., 1:].reshape(B * M, -1)
        states = self.decode(mem.repeat_interleave(M, 0), mask.repeat_interleave(M, 0), dec_in)  # (BM, D, d)
        child = self.next_table[dec_in]  # (BM, D, k)
        logp = torch.log_softmax(child_logits(states, child, self.tok_emb.weight), -1)  # (BM, D, k)
        slot = (child == dec_out.unsqueeze(-1)).float().argmax(-1)  # (BM, D)
        step = logp.gather(-1, slot.unsqueeze(-1)).squeeze(-1).masked_fill(dec_out == 0, 0.0)
        return step.sum(-1).view(B, M)

    @_inference
    def catalog_log_prob(self, hist: torch.Tensor, max_rows: int = 1 << 15, side_by_side: int = 16) -> torch.Tensor:
        """Exact log-probability of every item's identifier, hist (B, L) -> (B, N) (in eval mode).

        Equals `identifier_log_prob` over all items, at a fraction of the cost: the decoder state
        that scores a node's children depends only on the node's prefix, so one teacher-forced
        pass per tree node (about N / (k - 1) of them) gives every step of every identifier;
        an item's log-probability is then the sum of its path's child log-probabilities.
        `side_by_side` prefixes share one `decode_many` row, so the memory's cross-attention
        keys/values are computed once per that many prefixes; `max_rows` bounds the
        (user, prefix) rows decoded at once.
        """
        B = hist.shape[0]
        P, D = self.node_prefix.shape
        C = side_by_side
        dev = hist.device
        mem, mask = self.encode(hist)
        pad = -P % C  # empty prefixes (no children) fill the last row
        prefix = torch.cat([self.node_prefix, self.node_prefix.new_zeros(pad, D)])  # (P', D)
        child = torch.cat([self.next_table[self.config.n_items + 1 :], self.next_table.new_full((pad, self.next_table.shape[1]), -1)])
        last = ((prefix > 0).sum(1) - 1).clamp(min=0)  # (P',) position of the node in its prefix
        edge = torch.zeros(B, self.config.n_tokens, device=dev)  # log p(token | its parent's prefix)
        groups = max(1, max_rows // (B * C))  # rows of C prefixes per user per call
        for a in range(0, prefix.shape[0], groups * C):
            pre, c, pos = prefix[a : a + groups * C], child[a : a + groups * C], last[a : a + groups * C]
            g = pre.shape[0] // C
            tokens = pre.view(1, g, C, D).expand(B, -1, -1, -1).reshape(B * g, C, D)
            states = self.decode_many(mem.repeat_interleave(g, 0), mask.repeat_interleave(g, 0), tokens)  # (Bg, C, D, d)
            states = states.reshape(B, g * C, D, -1)
            h = states.gather(2, pos.view(1, -1, 1, 1).expand(B, -1, 1, states.shape[-1])).squeeze(2)  # (B, gC, d)
            logp = torch.log_softmax(child_logits(h, c.expand(B, -1, -1), self.tok_emb.weight), -1)  # (B, gC, k)
            ok = c >= 0
            edge[:, c[ok]] = logp[:, ok]
        path = self.item_tokens[1:, 1:]  # (N, D): every token after the root, 0-padded
        return (edge[:, path] * (path > 0)).sum(-1)  # (B, N)

    def step_fn(self, mem: torch.Tensor, mask: torch.Tensor):
        """The `beam_search` step for these users: incremental decoding with a key/value cache.

        Cross-attention keys/values are computed once per user and shared by its beams (the
        beams of a user are the query rows of one attention call); self-attention keys/values of
        earlier steps are cached per layer and reordered with `parent` (a gather over <= depth
        positions).
        """
        B = mem.shape[0]
        layers = self.decoder
        cross_kv = [(l.cross_attn.split(l.cross_attn.k(mem)), l.cross_attn.split(l.cross_attn.v(mem))) for l in layers]  # (B, h, L, dh)
        cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(layers)
        emb = self.tok_emb.weight

        def step(path: torch.Tensor, parent: torch.Tensor | None) -> torch.Tensor:
            _, W, t = path.shape
            tok = path[..., -1]  # (B, W)
            x = self.tok_emb(tok) + self.dec_pos.weight[t - 1]  # (B, W, d)
            for i, l in enumerate(layers):
                h = l.ln1(x)
                sa = l.self_attn
                k_new, v_new = sa.split(sa.k(h).unsqueeze(2)), sa.split(sa.v(h).unsqueeze(2))  # (B, W, h, 1, dh)
                if cache[i] is None:
                    k_all, v_all = k_new, v_new
                else:
                    k_old, v_old = cache[i]
                    idx = parent.view(B, W, 1, 1, 1).expand(-1, -1, *k_old.shape[2:])
                    k_all = torch.cat([k_old.gather(1, idx), k_new], 3)  # (B, W, h, t, dh)
                    v_all = torch.cat([v_old.gather(1, idx), v_new], 3)
                cache[i] = (k_all, v_all)
                q = sa.split(sa.q(h).unsqueeze(2))  # (B, W, h, 1, dh)
                att = F.scaled_dot_product_attention(q.flatten(0, 1), k_all.flatten(0, 1), v_all.flatten(0, 1))  # 4-D for every backend
                x = x + sa.merge(att.unflatten(0, (B, W))).squeeze(2)  # (B, W, d)
                ca = l.cross_attn
                qc = ca.split(ca.q(l.ln2(x)))  # (B, h, W, dh): a user's beams are one query block
                kc, vc = cross_kv[i]
                x = x + ca.merge(F.scaled_dot_product_attention(qc, kc, vc, attn_mask=mask))  # (B, W, d)
                x = x + l.ffn(l.ln3(x))
            h = self.dec_ln(x)  # (B, W, d)
            return child_logits(h, self.next_table[tok], emb)  # (B, W, k)

        return step

    @_inference
    def recommend(
        self, hist: torch.Tensor, beam_size: int = 50, topk: int = 50, mode: str = "beam", temperature=1.0, generator=None,
        attention: str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Constrained beam search (in eval mode): hist (B, L) -> items, scores (B, min(topk, W)).

        W = beam_size; greedy decoding is a beam of 1, so it returns one item per user.

        attention: "math" computes attention as plain matmuls + softmax, "auto" lets torch choose
        fused kernels; None = "math" on CUDA, "auto" elsewhere. Decoding attends over at most
        depth + 1 positions and the history's L, too short for fused kernels to pay on a GPU:
        on an H200, beam 50, 361K items, math decoded 91,884 users/s against 57,534 (the masked
        memory-efficient kernel took 60% of the GPU time); on a 2-core CPU math was ~20% slower
        (results/seater/speed_retrieval_h200.md; `seater-bench speed retrieval --attention auto,math`).
        """
        with attention_kernels(attention if attention is not None else decode_attention(hist.device)):
            mem, mask = self.encode(hist)
            return beam_search(
                self.step_fn(mem, mask), self.next_table, self.config.n_items + 1, self.config.n_items, hist.shape[0],
                beam_size, topk, max_steps=self.config.depth, mode=mode, temperature=temperature, generator=generator,
            )
