"""`constrained`: the SEATER original, recursive k-means-constrained.

Every node with n > k items is split by
``KMeansConstrained(n_clusters=k, size_min=n // k, size_max=n // k + 1, n_init, max_iter)``
(library defaults: 10 initialisations, 300 iterations), which alternates centroid updates
with a min-cost-flow assignment solved by OR-Tools.

Guardrails. The library is known to fail ("issue with the min cost flow input") or to
return off-size clusters when the bounds are tight or points are duplicated. Every result
is checked (group sizes must be floor(n/k) / floor(n/k) + 1), and on failure:

1. retry once on the node's points plus tiny jitter (1e-6 of their spread, drawn from the
   node's RNG) with the next seed, which breaks exact ties between duplicates;
2. otherwise keep the last centroids the library produced (Faiss k-means centroids if it
   produced none) and assign exactly balanced (`seater.trees.assignment.balanced_assignment`).

Each fallback is recorded in ``build_info["notes"]``; the tree is never silently wrong
(the recursion driver re-checks every split). Guards against runaway cost:
``max_items`` refuses a node larger than that with a clear message (constrained k-means
is O(iterations x min-cost-flow on n*k arcs) per node), and ``time_limit`` (seconds)
stops the build between nodes once exceeded.
"""

from __future__ import annotations

import warnings

import numpy as np

from seater.errors import TreeBuildError
from seater.trees import BUILDERS
from seater.trees.assignment import balanced_assignment
from seater.trees.checks import check_embeddings, check_int, check_seconds
from seater.trees.kmeans import conditioned, faiss_centroids, seed_from, sq_distances
from seater.trees.recursive import build_recursive, check_balanced_labels
from seater.trees.tree import Tree


# k-means-constrained's radius band and target (`conditioned`): its costs are Euclidean distances x 1000
# rounded to int32, resolved to 1% at the band's bottom (0.1) and 20x below int32's limit at its top
# (1e5). Inside the band the library gets the points as SEATER's original gave them (SASRec item
# tables: root radius ~1.4), so those trees are as before; outside, radius 100 (1e-5 resolution)
LIBRARY_BAND = (0.1, 1e5, 100.0)


def constrained_split(x: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 10, max_iter: int = 300, max_items: int | None = None):
    from k_means_constrained import KMeansConstrained

    n = x.shape[0]
    if max_items is not None and n > max_items:
        raise TreeBuildError(
            f"constrained: a node holds {n} items, above max_items={max_items}; constrained k-means "
            "at this size takes very long. Raise max_items or use hybrid/greedy/balanced"
        )
    q = n // k
    seed = seed_from(rng)
    notes: list[str] = []
    centers = None
    x = conditioned(x, *LIBRARY_BAND)  # its integer costs lose points far outside the band
    spread = float(x.std()) or float(np.abs(x).max()) or 1.0
    for attempt in range(2):
        xin = x if attempt == 0 else x + rng.normal(0.0, 1e-6 * spread, size=x.shape).astype(np.float32)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                km = KMeansConstrained(
                    n_clusters=k, size_min=q, size_max=q + 1, random_state=seed + attempt, n_init=n_init, max_iter=max_iter
                )
                labels = np.asarray(km.fit_predict(xin), dtype=np.int64)
                centers = np.asarray(km.cluster_centers_, dtype=np.float32)
                why = check_balanced_labels(labels, n, k)
            except Exception as e:  # noqa: BLE001 - library failures, its min-cost-flow one a bare Exception
                why = f"failed: {type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
        notes.extend(sorted({f"warning: {w.message}" for w in caught}))
        if why is None:
            if attempt:
                notes.append("k-means-constrained succeeded on jittered points")
            return labels, notes
        notes.append(f"k-means-constrained attempt {attempt + 1}: {why}")
    if centers is None or not np.isfinite(centers).all():
        centers = faiss_centroids(x, k, seed)
        source = "Faiss k-means centroids"
    else:
        source = "its last centroids"
    labels = balanced_assignment(sq_distances(x, centers))  # solved in float64
    notes.append(f"fell back to exact balanced assignment on {source}")
    return labels, notes


def check_params(p: dict) -> None:
    """Range checks of the builder's parameters (complete, as from `BUILDERS.params`)."""
    for key in ("n_init", "max_iter", "workers"):
        check_int(f"constrained {key}", p[key], 1)
    if p["max_items"] is not None:
        check_int("constrained max_items", p["max_items"], 1)
    check_seconds("constrained time_limit", p["time_limit"])


@BUILDERS.register(
    "constrained", defaults={"n_init": 10, "max_iter": 300, "workers": 1, "max_items": None, "time_limit": None},
    check=check_params,
)
def build_constrained(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Recursive k-means-constrained (SEATER original), with checked fallbacks."""
    x = check_embeddings(embeddings, k)
    p = BUILDERS.params("constrained", params)
    check_params(p)
    return build_recursive(
        x, k, constrained_split, seed=seed,
        params={"n_init": p["n_init"], "max_iter": p["max_iter"], "max_items": p["max_items"]},
        workers=p["workers"], time_limit=p["time_limit"], builder="constrained", build_params=p,
    )
