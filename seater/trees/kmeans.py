"""`kmeans`: plain (unbalanced) recursive k-means, the DSI-style ablation; plus the Faiss
k-means helpers the other builders share.

Each node with more than k items is split by Faiss k-means (k centroids, `niter`
iterations, the node's seed) and every item goes to its nearest centroid, so child sizes
follow the data and the tree is not balanced (check it with ``validate(balanced=False)``).
Empty clusters leave empty slots.

No-progress guard: when k-means puts every item of a node in one cluster (all items
identical, or Faiss collapsed its centroids), the node is instead cut into k near-equal
contiguous chunks along its direction of largest variance (item order for identical
points). That always makes progress, so the recursion ends, and the fallback is listed in
``build_info["notes"]``.
"""

from __future__ import annotations

import numpy as np

from seater.trees import BUILDERS
from seater.trees.checks import check_embeddings, check_int
from seater.trees.recursive import build_recursive
from seater.trees.tree import Tree


def faiss_use_gpu() -> bool:
    import faiss

    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def faiss_centroids(x: np.ndarray, k: int, seed: int, niter: int = 20, threads: int = 1) -> np.ndarray:
    """Faiss k-means centroids ``(k, d)`` float32 of the rows of `x` (GPU when faiss has one).

    Faiss' defaults are kept (it trains on at most 256 points per centroid, a random sample),
    except ``min_points_per_centroid=1``, which only silences its small-node warning.
    CPU Faiss runs on `threads` OpenMP threads (restored afterwards): one by default, because
    OpenMP's spin-waiting made a 94-point node 1000x slower (0.5 s vs 0.5 ms) and a
    20K-point node 30x slower on our shared 2-core machine; parallelism across nodes comes
    from the builders' `workers` instead.
    """
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(threads))
    try:
        km = faiss.Kmeans(
            x.shape[1], k, niter=int(niter), seed=int(seed), gpu=faiss_use_gpu(), min_points_per_centroid=1, verbose=False
        )
        km.train(np.ascontiguousarray(x, dtype=np.float32))
    finally:
        faiss.omp_set_num_threads(before)
    return np.asarray(km.centroids, dtype=np.float32)


def conditioned(x: np.ndarray, lo: float, hi: float, target: float) -> np.ndarray:
    """`x` moved to its mean and scaled to RMS radius `target` where its arithmetic would lose the
    clustering, else `x` itself (so the trees of ordinary data do not move).

    The splits are translation and scale invariant in exact arithmetic, but not in float32 (Faiss,
    `sq_distances`: ``||x||^2 - 2x.c + ||c||^2`` cancels under a common offset; squares overflow from
    |x| ~ 1.8e19, which aborted the process inside Faiss, and underflow below ~1e-22) nor in
    k-means-constrained (integer costs of 1e-3 units: int32 overflow beyond distances of ~2e6, no
    resolution left below ~1e-3). Conditioned when the node's RMS radius r lies outside [lo, hi], its
    farthest point beyond hi, or its mean more than 100 r from the origin; far outliers cap the scale
    so that the farthest point lands at hi.
    """
    mu = x.mean(0, dtype=np.float64)
    total, far2 = 0.0, 0.0
    # float64 by chunks (no float64 copy of the node): float32 squares overflow / underflow at the
    # very scales looked for
    for s in range(0, len(x), _CHUNK_ROWS):
        d2 = np.square(x[s : s + _CHUNK_ROWS].astype(np.float64) - mu).sum(1)
        total, far2 = total + float(d2.sum()), max(far2, float(d2.max(initial=0.0)))
    r, far = (total / max(len(x), 1)) ** 0.5, far2**0.5
    if r == 0.0:  # identical points: any split is as good; huge ones are moved to the origin
        return x if float(np.abs(mu).max(initial=0.0)) <= hi else np.zeros_like(x)
    if lo <= r <= hi and far <= hi and float(np.linalg.norm(mu)) <= 100.0 * r:
        return x
    scale = target / r if not lo <= r <= hi or far > hi else 1.0
    scale = min(scale, hi / far)
    return ((x.astype(np.float64) - mu) * scale).astype(np.float32)


_CHUNK_ROWS = 1 << 16


# Faiss and sq_distances compute in float32: radius band and target of `conditioned` for them
FLOAT32_BAND = (1e-12, 1e12, 1.0)


def sq_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, k)`` float32, clipped at 0 (the expansion can dip below)."""
    d = (x * x).sum(1, keepdims=True) - 2.0 * (x @ centroids.T) + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


def seed_from(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def chunk_split(x: np.ndarray, k: int) -> np.ndarray:
    """Balanced labels: k contiguous chunks along the top principal direction (stable order)."""
    n = x.shape[0]
    xc = x.astype(np.float64) - x.mean(0, dtype=np.float64)
    if np.abs(xc).max() > 0:
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        proj = xc @ vt[0]
    else:
        proj = np.zeros(n)
    order = np.argsort(proj, kind="stable")
    q, r = divmod(n, k)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.repeat(np.arange(k), [q + 1] * r + [q] * (k - r))
    return labels


def kmeans_split(x: np.ndarray, k: int, rng: np.random.Generator, niter: int = 20):
    x = conditioned(x, *FLOAT32_BAND)
    c = faiss_centroids(x, k, seed_from(rng), niter)
    labels = sq_distances(x, c).argmin(1).astype(np.int64)
    if np.bincount(labels, minlength=k).max() == len(x):
        return chunk_split(x, k), ["k-means made no progress (one cluster); cut into balanced chunks along the top principal direction"]
    return labels


def check_params(p: dict) -> None:
    """Range checks of the builder's parameters (complete, as from `BUILDERS.params`)."""
    check_int("kmeans niter", p["niter"], 1)
    check_int("kmeans workers", p["workers"], 1)


@BUILDERS.register("kmeans", defaults={"niter": 20, "workers": 1}, check=check_params)
def build_kmeans(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Unbalanced recursive Faiss k-means (DSI-style ablation)."""
    x = check_embeddings(embeddings, k)
    p = BUILDERS.params("kmeans", params)
    check_params(p)
    return build_recursive(
        x, k, kmeans_split, seed=seed, params={"niter": p["niter"]}, balanced=False,
        workers=p["workers"], builder="kmeans", build_params=p,
    )
