"""TIGER: generative retrieval with semantic IDs (Rajput et al., 2023), as retriever `tiger`.

An encoder-decoder transformer reads a user token and the semantic IDs of the history and
generates the next item's semantic ID code by code; beam search over codes returns the top-K
items. The semantic IDs are the codes of the `Tree` the harness passes to `fit` (``needs_tree``):
RQ-VAE codes + collision code with builder `rqvae` (the paper), or the codes of any other
builder (e.g. a balanced k-ary tree), so "TIGER on balanced-tree IDs" is the same model.

Usage::

    tree = BUILDERS.get("rqvae").factory(item_vectors, k=256)
    model = TIGER(epochs=20, constrained=False).fit(split, tree)
    top = model.recommend(split.test.histories, 20)        # (U, 20), 0 = nothing valid left
    model.invalid_rate(split.test.histories, ks=(10, 20))   # unconstrained decoding only

Token layout (k = tree.k, D = tree.depth, per-level offsets so each level has its own tokens)::

    encoder: 0 pad | 1..user_buckets user tokens | user_buckets + 1 + level * k + code
    decoder: 0 pad | 1 start | 2 + level * k + code
    output at level l: k + 1 logits, codes 0..k-1 and END (= k; only needed by trees whose
        identifiers have different lengths: the target after an item's last code is END)

Decisions (documented departures):

- User token: `recommend` receives histories only (the harness contract), so the user id is not
  available at inference. ``user_token="history"`` hashes the history's item ids (a fixed
  polynomial hash) into `user_buckets` buckets; ``"none"`` leaves the token out (bucket 0 = pad).
  For a given user the hash differs between training prefixes and the test history, so the
  token carries little signal; with 2000 buckets for ~20K users the paper's token is also
  shared by ~10 users.
- Positions: learned absolute positions (the paper's T5 uses relative position buckets).
- Output: a softmax over the current level's k codes (+ END), not over every level's tokens.
- Decoding: both modes share one beam search over code slots (full-softmax log-probabilities
  summed over levels); `constrained=True` masks codes that leave the trie of existing IDs, so
  the only difference between the modes is the mask. ``constrained=False`` is the paper: IDs
  that match no item are dropped (the row is filled with the next valid beams, 0 when none is
  left) and `invalid_rate` / ``fit_info_`` report the share of invalid IDs among the top-K beams.
- Optimiser: the shared loop's AdamW with a constant learning rate by default, or
  ``lr_schedule = "cosine"`` (the paper: Adafactor, inverse-square-root schedule, 200K steps).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seater.data.types import Split
from seater.dropout import Dropout
from seater.device import resolve_device
from seater.errors import ConfigError, DataError
from seater.metrics import evaluate
from seater.retriever import RETRIEVERS, Retriever, check_histories, check_topk
from seater.tracking import NullTracker, Tracker
from seater.training import resume_identity, train_config, train_loop
from seater.trees.tree import Tree

_HASH_MULT = 1_000_003
_HASH_MOD = 2_147_483_647


@dataclass
class TIGERConfig:
    d_model: int = 128  # model width (TIGER)
    n_heads: int = 6  # attention heads (TIGER)
    head_dim: int = 64  # per-head width, so attention is 6 x 64 = 384 wide (TIGER)
    ffn_dim: int = 1024  # feed-forward width (TIGER)
    encoder_layers: int = 4  # (TIGER)
    decoder_layers: int = 4  # (TIGER)
    dropout: float = 0.1  # (TIGER)
    user_buckets: int = 2000  # hashed user tokens (TIGER)
    user_token: str = "history"  # "history": hash of the history's items; "none": no user token
    max_history: int = 20  # most recent items read (TIGER: 20)
    constrained: bool = False  # True: trie-constrained beam search; False: the paper's, invalid IDs dropped
    beam_size: int = 20  # beams per user; at least the requested k is always used
    epochs: int = 200  # upper bound; early stopping on validation NDCG@10 ends sooner
    batch_size: int = 256  # training samples per step
    lr: float = 1e-3  # AdamW learning rate
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over `epochs` (seater.training.epoch_lr)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    ema: float = 0.0  # > 0: validate and keep a moving average of the weights (seater.training.TrainConfig.ema)
    patience: int = 4  # epochs without validation improvement before stopping
    max_steps_per_epoch: int | None = None  # cap on steps per epoch (CPU smoke runs); None = all samples
    valid_users: int = 2000  # validation users sampled (seeded) for early stopping; 0 = all
    eval_batch_size: int = 128  # users decoded together in recommend
    checkpoint_dir: str | None = None  # resumable training checkpoints (the shared loop)
    progress: bool = False  # tqdm bar per epoch

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "head_dim", "ffn_dim", "encoder_layers", "decoder_layers", "user_buckets",
                     "max_history", "beam_size", "epochs", "batch_size", "patience", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"tiger parameter {name} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"tiger parameter dropout must be in [0, 1), got {self.dropout}")
        train_config(self)  # raises on a bad training value
        if self.user_token not in ("history", "none"):
            raise ConfigError(f"tiger parameter user_token must be 'history' or 'none', got {self.user_token!r}")
        if self.valid_users < 0 or (self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1):
            raise ConfigError("tiger parameters valid_users must be >= 0 and max_steps_per_epoch >= 1 or None")


# ---------------------------------------------------------------------------------------- model
class Attention(nn.Module):
    """Multi-head attention whose inner width (heads x head_dim) may differ from d_model."""

    def __init__(self, d_model: int, n_heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.h, self.dh, self.dropout = n_heads, head_dim, dropout
        self.q = nn.Linear(d_model, n_heads * head_dim)
        self.kv = nn.Linear(d_model, 2 * n_heads * head_dim)
        self.out = nn.Linear(n_heads * head_dim, d_model)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """x (B, T, d) attends to ctx (B, S, d); mask (B, S) True = attend. Returns (B, T, d)."""
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.h, self.dh).transpose(1, 2)  # (B, h, T, dh)
        k, v = self.kv(ctx).view(B, -1, 2, self.h, self.dh).permute(2, 0, 3, 1, 4)  # 2 x (B, h, S, dh)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, S)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(B, T, self.h * self.dh))


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, cfg: TIGERConfig, cross: bool):
        super().__init__()
        d = cfg.d_model
        self.ln1, self.self_attn = nn.LayerNorm(d), Attention(d, cfg.n_heads, cfg.head_dim, cfg.dropout)
        self.cross = cross
        if cross:
            self.ln2, self.cross_attn = nn.LayerNorm(d), Attention(d, cfg.n_heads, cfg.head_dim, cfg.dropout)
        self.ln3 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.ReLU(), Dropout(cfg.dropout), nn.Linear(cfg.ffn_dim, d))
        self.drop = Dropout(cfg.dropout)

    def forward(self, x, self_mask=None, causal=False, memory=None, memory_mask=None):
        h = self.ln1(x)
        x = x + self.drop(self.self_attn(h, h, self_mask, causal))
        if self.cross:
            x = x + self.drop(self.cross_attn(self.ln2(x), memory, memory_mask))
        return x + self.drop(self.ffn(self.ln3(x)))


class TIGERModel(nn.Module):
    """Encoder over [user token, history codes], decoder over [start, target codes so far]."""

    def __init__(self, cfg: TIGERConfig, k: int, depth: int):
        super().__init__()
        d = cfg.d_model
        self.k, self.depth, self.user_buckets = k, depth, cfg.user_buckets
        self.enc_tok = nn.Embedding(1 + cfg.user_buckets + depth * k, d, padding_idx=0)
        self.enc_pos = nn.Embedding(1 + cfg.max_history * depth, d)
        self.dec_tok = nn.Embedding(2 + depth * k, d, padding_idx=0)
        self.dec_pos = nn.Embedding(depth, d)
        self.encoder = nn.ModuleList(Block(cfg, cross=False) for _ in range(cfg.encoder_layers))
        self.decoder = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.decoder_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(d), nn.LayerNorm(d)
        self.head = nn.Parameter(torch.randn(depth, d, k + 1) * d**-0.5)  # per-level output (codes + END)
        self.drop = Dropout(cfg.dropout)

    def encode(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, S) -> memory (B, S, d), mask (B, S) True = real token."""
        mask = tokens > 0
        mask[:, 0] = True  # the user slot is always attended, so no row is fully masked
        x = self.drop(self.enc_tok(tokens) + self.enc_pos.weight[: tokens.shape[1]])
        for block in self.encoder:
            x = block(x, self_mask=mask)
        return self.enc_ln(x), mask

    def decode(self, dec_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """dec_in (B, T) decoder tokens, T <= depth -> logits (B, T, k + 1) of levels 0..T-1."""
        T = dec_in.shape[1]
        x = self.drop(self.dec_tok(dec_in) + self.dec_pos.weight[:T])
        for block in self.decoder:
            x = block(x, causal=True, memory=memory, memory_mask=memory_mask)
        x = self.dec_ln(x)  # (B, T, d)
        return torch.einsum("btd,tdc->btc", x, self.head[:T])


# ---------------------------------------------------------------------------------------- retriever
@RETRIEVERS.register("tiger", defaults={k: v for k, v in asdict(TIGERConfig()).items()}, added=("lr_schedule", "ema"))
class TIGER(Retriever):
    """TIGER seq2seq retriever over the semantic IDs of the given tree (see module docstring)."""

    needs_tree = True

    def __init__(self, device: str = "auto", seed: int = 0, **params: Any):
        super().__init__(device=device, seed=seed, **params)
        unknown = sorted(set(params) - set(asdict(TIGERConfig())))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} for retriever 'tiger'")
        self.cfg = TIGERConfig(**params)
        self.device, self.seed = device, seed

    # ------------------------------------------------------------------ inputs
    def _index_tree(self, tree: Tree) -> None:
        k, depth = tree.k, tree.depth
        self.k_, self.depth_, self.n_items_ = k, depth, tree.n_items
        codes = np.full((tree.n_items + 1, depth), -1, dtype=np.int64)  # row 0 = padding item
        codes[1:, : tree.codes.shape[1]] = tree.codes
        self.codes_ = codes
        # exact-match lookup of a code row -> item: integer key in base k + 1 (-1 padding -> digit 0)
        self.key_base_ = k + 1
        if depth * np.log(k + 1) >= np.log(2**62):
            raise ConfigError(f"tree too deep for tiger's ID lookup (k={k}, depth={depth})")
        keys = self._keys(codes[1:])
        order = np.argsort(keys)
        self.sorted_keys_, self.sorted_items_ = keys[order], order + 1
        self.children_ = torch.as_tensor(tree.children)  # (n_nodes, k) tokens
        # encoder tokens of every item's codes (N + 1, depth), 0 for padding codes
        lvl = np.arange(depth)[None, :]
        self.enc_codes_ = np.where(codes >= 0, 1 + self.cfg.user_buckets + lvl * k + codes, 0)

    def _keys(self, codes: np.ndarray) -> np.ndarray:
        key = np.zeros(len(codes), dtype=np.int64)
        for j in range(codes.shape[1]):
            key = key * self.key_base_ + (codes[:, j] + 1)
        return key

    def _lookup(self, codes: np.ndarray) -> np.ndarray:
        """Item id of each code row (M, depth), 0 where no item has that ID."""
        key = self._keys(codes)
        pos = np.clip(np.searchsorted(self.sorted_keys_, key), 0, len(self.sorted_keys_) - 1)
        return np.where(self.sorted_keys_[pos] == key, self.sorted_items_[pos], 0)

    def _encoder_tokens(self, histories: np.ndarray) -> torch.Tensor:
        """histories (B, L) left-padded -> encoder tokens (B, 1 + max_history * depth)."""
        h = check_histories(histories, self.n_items_, "tiger")
        L = self.cfg.max_history
        h = h[:, -L:] if h.shape[1] >= L else np.pad(h, ((0, 0), (L - h.shape[1], 0)))
        if self.cfg.user_token == "history":
            key = np.zeros(len(h), dtype=np.int64)
            for j in range(L):
                key = (key * _HASH_MULT + h[:, j]) % _HASH_MOD
            user = 1 + key % self.cfg.user_buckets
        else:
            user = np.zeros(len(h), dtype=np.int64)
        tok = np.concatenate([user[:, None], self.enc_codes_[h].reshape(len(h), -1)], axis=1)
        return torch.as_tensor(tok, device=self.device_)

    def _decoder_io(self, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """targets (B,) -> decoder input (B, depth) and labels (B, depth) (-100 = ignored)."""
        k, depth = self.k_, self.depth_
        c = self.codes_[targets]  # (B, depth), -1 after the end
        lvl = np.arange(depth)[None, :]
        tok = np.where(c >= 0, 2 + lvl * k + c, 0)
        dec_in = np.concatenate([np.ones((len(c), 1), np.int64), tok[:, :-1]], axis=1)
        lengths = (c >= 0).sum(1)
        labels = np.where(c >= 0, c, -100)
        end = lengths < depth
        labels[np.flatnonzero(end), lengths[end]] = k  # END after a short identifier
        return torch.as_tensor(dec_in, device=self.device_), torch.as_tensor(labels, device=self.device_)

    # ------------------------------------------------------------------ training
    def fit(self, split: Split, tree: Tree | None = None, tracker: Tracker | None = None) -> "TIGER":
        tracker = tracker or NullTracker()
        if tree is None:
            raise ConfigError("retriever 'tiger' needs a tree (its semantic IDs); build one, e.g. with builder 'rqvae'")
        if tree.n_items != split.n_items:
            raise DataError(f"tree has {tree.n_items} items but the split has {split.n_items}")
        if len(split.train) == 0:
            raise DataError(f"{split.dataset}: the split has no training samples")
        cfg = self.cfg
        self.device_ = resolve_device(self.device)
        self._index_tree(tree)
        torch.manual_seed(self.seed)
        self.model_ = TIGERModel(cfg, tree.k, tree.depth).to(self.device_)

        hist, targets = split.train.histories, split.train.targets
        n = len(targets)
        rng_valid = np.random.default_rng(self.seed)
        n_valid = len(split.valid)
        pick = np.arange(n_valid) if cfg.valid_users == 0 or cfg.valid_users >= n_valid else np.sort(rng_valid.choice(n_valid, cfg.valid_users, replace=False))
        v_hist, v_truth = split.valid.histories[pick], [split.valid.truth[i] for i in pick]
        if len(v_truth) == 0:  # validate() would score 0 every epoch and keep epoch 0's weights
            raise DataError("the split has no validation users: TIGER selects its epoch on them")

        def batches(epoch: int):
            order = np.random.default_rng((self.seed, epoch)).permutation(n)
            steps = (n + cfg.batch_size - 1) // cfg.batch_size
            if cfg.max_steps_per_epoch is not None:
                steps = min(steps, cfg.max_steps_per_epoch)
            for s in range(steps):
                idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                dec_in, labels = self._decoder_io(targets[idx])
                yield self._encoder_tokens(hist[idx]), dec_in, labels

        def step_loss(batch):
            enc, dec_in, labels = batch
            memory, mask = self.model_.encode(enc)
            logits = self.model_.decode(dec_in, memory, mask)  # (B, depth, k + 1)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)

        def validate() -> dict[str, float]:
            return evaluate(self.recommend(v_hist, 10), v_truth, ks=(10,))  # the metrics every retriever is scored by

        tcfg = train_config(cfg, val_metric="ndcg@10", device=str(self.device_), seed=self.seed)
        t0 = time.perf_counter()
        identity = resume_identity(asdict(cfg), ignore=("eval_batch_size",), retriever="tiger", tree=tree.hash())
        result = train_loop(self.model_, batches, step_loss, validate, tcfg, tracker, identity)
        self.model_.eval()
        self.fit_info_ = {
            "train_seconds": result.train_seconds,
            "resumed_seconds": result.resumed_seconds,
            "epochs": float(result.epochs_run),
            "best_epoch": float(result.best_epoch),
            "samples_per_second": result.samples_per_second,
            "n_params": float(sum(p.numel() for p in self.model_.parameters())),
            **{f"valid/{key}": float(v) for key, v in result.best_metrics.items()},
        }
        self.history_ = result.history
        # invalid-ID rate of the paper's unconstrained decoding on the validation users
        for key, v in self.invalid_rate(v_hist, ks=(10, 20)).items():
            self.fit_info_[f"valid/{key}"] = v
        self.fit_info_["fit_seconds"] = time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _beam(self, histories: np.ndarray, width: int, constrained: bool) -> tuple[np.ndarray, np.ndarray]:
        """Beam search over code slots; returns (items (B, width), scores (B, width)), best first.

        items: 0 for an ID that matches no item (unconstrained only) or an empty beam.
        """
        model, k, depth, N = self.model_, self.k_, self.depth_, self.n_items_
        histories = check_histories(histories, N, "tiger")
        if len(histories) == 0:  # as every retriever answers an empty batch
            return np.zeros((0, width), dtype=np.int64), np.zeros((0, width))
        model.eval()
        out_items, out_scores = [], []
        if self.children_.device != self.device_:  # moved once, not per call (~0.9 GB at Books scale, k = 256)
            self.children_ = self.children_.to(self.device_)
        children = self.children_
        for a in range(0, len(histories), self.cfg.eval_batch_size):
            enc = self._encoder_tokens(histories[a : a + self.cfg.eval_batch_size])
            B, W = len(enc), width
            memory, mask = model.encode(enc)  # (B, S, d), (B, S)
            memory = memory.repeat_interleave(W, 0)  # (B*W, S, d)
            mask = mask.repeat_interleave(W, 0)
            slots = torch.full((B, W, depth), -1, dtype=torch.long, device=self.device_)  # chosen code per level
            dec_in = torch.ones((B, W, 1), dtype=torch.long, device=self.device_)  # start token
            score = torch.full((B, W), float("-inf"), device=self.device_)
            score[:, 0] = 0.0  # one live beam at the start
            done = torch.zeros((B, W), dtype=torch.bool, device=self.device_)
            node = torch.zeros((B, W), dtype=torch.long, device=self.device_)  # trie node (constrained)
            item = torch.zeros((B, W), dtype=torch.long, device=self.device_)  # reached item (constrained)
            for t in range(depth):
                logits = model.decode(dec_in.reshape(B * W, -1), memory, mask)[:, -1]  # (B*W, k + 1)
                logp = torch.log_softmax(logits.float(), -1).view(B, W, k + 1)
                if constrained:
                    allowed = torch.cat([children[node] >= 0, torch.zeros_like(node[..., None], dtype=torch.bool)], -1)
                    logp = logp.masked_fill(~allowed, float("-inf"))
                cand = score[..., None] + logp  # (B, W, k + 1)
                # a finished beam is carried as one candidate (END slot) with its score unchanged
                cand = torch.where(done[..., None], torch.full_like(cand, float("-inf")), cand)
                cand[..., k] = torch.where(done, score, cand[..., k])
                top, idx = cand.view(B, W * (k + 1)).topk(W, -1)  # (B, W)
                beam, slot = idx // (k + 1), idx % (k + 1)
                score = top
                slots = slots.gather(1, beam[..., None].expand(-1, -1, depth)).clone()
                was_done = done.gather(1, beam)
                node, item = node.gather(1, beam), item.gather(1, beam)
                is_end = slot == k
                slots[..., t] = torch.where(is_end | was_done, -1, slot)
                if constrained:
                    nxt = children[node, slot.clamp(max=k - 1)]  # (B, W) token of the chosen child
                    live = ~was_done & ~is_end
                    reached = live & (nxt >= 1) & (nxt <= N)
                    item = torch.where(reached, nxt, item)
                    node = torch.where(live & (nxt > N), nxt - N - 1, node)
                    done = was_done | is_end | reached
                else:
                    done = was_done | is_end
                tok = torch.where(done, 0, 2 + t * k + slot.clamp(max=k - 1))
                dec_in = torch.cat([dec_in.gather(1, beam[..., None].expand(-1, -1, dec_in.shape[-1])), tok[..., None]], -1)
            if constrained:
                items = item.cpu().numpy()
            else:
                items = self._lookup(slots.cpu().numpy().reshape(B * W, depth)).reshape(B, W)
            sc = score.cpu().numpy()
            items = np.where(np.isfinite(sc), items, 0)
            out_items.append(items)
            out_scores.append(sc)
        return np.concatenate(out_items), np.concatenate(out_scores)

    @property
    def beam_size(self) -> int:
        """Beams per user in `recommend` (at least the k asked for); the harness's `beam_sweep` sets it."""
        return self.cfg.beam_size

    @beam_size.setter
    def beam_size(self, width: int) -> None:
        self.cfg = replace(self.cfg, beam_size=width)  # checked by TIGERConfig

    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise ConfigError("tiger: call fit before recommend")
        k = check_topk(k, "tiger.recommend")
        width = max(self.cfg.beam_size, k)
        items, _ = self._beam(np.asarray(histories), width, self.cfg.constrained)
        return _first_valid(items, k)

    def invalid_rate(self, histories: np.ndarray, ks=(10, 20)) -> dict[str, float]:
        """Share of the top-K beams of unconstrained decoding whose ID matches no item, per K.

        Decodes with ``max(beam_size, max(ks))`` beams regardless of `constrained` (which never
        produces invalid IDs). Returns ``{"invalid_rate@10": ..., ...}``.
        """
        if not hasattr(self, "model_"):
            raise ConfigError("tiger: call fit before invalid_rate")
        ks = tuple(check_topk(K, "tiger invalid_rate") for K in ks)
        if not ks:
            raise ConfigError("tiger invalid_rate: give at least one cut-off K")
        width = max(self.cfg.beam_size, max(ks))
        items, _ = self._beam(np.asarray(histories), width, constrained=False)
        return {f"invalid_rate@{K}": float((items[:, :K] == 0).mean()) for K in ks}


def _first_valid(items: np.ndarray, k: int) -> np.ndarray:
    """Keep the first k non-zero entries of each row (order kept), 0-padded: invalid IDs dropped."""
    out = np.zeros((len(items), k), dtype=np.int64)
    valid = items > 0
    rank = np.cumsum(valid, axis=1) - 1
    rows, cols = np.nonzero(valid & (rank < k))
    out[rows, rank[rows, cols]] = items[rows, cols]
    return out


__all__ = ["TIGER", "TIGERConfig", "TIGERModel"]
