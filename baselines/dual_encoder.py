"""What SASRec, GRU4Rec and BERT4Rec share: data batching, losses, validation, retrieval.

A dual encoder maps a history to a user vector ``u`` (B, d) and scores every item by
``u · e_item`` with the item table it also reads its input from (tied embeddings). A subclass
only builds its `nn.Module` (an `Encoder`: ``forward(seq (B, L)) -> (B, L, d)`` hidden states)
and says how histories become model inputs; everything else lives here:

- training data: every training sequence is cut, from its end, into windows of `max_len`
  transitions (so every next-item pair trains exactly once), left-padded, tensorised once on
  the device and shuffled per epoch with a generator seeded by (seed, epoch);
- losses: full softmax cross-entropy over all items (default, ``loss="ce"``), or sampled
  softmax (``loss="sampled"``) with `n_negatives` negatives shared by the batch, drawn
  uniformly or by popularity with the logQ correction, accidental hits masked;
- validation: NDCG/Recall on `split.valid` (optionally a fixed random subsample of users)
  through `seater.metrics.evaluate`, early stopping via `seater.training.train_loop`;
- retrieval: exact chunked inner-product top-K (`seater.topk`), padding never returned,
  history items excluded only when ``exclude_history=True`` (papers differ; it is logged).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seater.data.types import EvalSet, Split
from seater.dropout import Dropout
from seater.device import resolve_device
from seater.errors import ConfigError, DataError
from seater.metrics import check_metric_name, metric_cutoff
from seater.retriever import EmbeddingModel, check_histories, check_topk
from seater.topk import topk_inner_product
from seater.tracking import NullTracker, Tracker
from seater.training import resume_identity, seed_everything, train_config, train_loop
from seater.trees.checks import check_int
from seater.trees.tree import Tree


@dataclass
class DualEncoderConfig:
    """Parameters every dual encoder shares (defaults from DESIGN.md: d 64, history 20, dropout 0.2)."""

    dim: int = 64  # item / hidden dimension
    max_len: int = 20  # history items the encoder reads (and training window length)
    dropout: float = 0.2  # embedding, attention and feed-forward dropout
    loss: str = "ce"  # "ce": full softmax over all items; "sampled": sampled softmax
    n_negatives: int = 1280  # sampled softmax negatives per batch (SEATER paper: 1280)
    negative_sampling: str = "uniform"  # "uniform" or "popularity" (then logQ-corrected)
    epochs: int = 200  # upper bound; early stopping ends sooner
    batch_size: int = 256  # training windows per step
    lr: float = 1e-3  # AdamW learning rate
    lr_schedule: str = "constant"  # or "cosine": decay to 0 over `epochs` (seater.training.epoch_lr)
    weight_decay: float = 0.0  # AdamW weight decay
    grad_clip: float | None = 5.0  # max grad norm; None disables clipping
    ema: float = 0.0  # > 0: validate and keep a moving average of the weights (seater.training.TrainConfig.ema)
    patience: int = 4  # epochs without validation improvement before stopping
    val_metric: str = "ndcg@10"  # early-stopping metric on split.valid
    valid_users: int = 0  # validate on this many random valid users (0 = all)
    eval_batch_size: int = 1024  # users per recommend batch
    exclude_history: bool = False  # never recommend items already in the history
    checkpoint_dir: str | None = None  # resumable training checkpoints (None = none)
    progress: bool = False  # tqdm bar per epoch


def make_config(cls: type, name: str, params: dict[str, Any]) -> Any:
    """`cls(**params)` with an unknown key or a bad value reported as one ConfigError."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} for retriever {name!r}; known: {', '.join(sorted(known))}")
    cfg = cls(**params)
    for f in fields(cls):  # kinds first: "0.2" for dropout raised a TypeError, "false" for a flag counted as true
        value, default = getattr(cfg, f.name), f.default
        if value is None and "None" in str(f.type):
            continue
        if isinstance(default, bool) and not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{name}: {f.name} must be true or false, got {value!r}")
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))):
            raise ConfigError(f"{name}: {f.name} must be a number, got {value!r}")
    if cfg.loss not in ("ce", "sampled"):
        raise ConfigError(f"{name}: loss must be 'ce' or 'sampled', got {cfg.loss!r}")
    if cfg.negative_sampling not in ("uniform", "popularity"):
        raise ConfigError(f"{name}: negative_sampling must be 'uniform' or 'popularity', got {cfg.negative_sampling!r}")
    for key in ("dim", "max_len", "batch_size", "n_negatives", "eval_batch_size", "n_heads", "n_blocks", "n_layers"):
        check_int(f"{name}: {key}", getattr(cfg, key, 1), 1)  # the last three: the model's own fields, where it has them
    if cfg.dim % getattr(cfg, "n_heads", 1):
        raise ConfigError(f"{name}: dim ({cfg.dim}) must be divisible by n_heads ({cfg.n_heads})")
    check_int(f"{name}: valid_users (0 = all)", cfg.valid_users, 0)
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"{name}: dropout must lie in [0, 1), got {cfg.dropout!r}")
    check_metric_name(cfg.val_metric, name)
    train_config(cfg)  # raises on a bad training value
    return cfg


def transition_windows(sequences: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Next-item training windows: inputs and targets int64 ``(W, max_len)``, left-padded with 0.

    A sequence with n items has n - 1 transitions (s[t] -> s[t+1]); they are cut from the
    end into windows of `max_len`, so the most recent window has the full context.
    """
    inputs, targets = [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for end in range(len(seq) - 1, 0, -max_len):
            start = max(0, end - max_len)
            inputs.append(seq[start:end])
            targets.append(seq[start + 1 : end + 1])
    return _pad_left(inputs, max_len), _pad_left(targets, max_len)


def item_windows(sequences: list[np.ndarray], max_len: int) -> np.ndarray:
    """Sequences cut from the end into windows of `max_len` items: int64 ``(W, max_len)`` left-padded."""
    out = []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for end in range(len(seq), 0, -max_len):
            out.append(seq[max(0, end - max_len) : end])
    return _pad_left(out, max_len)


def _pad_left(rows: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(rows), length), dtype=np.int64)
    for i, r in enumerate(rows):
        if len(r):
            out[i, length - len(r) :] = r
    return out


def length_bucketed_order(lengths: torch.Tensor, batch_size: int, gen: torch.Generator, group: int = 32) -> torch.Tensor:
    """A random permutation of the rows in which each batch holds windows of similar length.

    Rows are shuffled, cut into groups of `group` batches, sorted by length inside a group, and
    the resulting batches are shuffled, so batches stay random but carry little padding.
    """
    perm = torch.randperm(len(lengths), generator=gen)  # (W,)
    span = group * batch_size
    parts = []
    for i in range(0, len(perm), span):
        chunk = perm[i : i + span]
        parts.append(chunk[torch.argsort(lengths[chunk], stable=True)])
    order = torch.cat(parts)
    batches = list(order.split(batch_size))
    return torch.cat([batches[j] for j in torch.randperm(len(batches), generator=gen).tolist()])


def fit_history(histories: torch.Tensor, length: int) -> torch.Tensor:
    """Last `length` columns of left-padded histories ``(B, L)``, left-padding with 0 when L < length."""
    b, cur = histories.shape
    if cur >= length:
        return histories[:, cur - length :]
    return torch.cat([histories.new_zeros(b, length - cur), histories], dim=1)


def padding_attention_mask(seq: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean attention mask ``(B, 1, L, L)``, True = may attend.

    A query attends to non-padding keys (and, if `causal`, only to keys at or before it).
    Every query may always attend to itself, so rows of padding never become all-masked (NaN).
    """
    b, length = seq.shape
    keys = (seq > 0)[:, None, None, :]  # (B, 1, 1, L)
    eye = torch.eye(length, dtype=torch.bool, device=seq.device)[None, None]  # (1, 1, L, L)
    mask = keys | eye
    if causal:
        mask = mask & torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()[None, None]
    return mask


class TransformerBlock(nn.Module):
    """Pre-LN self-attention block (as in SASRec's reference code) with GELU feed-forward."""

    def __init__(self, dim: int, n_heads: int, dropout: float, ff_mult: int = 4):
        super().__init__()
        if dim % n_heads:
            raise ConfigError(f"dim ({dim}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), Dropout(dropout), nn.Linear(ff_mult * dim, dim))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape  # (B, L, d)
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (t.view(b, length, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, h, L, d/h)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, length, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class Encoder(nn.Module):
    """Holds the item table (row 0 = padding, then items 1..N, then any special tokens)."""

    item_emb: nn.Embedding

    def forward(self, seq: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, d)
        raise NotImplementedError


class TransformerEncoder(Encoder):
    """Token + recency-position embeddings, then `n_blocks` transformer blocks and a final LayerNorm.

    SASRec runs it causally, BERT4Rec bidirectionally with one extra (mask) token; the rest is
    the same model. Positions count back from the most recent item (left padding keeps the last
    column = most recent), so a position embedding means "recency" whatever the history length.
    """

    def __init__(self, n_tokens: int, cfg: Any, causal: bool):
        super().__init__()
        self.causal = causal
        self.item_emb = nn.Embedding(n_tokens, cfg.dim, padding_idx=0)  # row 0 = padding
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.dim)
        self.drop = Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(cfg.dim, cfg.n_heads, cfg.dropout) for _ in range(cfg.n_blocks))
        self.ln = nn.LayerNorm(cfg.dim)
        self.scale = math.sqrt(cfg.dim)
        nn.init.normal_(self.item_emb.weight, std=cfg.dim**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(seq.shape[1], device=seq.device).flip(0)  # seq (B, L) left-padded ids
        x = self.item_emb(seq) * self.scale + self.pos_emb(pos)  # (B, L, d)
        x = self.drop(x) * (seq > 0).unsqueeze(-1)
        mask = padding_attention_mask(seq, causal=self.causal)  # (B, 1, L, L)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x)  # (B, L, d)


class DualEncoder(EmbeddingModel):
    """Shared fit / recommend / item_embeddings for the dual encoders (see the module docstring).

    trim_padding: training batches are grouped by window length and cut to their longest
    window. The cut is exact for the attention encoders (padding keys are masked and positions count
    back from the most recent item), and it saves most of the work when max_len is 50 and the
    median sequence has 6 items; a GRU would see a different amount of padding, so it is off there.
    The grouping is not a no-op: it changes which windows share a batch (on toy data test N@10 .0145
    against .0156 with shuffled batches, dropout 0), so GRU4Rec (shuffled) and SASRec / BERT4Rec
    (grouped) also differ in how their batches are drawn.
    """

    name: ClassVar[str] = "dual_encoder"
    config_cls: ClassVar[type] = DualEncoderConfig
    trim_padding: ClassVar[bool] = True

    def __init__(self, device: str = "auto", seed: int = 0, **params: Any):
        super().__init__(**params, device=device, seed=seed)
        self.cfg = make_config(self.config_cls, self.name, params)
        self.device, self.seed = device, seed

    # ------------------------------------------------------------------ subclass hooks
    def build_encoder(self, n_items: int) -> Encoder:
        raise NotImplementedError

    def training_tensors(self, split: Split) -> dict[str, np.ndarray]:
        """Arrays ``inputs``/``targets`` (W, L); target 0 = no loss at that position."""
        inputs, targets = transition_windows(split.train_sequences, self.cfg.max_len)
        return {"inputs": inputs, "targets": targets}

    def epoch_tensors(self, data: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-epoch transformation of the whole training set (BERT4Rec draws its masks here)."""
        return data

    def encode_histories(self, histories: torch.Tensor) -> torch.Tensor:
        """User vectors ``(B, d)`` from left-padded histories ``(B, L)``: the last position's state."""
        seq = fit_history(histories, self.cfg.max_len)
        return self.encoder_(seq)[:, -1, :]

    # ------------------------------------------------------------------ training
    def fit(self, split: Split, tree: Tree | None = None, tracker: Tracker | None = None) -> "DualEncoder":
        cfg, tracker = self.cfg, tracker or NullTracker()
        if len(split.train_sequences) == 0:
            raise DataError(f"{split.dataset}: no training sequences to fit {self.name}")
        dev = resolve_device(self.device)
        seed_everything(self.seed)
        self.n_items_ = split.n_items
        self.encoder_ = self.build_encoder(split.n_items).to(dev)
        self.device_ = dev
        data = {k: torch.from_numpy(v).to(dev) for k, v in self.training_tensors(split).items()}
        n_rows = len(next(iter(data.values())))
        if n_rows == 0:  # e.g. leave-one-out of 3-item users: 1-item training sequences, nothing to predict
            raise DataError(f"{split.dataset}: no training window for {self.name} (its training sequences are too short)")
        counts = np.bincount(np.concatenate(split.train_sequences), minlength=split.n_items + 1).astype(np.float64)
        counts[0] = 0
        self.log_q_ = None
        if cfg.loss == "sampled" and cfg.negative_sampling == "popularity":
            q = (counts[1:] + 1) / (counts[1:] + 1).sum()
            self.sample_probs_ = torch.tensor(q, dtype=torch.float32, device=dev)  # (N,)
            self.log_q_ = torch.log(self.sample_probs_ * cfg.n_negatives)
        valid = self._valid_subset(split.valid)

        lengths = (next(iter(data.values())) > 0).sum(1).cpu()  # (W,) real items per window

        def batches(epoch: int):
            gen = torch.Generator(device="cpu").manual_seed(self.seed * 100_003 + epoch)
            ep = self.epoch_tensors(data, gen)
            order = length_bucketed_order(lengths, cfg.batch_size, gen) if self.trim_padding else torch.randperm(n_rows, generator=gen)
            order = order.to(dev)
            for i in range(0, n_rows, cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                batch = {k: v[idx] for k, v in ep.items()}
                if self.trim_padding:  # drop columns that are padding in every row (exact, see class doc)
                    first = int(lengths[idx.cpu()].max())
                    batch = {k: v[:, v.shape[1] - first :] for k, v in batch.items()}
                yield batch

        def validate() -> dict[str, float]:
            return self._evaluate(valid, ks=sorted({5, 10, 20, metric_cutoff(cfg.val_metric)}))

        tcfg = train_config(cfg, device=str(dev), seed=self.seed)
        identity = resume_identity(asdict(cfg), ignore=("eval_batch_size",), retriever=self.name, model=type(self).__name__,
                                   n_items=int(split.n_items))
        res = train_loop(self.encoder_, batches, self.step_loss, validate, tcfg, tracker=tracker, identity=identity)
        self.encoder_.eval()
        epoch_s = [h["time/epoch_s"] for h in res.history]
        self.fit_info_ = {
            "train_seconds": res.train_seconds,
            "resumed_seconds": res.resumed_seconds,
            "epochs": float(res.epochs_run),
            "best_epoch": float(res.best_epoch),
            "samples_per_second": res.samples_per_second,
            "epoch_seconds": float(np.mean(epoch_s)) if epoch_s else 0.0,
            "train_windows": float(n_rows),
            "n_params": float(sum(p.numel() for p in self.encoder_.parameters())),
            **{f"valid_{k}": v for k, v in res.best_metrics.items()},
        }
        self.history_ = res.history
        return self

    def _valid_subset(self, valid: EvalSet) -> EvalSet:
        n = self.cfg.valid_users
        if n <= 0 or n >= len(valid):
            return valid
        rows = np.sort(np.random.default_rng(self.seed).choice(len(valid), size=n, replace=False))
        return EvalSet(users=valid.users[rows], histories=valid.histories[rows], truth=[valid.truth[i] for i in rows])

    def _evaluate(self, evalset: EvalSet, ks: list[int]) -> dict[str, float]:
        from seater.metrics import evaluate  # engineer A's module; imported lazily

        pred = self.recommend(evalset.histories, max(ks))
        return {k: float(v) for k, v in evaluate(pred, evalset.truth, ks).items()}

    def step_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.encoder_(batch["inputs"])  # (B, L, d)
        targets = batch["targets"]  # (B, L), 0 = no loss
        keep = targets > 0
        h, y = hidden[keep], targets[keep]  # (P, d), (P,)
        table = self.encoder_.item_emb.weight[1 : self.n_items_ + 1]  # (N, d)
        if self.cfg.loss == "ce":
            return F.cross_entropy(h @ table.T, y - 1)  # (P, N) logits
        return self._sampled_softmax(h, y, table)

    def _sampled_softmax(self, h: torch.Tensor, y: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Softmax over [positive, M shared negatives]; logQ-corrected when sampling by popularity."""
        m = self.cfg.n_negatives
        if self.log_q_ is None:
            neg = torch.randint(1, self.n_items_ + 1, (m,), device=h.device)  # (M,)
        else:
            neg = torch.multinomial(self.sample_probs_, m, replacement=True) + 1
        pos_logit = (h * table[y - 1]).sum(-1, keepdim=True)  # (P, 1)
        neg_logit = h @ table[neg - 1].T  # (P, M)
        if self.log_q_ is not None:
            pos_logit = pos_logit - self.log_q_[y - 1].unsqueeze(1)
            neg_logit = neg_logit - self.log_q_[neg - 1].unsqueeze(0)
        neg_logit = neg_logit.masked_fill(neg.unsqueeze(0) == y.unsqueeze(1), float("-inf"))  # accidental hits
        logits = torch.cat([pos_logit, neg_logit], dim=1)  # (P, 1 + M)
        return F.cross_entropy(logits, torch.zeros(len(y), dtype=torch.long, device=h.device))

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "encoder_"):
            raise ConfigError(f"{self.name}: call fit() before recommend() or item_embeddings()")

    @torch.no_grad()
    def user_embeddings(self, histories: np.ndarray) -> np.ndarray:
        """float32 ``(B, d)`` user vectors for left-padded histories ``(B, L)``."""
        self._check_fitted()
        was_training = self.encoder_.training
        self.encoder_.eval()
        hist = torch.as_tensor(check_histories(histories, self.n_items_, f"{self.name}.user_embeddings"), device=self.device_)
        if len(hist) == 0:
            self.encoder_.train(was_training)
            return np.zeros((0, self.cfg.dim), dtype=np.float32)
        out = torch.cat([self.encode_histories(hist[i : i + self.cfg.eval_batch_size]) for i in range(0, len(hist), self.cfg.eval_batch_size)])
        self.encoder_.train(was_training)
        return out.float().cpu().numpy()

    @torch.no_grad()
    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        self._check_fitted()
        histories = check_histories(histories, self.n_items_, f"{self.name}.recommend")
        k = check_topk(k, f"{self.name}.recommend")
        was_training = self.encoder_.training
        self.encoder_.eval()
        table = self.encoder_.item_emb.weight[1 : self.n_items_ + 1].float()  # (N, d)
        hist = torch.as_tensor(histories, device=self.device_)
        out = np.zeros((len(histories), k), dtype=np.int64)
        for i in range(0, len(hist), self.cfg.eval_batch_size):
            hb = hist[i : i + self.cfg.eval_batch_size]  # (b, L)
            users = self.encode_histories(hb).float()  # (b, d)
            _, ids = topk_inner_product(users, table, k, exclude=hb if self.cfg.exclude_history else None)
            out[i : i + len(hb)] = ids.cpu().numpy()
        self.encoder_.train(was_training)
        return out

    def item_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.encoder_.item_emb.weight[1 : self.n_items_ + 1].detach().float().cpu().numpy().astype(np.float32)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.cfg)


def registered_defaults(config_cls: type) -> dict[str, Any]:
    """The registration dict: every field of the model's config with its default (one place)."""
    return asdict(config_cls())


__all__ = [
    "DualEncoder",
    "DualEncoderConfig",
    "Encoder",
    "TransformerBlock",
    "fit_history",
    "item_windows",
    "padding_attention_mask",
    "registered_defaults",
    "transition_windows",
]
