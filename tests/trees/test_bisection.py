"""Bisection seeds: k seeds per node, placed by mass (one per group of duplicates), padding ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seater.trees.bisection import bisection_seeds


def _nodes(points_per_node, copies, d=6, seed=0):
    """Nodes of `copies[g]` copies of each of `points_per_node` distinct points, padded into one batch."""
    rng = np.random.default_rng(seed)
    pts = [rng.normal(size=(points_per_node, d)) * 10 for _ in copies]
    rows = [np.repeat(p, c, axis=0)[rng.permutation(points_per_node * c)] for p, c in zip(pts, copies)]
    m = max(len(r) for r in rows)
    xl = torch.zeros((len(rows), m, d), dtype=torch.float64)
    mask = torch.zeros((len(rows), m), dtype=torch.bool)
    for g, r in enumerate(rows):
        xl[g, : len(r)] = torch.from_numpy(r)
        mask[g, : len(r)] = True
        xl[g, len(r) :] = 1e6  # padding far away: it must not pull any seed
    return xl, mask, pts


@pytest.mark.parametrize("k", [2, 3, 5, 8, 16])
def test_seeds_are_the_distinct_points_when_each_is_one_clusters_worth(k):
    # every node holds k distinct points with the same multiplicity: a balanced cut never separates
    # copies of one point (their scores tie and the cut falls at a multiple of the multiplicity), so
    # every seed is one of the points, each exactly once. Node sizes differ (padding in the batch).
    xl, mask, pts = _nodes(k, [7, 3, 12])
    seeds = bisection_seeds(xl, mask, k, torch.Generator().manual_seed(0))
    assert seeds.shape == (3, k, xl.shape[2])
    for g, p in enumerate(pts):
        got = seeds[g].numpy()
        dist = ((got[:, None, :] - p[None, :, :]) ** 2).sum(-1)
        assert np.allclose(dist.min(1), 0.0, atol=1e-9)  # every seed is a point
        assert sorted(dist.argmin(1).tolist()) == list(range(k))  # and every point is a seed


def test_uneven_sizes_and_identical_points_give_finite_seeds():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(2, 101, 4)).astype(np.float32))
    x[1] = 3.0  # all items of node 1 identical
    mask = torch.ones((2, 101), dtype=torch.bool)
    mask[0, 90:] = False
    seeds = bisection_seeds(x, mask, 7, torch.Generator().manual_seed(0))
    assert seeds.shape == (2, 7, 4) and torch.isfinite(seeds).all()
    assert torch.allclose(seeds[1], torch.full((7, 4), 3.0))
    # each seed is the mean of a group of 12 or 13 of node 0's 90 items: inside their range
    lo, hi = x[0, :90].min(0).values, x[0, :90].max(0).values
    assert ((seeds[0] >= lo) & (seeds[0] <= hi)).all()


def test_deterministic_per_generator_seed():
    x = torch.randn((4, 200, 8), generator=torch.Generator().manual_seed(3))
    mask = torch.ones((4, 200), dtype=torch.bool)
    a = bisection_seeds(x, mask, 16, torch.Generator().manual_seed(5))
    b = bisection_seeds(x, mask, 16, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_seeds_find_planted_balanced_clusters():
    # 8 well separated clusters of 50 items each: one seed per cluster, near its centre
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(8, 16)) * 20
    x = np.concatenate([c + rng.normal(size=(50, 16)) for c in centres])[rng.permutation(400)]
    seeds = bisection_seeds(torch.from_numpy(x)[None], torch.ones((1, 400), dtype=torch.bool), 8, torch.Generator().manual_seed(0))[0]
    dist = ((seeds.numpy()[:, None, :] - centres[None]) ** 2).sum(-1)
    assert sorted(dist.argmin(1).tolist()) == list(range(8))
    assert dist.min(1).max() < 16 * 0.2  # within a fraction of the clusters' spread (16 per item)
