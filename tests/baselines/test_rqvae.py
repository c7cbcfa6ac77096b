"""RQ-VAE semantic IDs and the `rqvae` builder, on small planted-cluster data (CPU seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.rqvae import add_collision_codes, build_rqvae, codebook_usage, collision_rate
from seater.errors import ConfigError, DataError
from seater.trees import BUILDERS, Tree

pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = dict(epochs=30, batch_size=128, hidden=[64, 32], latent_dim=8)


def planted(n=600, d=16, c=12, seed=0):
    """Items drawn around c well separated centres; returns (vectors (n, d), cluster label (n,))."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, c, n)
    x = rng.normal(size=(c, d))[lab] * 3 + rng.normal(size=(n, d)) * 0.5
    return x.astype(np.float32), lab


@pytest.fixture(scope="module")
def planted_tree():
    x, lab = planted()
    return build_rqvae(x, k=16, seed=0, **SMALL), x, lab


def test_registered_with_defaults():
    entry = BUILDERS.get("rqvae")
    assert entry.factory is build_rqvae
    assert entry.defaults["hidden"] == [512, 256, 128] and entry.defaults["latent_dim"] == 32
    assert entry.defaults["n_levels"] == 3 and entry.defaults["beta"] == 0.25


def test_ids_unique_and_tree_valid(planted_tree):
    tree, _, _ = planted_tree
    assert isinstance(tree, Tree) and tree.k == 16
    assert len(np.unique(tree.codes, axis=0)) == tree.n_items == 600
    assert (tree.lengths == tree.depth).all()  # fixed depth: 3 RQ codes + collision level(s)
    tree.validate(balanced=False)
    info = tree.build_info
    assert tree.depth == 3 + info["collision_levels"]


def test_similar_items_share_prefixes(planted_tree):
    tree, _, lab = planted_tree
    same = lab[:, None] == lab[None, :]
    off_diag = ~np.eye(len(lab), dtype=bool)
    first = tree.codes[:, None, 0] == tree.codes[None, :, 0]
    # observed: 0.86 within a planted cluster, 0.00 across clusters
    assert first[same & off_diag].mean() > 0.6
    assert first[~same].mean() < 0.1


def test_build_info_reports_usage_collisions_and_curve(planted_tree):
    tree, _, _ = planted_tree
    info = tree.build_info
    rq = tree.codes[:, :3]
    assert info["codebook_usage"] == pytest.approx([len(np.unique(rq[:, j])) / 16 for j in range(3)])
    assert min(info["codebook_usage"]) >= 0.8  # observed 1.0 at every level
    assert info["collision_rate"] == pytest.approx(collision_rate(rq))
    assert len(info["recon_loss"]) == SMALL["epochs"]
    assert info["recon_loss"][-1] < 0.5 * info["recon_loss"][0]  # it learns: observed 1.0 -> 0.06
    assert info["builder"] == "rqvae" and info["params"]["k"] == 16
    assert info["device"] == "cpu"  # where it trained, "auto" resolved (one_thread: a CPU run here)


def test_deterministic_given_seed():
    x, _ = planted(n=200)
    a = build_rqvae(x, k=8, seed=3, **{**SMALL, "epochs": 3})
    b = build_rqvae(x, k=8, seed=3, **{**SMALL, "epochs": 3})
    np.testing.assert_array_equal(a.codes, b.codes)


def test_collision_codes_by_hand():
    codes = np.array([[1, 2], [0, 0], [1, 2], [1, 2], [0, 1]])
    out, levels = add_collision_codes(codes, k=4)
    assert levels == 1
    np.testing.assert_array_equal(out[:, 2], [0, 0, 1, 2, 0])
    assert collision_rate(codes) == pytest.approx(3 / 5)
    assert codebook_usage(codes, 4) == [0.5, 0.75]


def test_collision_group_larger_than_k_gets_extra_level():
    codes = np.zeros((7, 3), dtype=np.int64)  # 7 items on one prefix, k = 2 -> 3 base-2 digits
    out, levels = add_collision_codes(codes, k=2)
    assert levels == 3
    np.testing.assert_array_equal(out[:, 3:] @ np.array([4, 2, 1]), np.arange(7))
    Tree(out, 2).validate(balanced=False)  # a valid prefix-free tree


def test_identical_inputs_still_get_unique_ids():
    x = np.ones((40, 4), dtype=np.float32)  # e.g. items with the same attributes
    tree = build_rqvae(x, k=4, seed=0, **{**SMALL, "epochs": 1})
    assert len(np.unique(tree.codes, axis=0)) == 40


def test_bad_input_raises_clear_errors():
    x, _ = planted(n=50)
    with pytest.raises(DataError, match="2-D"):
        build_rqvae(x[0], k=8)
    with pytest.raises(ConfigError, match="unknown parameter"):
        build_rqvae(x, k=8, epoch=3)
    with pytest.raises(ConfigError, match="epochs"):
        build_rqvae(x, k=8, epochs=0)
    for hidden in (["a"], [[1]], [1e30], [1.5], [True], [0], []):
        with pytest.raises(ConfigError, match=r"hidden must be a non-empty list of integer widths in 1\.\.65536"):
            build_rqvae(x, k=8, hidden=hidden)
    with pytest.raises(ConfigError, match="weight_decay=-1"):
        build_rqvae(x, k=8, weight_decay=-1.0)
    for key in ("beta", "lr", "weight_decay", "dead_code_threshold"):  # inf led to "training diverged; lower lr"
        with pytest.raises(ConfigError, match=f"finite.*{key}=inf"):
            build_rqvae(x, k=8, **{key: float("inf")})


def test_standardisation_leaves_constant_columns_at_zero_and_huge_entries_finite():
    """Computed in float32, a constant column of 0.1 got a spread of ~1e-8 from rounding and became
    +-1, and entries near 3e38 overflowed the mean into nan ("training diverged")."""
    from baselines.rqvae import standardize

    x, _ = planted(n=64, d=6)
    x[:, 0] = 0.1
    x[:, 1] = x[:, 1] * 1e37  # up to ~3e38: within float32, but its float32 sum overflows
    assert np.isfinite(x).all() and x[:, 0].std() > 0  # the float32 rounding the old code hit
    z = standardize(x)
    assert z.dtype == np.float32 and (z[:, 0] == 0).all() and np.isfinite(z).all()
    np.testing.assert_allclose(z[:, 1:].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, 1:].std(0), 1.0, rtol=1e-4)
    build_rqvae(x, k=8, seed=0, **{**SMALL, "epochs": 2})  # trains (was: diverged, nan)
