"""asv: build time, peak memory and clustering cost of the `balanced` tree builder (CPU sizes).

A fixed iteration budget (max_iter=10) and one torch thread; the builder's other defaults are
each commit's own, so a change of default shows up here as a change of speed and cost.
`track_total_cost` records quality next to speed, and `track_torch_operators` the number of torch
operators a build issues: on a GPU the build is launch-bound (results/trees/README.md), so this
noise-free count tracks its GPU cost on a CPU-only machine.
"""


class BalancedBuild:
    params = [2000, 20000, 200000]
    param_names = ["n_items"]
    timeout = 600

    def setup(self, n_items):
        try:
            from seater.data.synthetic import synthetic_embeddings
            from seater.trees import balanced  # noqa: F401  (registers the builder)
        except ImportError:
            raise NotImplementedError("balanced builder not present at this commit")
        self.x = synthetic_embeddings(n_items, dim=64, seed=0)
        self.build = balanced.build

    def _run(self):
        return self.build(self.x, 16, seed=0, max_iter=10, threads=1, device="cpu")

    def time_build(self, n_items):
        self._run()

    def peakmem_build(self, n_items):
        self._run()

    def track_total_cost(self, n_items):
        from seater.trees.quality import tree_quality

        tree = self._run()
        tree.validate(balanced=True)  # a faster build that breaks the exact sizes fails here
        return float(tree_quality(tree, self.x)["total_cost"])

    track_total_cost.unit = "mean sq. distance"

    def track_torch_operators(self, n_items):
        from torch.overrides import TorchFunctionMode

        class Count(TorchFunctionMode):
            calls = 0

            def __torch_function__(self, func, types, args=(), kwargs=None):
                self.calls += 1
                return func(*args, **(kwargs or {}))

        mode = Count()
        with mode:
            self._run()
        return mode.calls

    track_torch_operators.unit = "operators"
