"""Build time, peak memory and clustering cost of the baseline tree builders (d = 64, k = 16).

constrained only at 2K (it takes many minutes at 20K on 2 cores); greedy also at 200K. hybrid
at 5K/20K (at most its threshold of 2,000 items it is constrained k-means alone): at 200K it runs
constrained k-means on 256 nodes of ~780 items, beyond asv's 10-minute timeout on 2 cores.
"""

from .common import builder, embeddings, peak_growth_mb

K = 16


class _TreeBench:
    """time / peakmem of a build; its quality from one build per size in `setup_cache` (validated, so an
    unbalanced tree fails the benchmark), tracked next to the speed so a faster build that clusters
    worse shows up as well. Each subclass defines its own one-line `setup_cache`: asv keys the cache by
    the function's module and line, so one inherited function would hand every builder the first's."""

    name = ""
    params = [2_000, 20_000]
    param_names = ["n_items"]
    timeout = 600
    balanced = True  # kmeans: unbalanced by design

    def _quality_by_size(self):
        try:
            build = builder(self.name)
        except NotImplementedError:
            return None
        out = {}
        for n in self.params:
            x = embeddings(n)
            tree = build(x, K, seed=0)
            tree.validate(balanced=self.balanced)
            out[n] = _quality(tree, x)
        return out

    def setup(self, cache, n_items):
        if cache is None:
            raise NotImplementedError(f"builder {self.name} not registered at this commit")
        self.build = builder(self.name)
        self.x = embeddings(n_items)

    def time_build(self, cache, n_items):
        self.build(self.x, K, seed=0)

    def peakmem_build(self, cache, n_items):
        self.build(self.x, K, seed=0)

    def track_peak_growth_mb(self, cache, n_items):
        """The build's own memory (peakmem_build is the process's peak, ~240 MB of libraries in it); a tiny
        build first, as builders import their libraries on first use (k-means-constrained: ~45 MB)."""
        self.build(self.x[: 4 * K], K, seed=0)
        return peak_growth_mb(lambda: self.build(self.x, K, seed=0))

    track_peak_growth_mb.unit = "MB"

    def track_cost(self, cache, n_items):
        return cache[n_items]["total_cost"]

    track_cost.unit = "mean sq. distance"

    def track_gini(self, cache, n_items):
        return cache[n_items]["gini"]

    track_gini.unit = "gini of node sizes"

    def track_depth(self, cache, n_items):
        return cache[n_items]["depth"]

    track_depth.unit = "levels"

    def track_off_nearest(self, cache, n_items):
        return cache[n_items].get("off_nearest", float("nan"))

    track_off_nearest.unit = "share of items"


def _quality(tree, x) -> dict:
    from seater.trees.quality import tree_quality

    q = tree_quality(tree, x)
    out = {"total_cost": float(q["total_cost"]), "gini": float(q["gini"]), "depth": float(q["depth"])}
    try:
        from seater.trees.quality import off_nearest
    except ImportError:  # older commits
        return out
    return {**out, "off_nearest": float(off_nearest(tree, x)["off_nearest"])}


class Constrained(_TreeBench):
    name = "constrained"
    params = [2_000]

    def setup_cache(self):
        return self._quality_by_size()


class Greedy(_TreeBench):
    name = "greedy"
    params = [2_000, 20_000, 200_000]

    def setup_cache(self):
        return self._quality_by_size()


class Hybrid(_TreeBench):
    name = "hybrid"
    params = [5_000, 20_000]  # at 2K (its default threshold) it is constrained k-means all the way down

    def setup_cache(self):
        return self._quality_by_size()


class KMeans(_TreeBench):
    name = "kmeans"
    balanced = False

    def setup_cache(self):
        return self._quality_by_size()


class Random(_TreeBench):
    name = "random"

    def setup_cache(self):
        return self._quality_by_size()


class Quality:
    """tree_quality itself on a random balanced tree."""

    params = [20_000, 200_000]
    param_names = ["n_items"]

    def setup(self, n_items):
        self.x = embeddings(n_items)
        self.tree = builder("random")(self.x, K, seed=0)

    def time_tree_quality(self, n_items):
        from seater.trees.quality import tree_quality

        tree_quality(self.tree, self.x)


class GreedyAssignment:
    """The vectorised global-greedy capacity assignment on one node's cost matrix."""

    params = [20_000, 200_000]
    param_names = ["n_items"]

    def setup(self, n_items):
        import numpy as np

        try:
            from seater.trees.greedy import greedy_balanced_assignment
        except ImportError as e:
            raise NotImplementedError(str(e)) from e
        self.assign = greedy_balanced_assignment
        self.cost = np.random.default_rng(0).random((n_items, K)).astype(np.float32)

    def time_greedy_assignment(self, n_items):
        self.assign(self.cost)
