"""Synthetic data: determinism, shapes, planted structure a model can find."""

from collections import Counter, defaultdict

import numpy as np
import pytest

from seater.data import leave_one_out, make_synthetic, synthetic_embeddings
from seater.data.synthetic import _mixture
from seater.errors import ConfigError


def test_make_synthetic_shapes_and_determinism():
    a = make_synthetic(300, 120, seed=5)
    b = make_synthetic(300, 120, seed=5)
    c = make_synthetic(300, 120, seed=6)
    assert a.n_users == 300 and a.n_items == 120
    assert all(np.array_equal(x, y) for x, y in zip(a.sequences, b.sequences))
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a.sequences, c.sequences))
    flat = np.concatenate(a.sequences)
    assert flat.dtype == np.int64 and flat.min() >= 1 and flat.max() <= 120
    assert a.lengths().min() >= 3
    assert 9 < a.lengths().mean() < 15  # mean_length = 12
    assert a.extra["item_cluster"].shape == (120,) and a.extra["item_cluster"].dtype == np.int64
    assert a.extra["item_latent"].shape == (120, 32) and a.extra["item_latent"].dtype == np.float32
    assert len(a.item_attributes) == 121 and len(a.item_attributes[0]) == 0
    assert len(a.item_ids) == 121


def test_make_synthetic_has_sequential_signal():
    # a bigram "next item" counter must beat most-popular by a wide margin on the LOO test item
    inter = make_synthetic(1500, 400, seed=1)
    sp = leave_one_out(inter)
    counts = np.bincount(np.concatenate(sp.train_sequences), minlength=401)
    counts[0] = -1
    popular = np.argsort(-counts, kind="stable")[:10]
    truth = np.array([t[0] for t in sp.test.truth])
    pop_hit = np.isin(truth, popular).mean()
    follow = defaultdict(Counter)
    for s in sp.train_sequences:
        for x, y in zip(s[:-1].tolist(), s[1:].tolist()):
            follow[x][y] += 1
    last = sp.test.histories[:, -1].tolist()
    bigram_hit = np.mean([t in {i for i, _ in follow[h].most_common(10)} for h, t in zip(last, truth.tolist())])
    assert bigram_hit > 5 * pop_hit  # observed: ~0.75 vs ~0.04
    # consecutive items mostly share a cluster (drift exists but is the minority)
    cl = inter.extra["item_cluster"]
    same = np.mean([np.mean(cl[s[1:] - 1] == cl[s[:-1] - 1]) for s in inter.sequences])
    assert 0.6 < same < 0.95


@pytest.mark.parametrize("noise", ["gaussian", "uniform"])
def test_synthetic_embeddings_clustered_and_varied(noise):
    x = synthetic_embeddings(3000, dim=16, seed=0, noise=noise)
    assert x.shape == (3000, 16) and x.dtype == np.float32
    assert np.array_equal(x, synthetic_embeddings(3000, dim=16, seed=0, noise=noise))
    assert not np.array_equal(x, synthetic_embeddings(3000, dim=16, seed=1, noise=noise))
    x, cluster, _ = _mixture(70_000, 16, 50, np.random.default_rng(0), noise)  # > one generation chunk
    sizes = np.bincount(cluster, minlength=50)
    assert sizes.max() > 4 * max(sizes.min(), 1)  # varied sizes
    centers = np.stack([x[cluster == c].mean(0) for c in range(50) if sizes[c]])
    within = np.mean([x[cluster == c].var(0).sum() for c in range(50) if sizes[c] > 1])
    assert within < 0.3 * x.var(0).sum()  # clusters are real ...
    spreads = np.array([x[cluster == c].std() for c in range(50) if sizes[c] > 5])
    assert spreads.max() > 2 * spreads.min()  # ... and differ in spread
    assert len(centers) > 1


def test_bad_synthetic_parameters():
    with pytest.raises(ConfigError, match="n_items"):
        make_synthetic(10, 0)
    with pytest.raises(ConfigError, match="mean_length"):
        make_synthetic(10, 10, mean_length=2)
    with pytest.raises(ConfigError, match="dim"):
        synthetic_embeddings(10, dim=0)
    with pytest.raises(ConfigError, match="noise must be"):
        synthetic_embeddings(10, noise="laplace")


def test_make_synthetic_rejects_sizes_too_large_to_generate():
    # 5 users x 1e9 would allocate ~73 GiB before failing; the check comes first
    with pytest.raises(ConfigError, match=r"n_users \* mean_length = 5e\+09 interactions, above the limit .* GiB of memory"):
        make_synthetic(5, 10, mean_length=1e9)
    with pytest.raises(ConfigError, match=r"mean_length must be at most 100,000, got 1e\+07"):
        make_synthetic(1, 10, mean_length=1e7)


def test_negative_seed_rejected():
    with pytest.raises(ConfigError, match="seed must be a non-negative integer, got -1"):
        make_synthetic(10, 10, seed=-1)
    with pytest.raises(ConfigError, match="seed must be a non-negative integer, got -1"):
        synthetic_embeddings(10, seed=-1)


def test_uniform_noise_matches_gaussian_spread():
    # same seed, same clusters and centres: per-cluster variances agree within sampling error
    g, cg, _ = _mixture(20_000, 8, 5, np.random.default_rng(1), "gaussian")
    u, cu, _ = _mixture(20_000, 8, 5, np.random.default_rng(1), "uniform")
    assert np.array_equal(cg, cu)
    for c in range(5):
        if (cg == c).sum() > 500:
            assert np.allclose(g[cg == c].var(0), u[cu == c].var(0), rtol=0.2)
