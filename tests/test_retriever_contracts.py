"""Every retriever keeps the shared contract on odd calls: before fit, empty or malformed batches,
bad sizes at construction, seeded sampling; one clear error (`seater.errors`), never torch's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.bert4rec import BERT4Rec
from baselines.gru4rec import GRU4Rec
from baselines.popular import MostPopular
from baselines.sasrec import SASRec
from baselines.tiger import TIGER
from bench.speed.retrieval import balanced_random_tree
from seater.data.splits import leave_one_out, user_split
from seater.data.synthetic import make_synthetic
from seater.errors import ConfigError, DataError
from seater.model.retriever import SEATERRetriever

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def split():
    return leave_one_out(make_synthetic(n_users=120, n_items=40, seed=0))


@pytest.mark.parametrize("make, message", [
    (lambda: SEATERRetriever(n_heads=0), "n_heads must be >= 1"),
    (lambda: SASRec(n_heads=0), "n_heads must be an integer >= 1"),
    (lambda: SASRec(dim=16, n_heads=3), r"dim \(16\) must be divisible by n_heads \(3\)"),
    (lambda: SASRec(n_blocks=0), "n_blocks must be an integer >= 1"),
    (lambda: SASRec(valid_users=-5), r"valid_users \(0 = all\) must be an integer >= 0"),
    (lambda: BERT4Rec(n_heads=0), "n_heads must be an integer >= 1"),
    (lambda: GRU4Rec(n_layers=0), "n_layers must be an integer >= 1"),
])
def test_bad_sizes_fail_at_construction(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_calls_before_fit_say_so():
    h = np.ones((2, 5), dtype=np.int64)
    with pytest.raises(ConfigError, match="fit"):
        MostPopular().recommend(h, 3)
    with pytest.raises(ConfigError, match="before fit"):
        SEATERRetriever().recommend_exact(h, 3)
    with pytest.raises(ConfigError, match="before invalid_rate"):
        TIGER().invalid_rate(h)


def test_malformed_histories_are_one_data_error(split):
    pop, sas = MostPopular().fit(split), SASRec(dim=16, epochs=1, device="cpu").fit(split)
    for bad in (np.array([[1, 2, 99]]), np.array([[1.5, 2.0]]), np.array([1, 2]), [[1, 2], [3]]):
        with pytest.raises(DataError, match="histories"):
            pop.recommend(bad, 3)
        with pytest.raises(DataError, match="histories"):
            sas.user_embeddings(bad)


def test_tiger_answers_an_empty_batch(split):
    tree = balanced_random_tree(split.n_items, 4)
    m = TIGER(device="cpu", epochs=1, d_model=16, n_heads=2, head_dim=8, ffn_dim=32, encoder_layers=1, decoder_layers=1,
              max_history=8, valid_users=20).fit(split, tree)
    assert m.recommend(np.zeros((0, 8), dtype=np.int64), 5).shape == (0, 5)


def test_seater_validates_on_all_users_at_zero_and_at_the_cut_off_it_stops_on(split):
    tree = balanced_random_tree(split.n_items, 4)
    r = SEATERRetriever(device="cpu", epochs=2, patience=2, d_model=16, d_ff=32, val_users=0, val_metric="ndcg@20").fit(split, tree)
    curve = r.train_result_.history
    assert len(curve) == 2 and "valid/ndcg@20" in curve[0] and "valid/ndcg@10" in curve[0]
    assert r.train_result_.best_metrics["ndcg@20"] > 0  # 0 = all validation users, not none


def test_seater_sampling_is_seeded(split):
    tree = balanced_random_tree(split.n_items, 4)
    r = SEATERRetriever(device="cpu", epochs=1, d_model=16, d_ff=32, val_users=20, decode_mode="sample", seed=3).fit(split, tree)
    h = split.test.histories[:8]
    torch.manual_seed(0)
    first = r.recommend(h, 5)
    torch.manual_seed(1)  # the global RNG does not decide the lists
    np.testing.assert_array_equal(first, r.recommend(h, 5))


def test_user_split_seed_is_checked():
    with pytest.raises(ConfigError, match="user_split seed must be an integer >= 0, got -1"):
        user_split(make_synthetic(n_users=20, n_items=10, seed=0), seed=-1)


def test_integer_sizes_are_integers_and_the_seed_is_pointed_to():
    from seater.trees import BUILDERS

    with pytest.raises(ConfigError, match="seater beam_size must be an integer >= 1, got 2.5"):
        SEATERRetriever(beam_size=2.5)
    with pytest.raises(ConfigError, match=r"sasrec: dim must be an integer >= 1, got 16.0"):
        SASRec(dim=16.0)
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) seed .*; the seed is set apart \(--seed, or a suite's seeds\)"):
        BUILDERS.params("greedy", {"seed": 3})
