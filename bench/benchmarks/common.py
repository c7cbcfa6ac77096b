"""Seeded, cached data for the asv benchmarks.

Append only: changing an existing generator changes what old results measured.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=8)
def embeddings(n_items: int, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Clustered float32 embeddings ``(n_items, dim)``; the suite's synthetic data when present."""
    try:
        from seater.data.synthetic import synthetic_embeddings
    except ImportError:  # older commits: a plain Gaussian mixture
        rng = np.random.default_rng(seed)
        centers = rng.normal(0, 3, size=(max(2, n_items // 200), dim))
        return (centers[rng.integers(0, len(centers), n_items)] + rng.normal(size=(n_items, dim))).astype(np.float32)
    return synthetic_embeddings(n_items, dim, seed=seed)


def builder(name: str):
    """The registered builder, or NotImplementedError (asv skips) at commits without it."""
    try:
        from seater.trees import BUILDERS
    except ImportError as e:
        raise NotImplementedError(str(e)) from e
    if name not in BUILDERS:
        raise NotImplementedError(f"builder {name} not registered at this commit")
    return BUILDERS.get(name).factory


def peak_growth_mb(fn) -> float:
    """Peak resident memory while `fn` runs, above the resident memory before it (MB; Linux).

    The peak counter (VmHWM) is reset to the current resident size first (``clear_refs`` 5), so an
    earlier, higher peak of the process is not credited to `fn`; where that is not allowed, the
    lifetime peak (``ru_maxrss``) stands in, right in asv's fresh benchmark processes.
    """
    import resource

    def status_mb(key: str) -> float:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(key)) / 1024  # kB

    before = status_mb("VmRSS:")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    fn()
    peak = status_mb("VmHWM:") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(0.0, peak - before)
