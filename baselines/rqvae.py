"""RQ-VAE semantic IDs (TIGER) and the `rqvae` identifier builder.

An MLP auto-encoder whose latent is quantised by a residual vector quantiser
(`vector_quantize_pytorch.ResidualVQ`): item content vector -> encoder 512-256-128 -> latent 32
-> 3 residual levels x k codes -> decoder (the encoder mirrored) -> reconstruction. The three code
indices of an item are its semantic ID; items that share all three get a collision code appended
(0, 1, 2, ... in item-id order, 0 for items without a collision), so every identifier is unique.

Usage::

    from seater.trees import BUILDERS
    tree = BUILDERS.get("rqvae").factory(item_vectors, k=256, seed=0, epochs=200)
    tree.codes            # (n_items, 4): 3 RQ-VAE codes + collision code
    tree.build_info       # codebook usage per level, collision rate, recon loss curve ...

Choices (documented departures from the TIGER paper):

- Codebooks are updated by exponential moving averages of the assigned residuals (the library's
  default, as in VQ-VAE-2) instead of by the codebook gradient term; the commitment term
  beta * ||r - sg[e]||^2 with beta = 0.25 trains the encoder. Gradients pass the quantiser by the
  straight-through estimator, as in the paper.
- k-means initialisation: the codebooks are initialised by k-means on the residuals of the
  *whole* catalogue before the first step (not on the first mini-batch).
- Dead codes: a code whose EMA cluster size falls under `dead_code_threshold` is replaced by a
  random residual of the current batch (`threshold_ema_dead_code`).
- Collision levels: if more than k items share one 3-code prefix, one collision code cannot tell
  them apart; the builder then appends as many collision levels as needed (base-k digits of the
  item's rank in its group), recorded as ``collision_levels`` in `build_info`. Every item gets
  the same number of codes, so the tree has a fixed depth.
- Optimiser: AdamW, lr 1e-3, 200 epochs by default (the paper trains 20k epochs with Adagrad at lr 0.4 on a
  GPU); `lr`, `weight_decay` and `epochs` are parameters.
- Inputs are standardised per column (zero mean, unit variance; constant columns left at 0)
  before training, so multi-hot attributes and dense embeddings work with one learning rate.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from seater.device import check_device_name, resolve_device
from seater.errors import ConfigError, TreeBuildError
from seater.trees import BUILDERS
from seater.trees.checks import check_embeddings
from seater.trees.tree import Tree


MAX_WIDTH = 1 << 16  # an MLP width beyond this is a typo, not a model (1e30 made torch fail deep inside)


@dataclass
class RQVAEConfig:
    hidden: tuple[int, ...] = (512, 256, 128)  # encoder MLP widths (TIGER); decoder mirrors them
    latent_dim: int = 32  # dimension of the quantised latent (TIGER)
    n_levels: int = 3  # residual quantisation levels (TIGER: 3)
    codebook_size: int = 256  # codes per level (TIGER: 256); the builder sets it to the tree's k
    beta: float = 0.25  # commitment weight (TIGER)
    epochs: int = 200  # passes over the catalogue (TIGER trains far longer, 20k epochs, on GPU)
    batch_size: int = 1024  # items per step (TIGER: 1024)
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    ema_decay: float = 0.8  # EMA decay of the codebook updates (library default; 0.99 collapsed codes in tests)
    kmeans_iters: int = 20  # k-means iterations of the codebook initialisation
    dead_code_threshold: float = 2.0  # EMA cluster size under which a code is re-seeded
    standardize: bool = True  # z-score input columns before training
    device: str = "auto"  # "auto" = CUDA when present

    def __post_init__(self) -> None:
        if not isinstance(self.hidden, (list, tuple)) or not self.hidden or not all(
            isinstance(h, (int, np.integer)) and not isinstance(h, bool) and 1 <= h <= MAX_WIDTH for h in self.hidden
        ):
            raise ConfigError(f"rqvae hidden must be a non-empty list of integer widths in 1..{MAX_WIDTH}, got {self.hidden!r}")
        self.hidden = tuple(int(h) for h in self.hidden)
        for name in ("latent_dim", "n_levels", "codebook_size", "epochs", "batch_size", "kmeans_iters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"rqvae parameter {name} must be a positive integer, got {value!r}")
        if self.codebook_size < 2:
            raise ConfigError(f"rqvae codebook_size must be >= 2, got {self.codebook_size}")
        if (not 0 <= self.beta < math.inf or not 0 < self.lr < math.inf or not 0 <= self.weight_decay < math.inf
                or not 0 < self.ema_decay < 1 or not 0 <= self.dead_code_threshold < math.inf):
            raise ConfigError(
                f"rqvae needs finite beta >= 0, lr > 0, weight_decay >= 0, dead_code_threshold >= 0 and 0 < ema_decay < 1; got "
                f"beta={self.beta}, lr={self.lr}, weight_decay={self.weight_decay}, ema_decay={self.ema_decay}, "
                f"dead_code_threshold={self.dead_code_threshold}"
            )
        check_device_name(self.device)


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    """MLP encoder -> ResidualVQ -> MLP decoder."""

    def __init__(self, in_dim: int, cfg: RQVAEConfig):
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        widths = [in_dim, *cfg.hidden, cfg.latent_dim]
        self.encoder = _mlp(widths)
        self.decoder = _mlp(widths[::-1])
        self.rvq = ResidualVQ(
            dim=cfg.latent_dim,
            num_quantizers=cfg.n_levels,
            codebook_size=cfg.codebook_size,
            commitment_weight=cfg.beta,
            decay=cfg.ema_decay,
            kmeans_init=True,
            kmeans_iters=cfg.kmeans_iters,
            threshold_ema_dead_code=cfg.dead_code_threshold,
            rotation_trick=False,  # plain straight-through estimator, as in the paper
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, in_dim) -> reconstruction (B, in_dim), codes (B, n_levels), commit loss per level (n_levels,)."""
        z = self.encoder(x)  # (B, latent)
        zq, codes, commit = self.rvq(z)  # (B, latent), (B, n_levels), (n_levels,)
        return self.decoder(zq), codes, commit

    @torch.no_grad()
    def encode(self, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Codes (N, n_levels) of every row, in eval mode (no codebook updates)."""
        was = self.training
        self.eval()
        out = torch.cat([self.rvq(self.encoder(x[i : i + batch_size]))[1] for i in range(0, len(x), batch_size)])
        self.train(was)
        return out


@dataclass
class SemanticIDResult:
    codes: np.ndarray  # int64 (n_items, n_levels): RQ-VAE codes before the collision code
    recon_loss: list[float] = field(default_factory=list)  # mean reconstruction MSE per epoch
    commit_loss: list[float] = field(default_factory=list)  # mean summed commitment loss per epoch
    seconds: float = 0.0
    device: str = ""  # where it trained ("auto" resolved)


def standardize(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance, constant ones to 0 (float32 out).

    In float64: float32 sums overflow for entries near 1e38, and their rounding gave a constant
    column a spread of ~1e-8 (its entries then became +-1, not 0). A float32 column that varies at
    all spreads by at least one ulp, ~6e-8 of its size, far above the 1e-9 cut here.
    """
    x64 = x.astype(np.float64)
    mu, sd = x64.mean(axis=0), x64.std(axis=0)
    varies = sd > 1e-9 * np.abs(mu)
    return np.where(varies, (x64 - mu) / np.where(varies, sd, 1.0), 0.0).astype(np.float32)


def train_rqvae(x: np.ndarray, cfg: RQVAEConfig, seed: int = 0) -> SemanticIDResult:
    """Train an RQ-VAE on `x` (N, d) float32 and return every row's codes and the loss curves.

    Deterministic given `seed` on CPU (the global torch RNG is forked, not disturbed).
    """
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    if cfg.standardize:
        x = standardize(x)
    data = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    n = len(data)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = RQVAE(x.shape[1], cfg).to(device)
        with torch.no_grad():  # k-means initialisation of every level on the whole catalogue
            model.train()
            model.rvq(model.encoder(data))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        recon_curve, commit_curve = [], []
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=gen).to(device)
            rec_sum = com_sum = 0.0
            for i in range(0, n, cfg.batch_size):
                xb = data[perm[i : i + cfg.batch_size]]  # (B, d)
                recon, _, commit = model(xb)
                rec = torch.mean((recon - xb) ** 2)
                loss = rec + commit.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                rec_sum += rec.item() * len(xb)
                com_sum += commit.sum().item() * len(xb)
            recon_curve.append(rec_sum / n)
            commit_curve.append(com_sum / n)
            if not np.isfinite(recon_curve[-1]):
                raise TreeBuildError(f"rqvae training diverged (reconstruction loss {recon_curve[-1]}); lower lr")
        codes = model.encode(data).cpu().numpy().astype(np.int64)
    return SemanticIDResult(codes, recon_curve, commit_curve, time.perf_counter() - t0, str(device))


def add_collision_codes(codes: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Append collision levels so that no two rows are equal.

    Rows sharing the same prefix get 0, 1, 2, ... in row order (item-id order); a unique row gets 0.
    One level suffices while no group exceeds k rows; otherwise ``ceil(log_k(max group))`` levels
    hold the rank in base k (most significant digit first). Returns (codes (N, depth + levels), levels).
    """
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")  # rows grouped by prefix, item order within a group
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - np.repeat(starts, counts)
    levels = 1
    while k**levels < counts.max():
        levels += 1
    digits = [(rank // k ** (levels - 1 - j)) % k for j in range(levels)]
    return np.concatenate([codes, np.stack(digits, axis=1)], axis=1), levels


def codebook_usage(codes: np.ndarray, k: int) -> list[float]:
    """Fraction of the k codes used by at least one item, per level."""
    return [float(len(np.unique(codes[:, j])) / k) for j in range(codes.shape[1])]


def collision_rate(codes: np.ndarray) -> float:
    """Fraction of items whose code row is shared with at least one other item."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return float((counts[inverse.reshape(-1)] > 1).mean())


RQVAE_DEFAULTS = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(RQVAEConfig()).items() if k != "codebook_size"}


def check_params(params: dict) -> None:
    """Range checks of the builder's parameters (the codebook size is the tree's k, checked with it)."""
    RQVAEConfig(**params)


@BUILDERS.register("rqvae", defaults=RQVAE_DEFAULTS, check=check_params)
def build_rqvae(embeddings: np.ndarray, k: int = 256, seed: int = 0, **params) -> Tree:
    """TIGER semantic IDs: RQ-VAE codes (k = codebook size) + collision code(s), as a fixed-depth tree."""
    x = check_embeddings(embeddings, k)
    unknown = sorted(set(params) - set(RQVAE_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)} for tree builder 'rqvae'; known: {', '.join(sorted(RQVAE_DEFAULTS))}")
    cfg = RQVAEConfig(**{**RQVAE_DEFAULTS, **params, "codebook_size": int(k)})
    result = train_rqvae(x, cfg, seed=seed)
    t1 = time.perf_counter()
    codes, levels = add_collision_codes(result.codes, k)
    _, counts = np.unique(result.codes, axis=0, return_counts=True)
    info = {
        "builder": "rqvae",
        "params": {**{key: (list(v) if isinstance(v, tuple) else v) for key, v in asdict(cfg).items()}, "k": int(k), "seed": int(seed)},
        "level_seconds": [result.seconds, time.perf_counter() - t1],  # RQ-VAE training, collision codes
        "seconds": result.seconds + time.perf_counter() - t1,
        "device": result.device,
        "codebook_usage": codebook_usage(result.codes, k),  # per RQ level, fraction of k codes used
        "collision_rate": collision_rate(result.codes),  # before the collision code
        "n_distinct_prefixes": int(len(counts)),
        "max_collision_group": int(counts.max()),
        "collision_levels": int(levels),
        "recon_loss": [float(v) for v in result.recon_loss],  # per epoch
        "commit_loss": [float(v) for v in result.commit_loss],  # per epoch
        "final_recon_loss": float(result.recon_loss[-1]),
    }
    return Tree(codes, k, info)
