"""Pairwise exchange refinement (`seater.trees.swaps`): exact gains, sizes kept, a true local optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seater.trees import BUILDERS
from seater.trees.swaps import swap_refine


def _sse(x: np.ndarray, labels: np.ndarray) -> float:
    return float(sum(((x[labels == c] - x[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels)))


@pytest.mark.parametrize("g,m,d,k", [(4, 40, 8, 4), (3, 37, 5, 16), (3, 50, 6, 3), (2, 9, 3, 2)])
def test_gains_are_exact_and_no_improving_exchange_is_left(g, m, d, k):
    gen = torch.Generator().manual_seed(m)
    x = torch.randn(g, m, d, generator=gen)
    mask = torch.ones(g, m, dtype=torch.bool)
    mask[1, m - 3:] = False  # a padded node
    labels = torch.stack([torch.randperm(m, generator=gen) % k for _ in range(g)])
    labels[1, m - 3:] = 0
    new, gain = swap_refine(x, mask, labels, k, max_passes=10_000)
    for a in range(g):
        xs = x[a][mask[a]].double().numpy()
        before, after = labels[a][mask[a]].numpy(), new[a][mask[a]].numpy()
        assert np.array_equal(np.bincount(before, minlength=k), np.bincount(after, minlength=k))
        base = _sse(xs, after)
        assert gain[a].item() == pytest.approx(_sse(xs, before) - base, rel=1e-9, abs=1e-9)
        assert gain[a].item() >= 0
        # brute force: no exchange of two items in different clusters lowers the objective
        for i in range(len(after)):
            for j in range(i + 1, len(after)):
                if after[i] != after[j]:
                    swapped = after.copy()
                    swapped[i], swapped[j] = after[j], after[i]
                    assert _sse(xs, swapped) >= base - 1e-9


def test_pass_budget_and_chunking_do_not_change_the_answer_they_reach():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 30, 4, generator=gen)
    mask = torch.ones(6, 30, dtype=torch.bool)
    labels = torch.stack([torch.randperm(30, generator=gen) % 5 for _ in range(6)])
    full, g_full = swap_refine(x, mask, labels, 5, max_passes=10_000)
    chunked, g_chunked = swap_refine(x, mask, labels, 5, max_passes=10_000, chunk=900)  # one node at a time
    assert torch.equal(full, chunked) and torch.allclose(g_full, g_chunked)
    _, g_one = swap_refine(x, mask, labels, 5, max_passes=1)
    assert bool((g_one <= g_full + 1e-12).all()) and bool((g_one > 0).all())
    same, g_zero = swap_refine(x, mask, labels, 5, max_passes=0)
    assert torch.equal(same, labels) and not bool(g_zero.any())


def test_builder_refines_small_nodes_and_stays_exact():
    x = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    build = BUILDERS.get("balanced").factory
    on = build(x, 4, seed=0).validate(balanced=True)
    off = build(x, 4, seed=0, swap_work=0).validate(balanced=True)
    # the root split is k-means' result, then exchanges: one more, lower, entry in its history
    h_on, h_off = on.build_info["level_objective"][0], off.build_info["level_objective"][0]
    assert h_on[:-1] == h_off and h_on[-1] < h_off[-1]
    for hist in on.build_info["level_objective"]:
        assert all(b <= a for a, b in zip(hist, hist[1:]))
    with pytest.raises(Exception, match="swap_passes"):
        build(x, 4, swap_passes=-1)
