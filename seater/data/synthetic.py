"""Seeded synthetic data with planted structure, for tests, benchmarks and smoke runs.

Two generators share one Gaussian-mixture item space:

`synthetic_embeddings(n_items, dim, n_clusters, seed)`
    Item vectors for tree-builder benchmarks: a two-level mixture (super-clusters holding
    clusters) with log-normal cluster sizes and per-cluster, per-dimension spreads, so
    clusters overlap and differ in size and shape ("not completely random but still
    challenging", as faiss' SyntheticDataset puts it). Written in place chunk by chunk, so
    10M x 64 needs little more memory than the output (n * dim * 4 bytes = 2.4 GiB).

`make_synthetic(n_users, n_items, ...)`
    Interaction sequences on top of that item space. Items of a cluster are laid on a
    chain ordered along a random direction of the latent space. Each user has 1-4 interest
    slots, each drawn by cluster size (with replacement, so two slots may hold one cluster);
    at every step the user either stays in the current cluster and moves 1-4 places along its
    chain (a strong, learnable next-item signal), switches slot (15% of steps, to a slot drawn
    among the others modulo the user's count, so with 2 or 3 slots a third of the switches stay
    put; the cluster's popular head is entered either way), or, rarely, clicks a globally
    popular item (noise). A sequential model therefore beats most-popular by a wide margin, and
    trees built from ``extra["item_latent"]`` can recover the clusters. (The slot draws stay as
    they are: every test, suite and committed quick-suite figure is built on this data.)
"""

from __future__ import annotations

import inspect

import numpy as np

from seater.data.interactions import Interactions
from seater.errors import ConfigError

_CHUNK = 1 << 16  # rows generated at once; fixed so results do not depend on memory
MAX_INTERACTIONS = 10**8  # make_synthetic's limit on n_users * mean_length
MAX_MEAN_LENGTH = 100_000  # one generation step per position: longer means take minutes
_BYTES_PER_INTERACTION = 80  # peak memory of make_synthetic, measured: 24-88 bytes


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _seed(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


def _default_clusters(n_items: int) -> int:
    return max(1, min(n_items, int(round(np.sqrt(n_items)))))


def _mixture(n_items: int, dim: int, n_clusters: int, rng: np.random.Generator, noise: str = "gaussian"):
    """Items of a two-level mixture (Gaussian, or variance-matched uniform boxes: 4x faster).

    Returns (x float32 (n_items, dim), cluster int64 (n_items,), super-cluster of each
    cluster int64 (n_clusters,)).
    """
    if noise not in ("gaussian", "uniform"):
        raise ConfigError(f"noise must be 'gaussian' or 'uniform', got {noise!r}")
    n_super = max(1, int(round(np.sqrt(n_clusters))))
    super_centers = rng.standard_normal((n_super, dim))
    cluster_super = rng.integers(0, n_super, size=n_clusters)
    centers = super_centers[cluster_super] + 0.6 * rng.standard_normal((n_clusters, dim))
    # elliptical clusters of varied overall spread
    scales = rng.uniform(0.1, 0.45, size=(n_clusters, 1)) * rng.uniform(0.5, 1.5, size=(n_clusters, dim))
    sizes = rng.multinomial(n_items, rng.dirichlet(np.full(n_clusters, 1.0)) if n_clusters > 1 else [1.0])
    cluster = rng.permutation(np.repeat(np.arange(n_clusters, dtype=np.int64), sizes))
    if noise == "uniform":
        scales = scales * np.sqrt(12.0)  # U(-0.5, 0.5) has variance 1/12
    centers32, scales32 = centers.astype(np.float32), scales.astype(np.float32)
    x = np.empty((n_items, dim), dtype=np.float32)
    for a in range(0, n_items, _CHUNK):  # written in place, chunks small enough to stay in cache
        b = min(n_items, a + _CHUNK)
        c = cluster[a:b]
        block = x[a:b]
        if noise == "gaussian":
            rng.standard_normal(out=block, dtype=np.float32)
        else:
            rng.random(out=block, dtype=np.float32)
            block -= 0.5
        block *= scales32[c]
        block += centers32[c]
    return x, cluster, cluster_super.astype(np.int64)


def synthetic_embeddings(
    n_items: int, dim: int = 64, n_clusters: int | None = None, seed: int = 0, noise: str = "gaussian"
) -> np.ndarray:
    """Clustered item embeddings, float32 ``(n_items, dim)``; row i is item i+1.

    n_clusters defaults to round(sqrt(n_items)); cluster sizes are Dirichlet(1) draws (from a
    handful of items to several times the mean), spreads vary per cluster and per dimension.
    ``noise="uniform"`` replaces each cluster's Gaussian by a box of the same per-dimension
    variance: the noise is several times cheaper to draw (for 10M-item speed runs), and in
    64 dims distances behave alike. Deterministic given `seed` (a non-negative integer) and `noise`.
    """
    n_items = _positive_int("n_items", n_items)
    dim = _positive_int("dim", dim)
    n_clusters = _default_clusters(n_items) if n_clusters is None else _positive_int("n_clusters", n_clusters)
    x, _, _ = _mixture(n_items, dim, min(n_clusters, n_items), np.random.default_rng(_seed(seed)), noise)
    return x


def make_synthetic(
    n_users: int,
    n_items: int,
    n_clusters: int | None = None,
    mean_length: float = 12,
    seed: int = 0,
    name: str = "synthetic",
    attributes: bool = True,
    latent_dim: int = 32,
) -> Interactions:
    """Interaction sequences with planted cluster and sequential structure (module docstring).

    Sequence lengths are 3 + NegativeBinomial(2) with mean `mean_length` (so every user
    survives leave-one-out), capped at 10 * mean_length. ``extra`` holds
    ``item_cluster`` int64 (n_items,) and ``item_latent`` float32 (n_items, latent_dim),
    row i = item i+1. With `attributes`, each item has two attribute ids: its super-cluster
    (a coarse category) and its cluster (a fine one), as S3-Rec's item2attributes.
    `seed` is a non-negative integer; mean_length is at most `MAX_MEAN_LENGTH` and
    n_users * mean_length at most `MAX_INTERACTIONS` (about 80 bytes each while generating).
    """
    n_users, n_items, n_clusters, mean_length, seed, latent_dim = _checked(n_users, n_items, n_clusters, mean_length, seed, latent_dim)
    rng = np.random.default_rng(seed)

    latent, cluster, cluster_super = _mixture(n_items, latent_dim, n_clusters, rng)
    # chain of each cluster: its items sorted along a random direction of the latent space
    direction = rng.standard_normal((n_clusters, latent.shape[1])).astype(np.float32)
    proj = np.einsum("nd,nd->n", latent, direction[cluster])
    chain = np.lexsort((proj, cluster))  # item indices grouped by cluster, in chain order
    sizes = np.bincount(cluster, minlength=n_clusters)
    start = np.cumsum(sizes) - sizes
    pop_order = rng.permutation(n_items)  # global popularity ranking used for noise clicks

    # sequence lengths and users' interest clusters (size-weighted, so never an empty cluster)
    extra_len = mean_length - 3
    lengths = 3 + (rng.negative_binomial(2, 2 / (2 + extra_len), size=n_users) if extra_len > 0 else np.zeros(n_users, np.int64))
    lengths = np.minimum(lengths, max(3, int(10 * mean_length))).astype(np.int64)
    m_max = 4
    n_interest = np.minimum(1 + rng.poisson(1.0, size=n_users), m_max)
    interest = rng.choice(n_clusters, size=(n_users, m_max), p=sizes / n_items)

    t_max = int(lengths.max())
    seq = np.empty((n_users, t_max), dtype=np.int64)
    users = np.arange(n_users)
    slot = np.zeros(n_users, dtype=np.int64)
    cur = interest[:, 0]
    pos = np.floor(sizes[cur] * rng.random(n_users) ** 2).astype(np.int64)
    for t in range(t_max):
        if t > 0:
            u = rng.random(n_users)
            switch = (u < 0.15) & (n_interest > 1)
            # another interest cluster of the same user, entered near its popular head
            new_slot = (slot + rng.integers(1, m_max, size=n_users)) % n_interest
            slot = np.where(switch, new_slot, slot)
            cur = interest[users, slot]
            step = np.minimum(rng.geometric(0.5, size=n_users), 4)
            head = np.floor(sizes[cur] * rng.random(n_users) ** 2).astype(np.int64)
            pos = np.where(switch, head, (pos + step) % sizes[cur])
        item = chain[start[cur] + pos]
        noise = rng.random(n_users) < 0.08
        if noise.any():
            item = np.where(noise, pop_order[np.floor(n_items * rng.random(n_users) ** 3).astype(np.int64)], item)
        seq[:, t] = item + 1

    mask = np.arange(t_max)[None, :] < lengths[:, None]
    flat = seq[mask]
    sequences = np.split(flat, np.cumsum(lengths)[:-1])

    item_attributes = None
    if attributes:
        n_super = int(cluster_super.max()) + 1
        attr = np.stack([1 + cluster_super[cluster], 1 + n_super + cluster], axis=1)
        item_attributes = [np.zeros(0, dtype=np.int64)] + list(attr)

    item_ids = np.arange(n_items + 1, dtype=np.int64)
    item_ids[0] = -1
    return Interactions(
        sequences=sequences,
        n_items=n_items,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        item_ids=item_ids,
        item_attributes=item_attributes,
        name=name,
        extra={"item_cluster": cluster, "item_latent": latent, "seed": int(seed)},
    )


def _checked(n_users, n_items, n_clusters, mean_length, seed, latent_dim):
    """`make_synthetic`'s size arguments checked and normalised (one clear error each)."""
    n_users = _positive_int("n_users", n_users)
    n_items = _positive_int("n_items", n_items)
    n_clusters = _default_clusters(n_items) if n_clusters is None else min(_positive_int("n_clusters", n_clusters), n_items)
    if isinstance(mean_length, bool) or not isinstance(mean_length, (int, float, np.number)) or not (np.isfinite(mean_length) and mean_length >= 3):
        raise ConfigError(f"mean_length must be a finite number >= 3 (every user needs a train, a valid and a test item), got {mean_length!r}")
    total = n_users * mean_length
    if total > MAX_INTERACTIONS:
        raise ConfigError(f"n_users * mean_length = {total:.3g} interactions, above the limit of {MAX_INTERACTIONS:,} "
                          f"(generating them would take about {total * _BYTES_PER_INTERACTION / 2**30:,.0f} GiB of memory)")
    if mean_length > MAX_MEAN_LENGTH:
        raise ConfigError(f"mean_length must be at most {MAX_MEAN_LENGTH:,}, got {mean_length:g}")
    return n_users, n_items, n_clusters, mean_length, _seed(seed), _positive_int("latent_dim", latent_dim)


def check_synthetic_params(params: dict) -> None:
    """A suite's ``datasets.synthetic`` table checked as `make_synthetic` would, without generating anything."""
    sig = inspect.signature(make_synthetic)
    unknown = sorted(set(params) - set(sig.parameters))
    if unknown:  # before bind, which would report the required parameter a typo left out instead
        raise ConfigError(f"unknown synthetic parameter(s) {', '.join(unknown)}; known: {', '.join(sig.parameters)}")
    try:
        bound = sig.bind(**params)
    except TypeError as e:
        raise ConfigError(f"bad synthetic parameters ({e}); known: {', '.join(sig.parameters)}") from None
    args = {**{k: v.default for k, v in sig.parameters.items()}, **bound.arguments}
    _checked(*(args[k] for k in ("n_users", "n_items", "n_clusters", "mean_length", "seed", "latent_dim")))
