"""`SEATERRetriever`: SEATER behind the `Retriever` contract, registered as ``seater``.

The harness builds a tree (any builder, any k) from item embeddings and passes it to `fit`.
Training uses `seater.training.train_loop` on ``split.train`` (explicit last-L -> next-item
samples, pre-tensorised on the device, shuffled per epoch from ``seed`` and the epoch number);
validation runs the constrained beam search on a fixed subsample of ``split.valid``.

Ablations: ``use_align=False`` (w/o alignment), ``use_rank=False`` (w/o ranking), both False
(generation loss only). ``init_from_embeddings=True`` (ours, not the paper's) starts the token
table from the item embeddings the tree was built from (`SEATER.init_tokens`).
``recommend(h, k)`` decodes with beam ``max(beam_size, k)``; ``recommend_exact(h, k)`` scores
every item's full identifier (quality lost by the beam).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from seater.data.types import Split
from seater.device import resolve_device
from seater.errors import ConfigError, DataError
from seater.model.config import SEATERConfig
from seater.model.seater import SEATER
from seater.retriever import RETRIEVERS, Retriever, check_histories, check_topk
from seater.tracking import NullTracker, Tracker
from seater.trees.checks import check_int
from seater.trees.tree import Tree

DEFAULTS: dict[str, Any] = {
    # network (SEATER paper)
    "d_model": 64,
    "n_heads": 2,
    "d_ff": 256,
    "dropout": 0.2,
    "enc_layers": 1,
    "dec_layers": 1,
    # losses (DESIGN.md); use_* switch them off for the ablation rows
    "lambda_align": 0.05,
    "lambda_rank": 0.05,
    "tau": 0.2,
    "q": 4,
    "beta": 0.001,
    "use_align": True,
    "use_rank": True,
    "rank_item_token": False,  # True: ranking pools root .. item, not root .. parent (SEATERConfig)
    # ours, not the paper's: item tokens start from the tree's item embeddings, node tokens from
    # their items' mean (needs embeddings of width d_model); off = the paper's random init
    "init_from_embeddings": False,
    # decoding
    "beam_size": 50,
    # beam | greedy | sample. greedy follows the single best child per level: one item per user (the
    # other K - 1 slots stay empty, so its recall@K is its recall@1). sample draws each level's
    # beam (Gumbel top-W); the draws follow one generator per recommend call, so they depend on
    # eval_batch_size as well as on the seed
    "decode_mode": "beam",
    "temperature": 1.0,  # for decode_mode = sample
    "eval_batch_size": 256,  # users per beam-search call
    # training (Adam, lr 1e-3, L2 1e-5, patience 4 in the paper)
    "batch_size": 256,
    "lr": 1e-3,
    "lr_schedule": "constant",  # or "cosine" (ours, not the paper's): decay to 0 over `epochs`
    "weight_decay": 1e-5,
    "ema": 0.0,  # ours: > 0 validates and keeps a moving average of the weights (TrainConfig.ema)
    "epochs": 50,
    "patience": 4,
    "grad_clip": 5.0,
    "val_users": 2000,  # validation subsample (beam search is the costly part); 0 = all
    "val_metric": "ndcg@10",
    "amp": True,  # bf16 autocast on CUDA only
    "checkpoint_dir": None,
    "progress": False,
}


@RETRIEVERS.register("seater", defaults=DEFAULTS, added=("init_from_embeddings", "lr_schedule", "ema", "rank_item_token"))
class SEATERRetriever(Retriever):
    """SEATER: generative retrieval of tree identifiers with alignment and ranking losses."""

    needs_tree = True
    uses_item_embeddings = True

    def __init__(self, device: str = "auto", seed: int = 0, **params: Any):
        unknown = sorted(set(params) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} for retriever 'seater'; known: {', '.join(sorted(DEFAULTS))}")
        super().__init__(device=device, seed=seed, **{**DEFAULTS, **params})
        self.p = {**DEFAULTS, **params}
        self.device, self.seed = device, seed
        self._check_params()

    _MODEL_KEYS = ("d_model", "n_heads", "d_ff", "dropout", "enc_layers", "dec_layers", "lambda_align", "lambda_rank", "tau", "q", "beta", "use_align", "use_rank", "rank_item_token")

    def _check_params(self) -> None:
        """Every parameter checked at construction, so a suite with a bad value fails when it loads, not after hours of other cells."""
        from seater.metrics import check_metric_name
        from seater.training import train_config

        p = self.p
        SEATERConfig(n_items=1, n_tokens=2, depth=1, **{k: p[k] for k in self._MODEL_KEYS})  # raises on a bad model value
        train_config(p)  # raises on a bad training value
        check_metric_name(p["val_metric"], "seater")
        if p["decode_mode"] not in ("beam", "greedy", "sample"):
            raise ConfigError(f"seater decode_mode must be beam, greedy or sample, got {p['decode_mode']!r}")
        for key in ("beam_size", "batch_size", "eval_batch_size", "val_users"):
            check_int(f"seater {key}", p[key], 0 if key == "val_users" else 1)
        if not p["temperature"] > 0:
            raise ConfigError(f"seater temperature must be > 0, got {p['temperature']!r}")

    def _config(self, split: Split, tree: Tree) -> SEATERConfig:
        return SEATERConfig(n_items=tree.n_items, n_tokens=tree.n_tokens, depth=tree.depth, max_history=split.max_history, **{k: self.p[k] for k in self._MODEL_KEYS})

    def fit(
        self, split: Split, tree: Tree | None = None, tracker: Tracker | None = None, item_embeddings: np.ndarray | None = None
    ) -> "SEATERRetriever":
        from seater.metrics import evaluate, metric_cutoff
        from seater.training import resume_identity, train_config, train_loop

        if tree is None:
            raise ConfigError("retriever 'seater' needs a tree: pass tree= (the harness builds one from item embeddings)")
        if tree.n_items != split.n_items:
            raise DataError(f"tree has {tree.n_items} items but the split has {split.n_items}")
        if len(split.train) == 0:
            raise DataError("split.train is empty: nothing to train SEATER on")
        init = self._init_embeddings(item_embeddings, tree) if self.p["init_from_embeddings"] else None
        tracker = tracker or NullTracker()
        dev = resolve_device(self.device)
        torch.manual_seed(self.seed)
        self.tree_ = tree
        self.config_ = self._config(split, tree)
        self.max_history_ = split.max_history
        self.model_ = SEATER(self.config_, tree).to(dev)
        if init is not None:
            self.model_.init_tokens(init)  # moved to the model's device and dtype there
        self.device_ = dev

        hist = torch.as_tensor(split.train.histories, dtype=torch.long, device=dev)  # (S, L)
        tgt = torch.as_tensor(split.train.targets, dtype=torch.long, device=dev)  # (S,)
        keep = tgt > 0
        hist, tgt = hist[keep], tgt[keep]
        bs = int(self.p["batch_size"])

        def batches(epoch: int):
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(tgt), generator=g).to(dev)
            for s in range(0, len(perm), bs):
                idx = perm[s : s + bs]
                yield hist[idx], tgt[idx]

        def step_loss(batch):
            return self.model_.loss(*batch)

        valid = split.valid
        rng = np.random.default_rng(self.seed)
        n_val = len(valid) if self.p["val_users"] == 0 else min(len(valid), int(self.p["val_users"]))  # 0 = all, as elsewhere
        if n_val == 0:
            raise DataError("the split has no validation users: SEATER selects its epoch on them")
        val_rows = np.sort(rng.choice(len(valid), n_val, replace=False))
        val_k = metric_cutoff(self.p["val_metric"])  # the cut-off early stopping asks for, not only 10

        def validate() -> dict[str, float]:
            pred = self.recommend(valid.histories[val_rows], max(10, val_k))
            return evaluate(pred, [valid.truth[i] for i in val_rows], ks=sorted({10, val_k}))

        cfg = train_config(self.p, batch_size=bs, device=str(dev), seed=self.seed)
        tracker.log_params({f"seater/{k}": v for k, v in asdict(self.config_).items()})
        t0 = time.perf_counter()
        identity = resume_identity(self.p, ignore=("eval_batch_size",), retriever="seater", tree=tree.hash())
        res = train_loop(self.model_, batches, step_loss, validate, cfg, tracker, identity)
        self.train_result_ = res
        self.fit_info_ = {
            "train_seconds": time.perf_counter() - t0 + res.resumed_seconds,
            "resumed_seconds": res.resumed_seconds,
            "epochs": float(res.epochs_run),
            "best_epoch": float(res.best_epoch),
            "samples_per_second": float(res.samples_per_second),
            "n_params": float(sum(p.numel() for p in self.model_.parameters())),
            "tree_depth": float(tree.depth),
            **{f"best_valid/{k}": float(v) for k, v in res.best_metrics.items()},
        }
        self.model_.eval()
        return self

    def _init_embeddings(self, x: np.ndarray | None, tree: Tree) -> torch.Tensor:
        if x is None:
            raise ConfigError(
                "retriever 'seater' with init_from_embeddings=true needs the item embeddings the tree was built "
                "from: pass item_embeddings= to fit (the harness does)"
            )
        x = np.asarray(x)
        want = (tree.n_items, int(self.p["d_model"]))
        if x.shape != want:
            raise ConfigError(f"init_from_embeddings: item embeddings have shape {x.shape}, need (n_items, d_model) = {want}")
        if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
            raise DataError("init_from_embeddings: item embeddings must be finite floats (found NaN, inf or a non-float dtype)")
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def _histories(self, histories: np.ndarray) -> torch.Tensor:
        h = check_histories(histories, self.tree_.n_items, "seater")
        L = self.max_history_
        if h.shape[1] > L:
            h = h[:, -L:]  # keep the most recent items
        elif h.shape[1] < L:
            h = np.pad(h, ((0, 0), (L - h.shape[1], 0)))
        return torch.as_tensor(h, dtype=torch.long, device=self.device_)

    @property
    def beam_size(self) -> int:
        """Beams per user in `recommend` (at least the k asked for); the harness's `beam_sweep` sets it."""
        return int(self.p["beam_size"])

    @beam_size.setter
    def beam_size(self, width: int) -> None:
        if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
            raise ConfigError(f"seater parameter beam_size must be a positive integer, got {width!r}")
        self.p["beam_size"] = int(width)

    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise ConfigError("SEATERRetriever.recommend called before fit")
        k = check_topk(k, "seater.recommend")
        h = self._histories(histories)
        self.model_.eval()
        beam = max(int(self.p["beam_size"]), k)
        bs = int(self.p["eval_batch_size"])
        out = np.zeros((len(h), k), dtype=np.int64)
        # sampling draws from a generator seeded by the model's seed: the same call gives the same lists
        gen = torch.Generator(device=h.device).manual_seed(self.seed) if self.p["decode_mode"] == "sample" else None
        for s in range(0, len(h), bs):
            items, _ = self.model_.recommend(h[s : s + bs], beam_size=beam, topk=k, mode=self.p["decode_mode"],
                                             temperature=self.p["temperature"], generator=gen)
            out[s : s + bs, : items.shape[1]] = items.cpu().numpy()
        return out

    @torch.no_grad()
    def recommend_exact(self, histories: np.ndarray, k: int, users_per_call: int = 32) -> np.ndarray:
        """Top-k by the exact log-probability of every item's identifier (no beam pruning)."""
        if not hasattr(self, "model_"):
            raise ConfigError("SEATERRetriever.recommend_exact called before fit")
        k = check_topk(k, "seater.recommend_exact")
        h = self._histories(histories)
        self.model_.eval()
        n = self.tree_.n_items
        out = np.zeros((len(h), k), dtype=np.int64)
        for s in range(0, len(h), users_per_call):
            lp = self.model_.catalog_log_prob(h[s : s + users_per_call])  # (b, n)
            out[s : s + len(lp), : min(k, n)] = (lp.topk(min(k, n), dim=1).indices + 1).cpu().numpy()  # 0-padded, as recommend
        return out
