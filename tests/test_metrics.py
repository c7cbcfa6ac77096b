"""Metrics against hand-computed cases and an independent per-user reference."""

import math

import numpy as np
import pytest

from seater.errors import ConfigError, DataError
from seater.metrics import evaluate, first_occurrence, per_user_metrics

L2, L3, L4, L5 = 1.0, 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5)  # discounts of ranks 0..3


def test_several_truth_items_hand_computed():
    # truth {1, 2, 5}; item 1 at rank 1, item 2 at rank 3
    pred = np.array([[3, 1, 7, 2, 9]])
    m = per_user_metrics(pred, [np.array([1, 2, 5])], ks=(2, 5))
    assert m["recall@2"][0] == pytest.approx(1 / 3)
    assert m["hit@2"][0] == 1.0
    assert m["ndcg@2"][0] == pytest.approx(L3 / (L2 + L3))  # IDCG of min(3, 2) = 2 hits
    assert m["recall@5"][0] == pytest.approx(2 / 3)
    assert m["ndcg@5"][0] == pytest.approx((L3 + L5) / (L2 + L3 + L4))  # 1.06161 / 2.13093
    assert m["ndcg@5"][0] == pytest.approx(0.498189, abs=1e-6)


def test_comirec_legacy_ndcg_is_higher():
    pred = np.array([[3, 1, 7, 2, 9]])
    truth = [np.array([1, 2, 5])]
    legacy = per_user_metrics(pred, truth, ks=(2, 5), comirec_ndcg=True)
    correct = per_user_metrics(pred, truth, ks=(2, 5))
    assert legacy["ndcg@5"][0] == pytest.approx((L3 + L5) / (L2 + L3))  # IDCG of the 2 recalled positives
    assert legacy["ndcg@2"][0] == pytest.approx(L3 / L2)
    assert legacy["ndcg@5"][0] > correct["ndcg@5"][0]
    assert legacy["recall@5"][0] == correct["recall@5"][0]
    # no hit: both 0
    none = per_user_metrics(np.array([[8, 9]]), [np.array([1])], ks=(2,), comirec_ndcg=True)
    assert none["ndcg@2"][0] == 0.0


def test_k_larger_than_truth_set():
    m = per_user_metrics(np.array([[1, 2, 3, 4]]), [np.array([2])], ks=(4,))
    assert m["recall@4"][0] == 1.0 and m["hit@4"][0] == 1.0
    assert m["ndcg@4"][0] == pytest.approx(L3)  # IDCG of one positive is 1


def test_duplicates_count_once_and_padding_never():
    # 4 repeated: the second 4 is ignored, so recall cannot exceed 1
    m = per_user_metrics(np.array([[4, 4, 5]]), [np.array([4, 5])], ks=(3,))
    assert m["recall@3"][0] == 1.0
    assert m["ndcg@3"][0] == pytest.approx((L2 + L4) / (L2 + L3))
    # padding 0 never hits, even if the truth contains a 0; truth duplicates collapse
    m = per_user_metrics(np.array([[0, 0, 6]]), [np.array([0, 6, 6])], ks=(3,))
    assert m["recall@3"][0] == 1.0
    assert m["ndcg@3"][0] == pytest.approx(L4)


def test_predicted_ids_beyond_every_truth_item_never_hit():
    """The multi-truth path sized its keys by the largest predicted id: an int64-max id overflowed."""
    big = np.iinfo(np.int64).max
    m = per_user_metrics(np.array([[big, 7, 99], [3, big, 2]]), [np.array([7, 3]), np.array([2])], ks=(3,))
    assert m["recall@3"].tolist() == [0.5, 1.0]
    assert m["ndcg@3"][1] == pytest.approx(L4)


def test_first_occurrence_mask():
    pred = np.array([[5, 3, 5, 0, 3, 7], [-1, 2, 2, 2, 0, 0]])
    assert first_occurrence(pred).tolist() == [
        [True, True, False, False, False, True],
        [False, True, False, False, False, False],
    ]


def test_empty_truth_is_nan_and_excluded():
    pred = np.array([[1, 2], [1, 2]])
    m = per_user_metrics(pred, [np.array([1]), np.array([], dtype=np.int64)], ks=(2,))
    assert np.isnan(m["recall@2"][1]) and np.isnan(m["ndcg@2"][1])
    means = evaluate(pred, [np.array([1]), np.array([], dtype=np.int64)], ks=(2,))
    assert means["recall@2"] == 1.0 and means["hit@2"] == 1.0
    with pytest.raises(DataError, match="no user"):
        evaluate(pred, [np.array([], dtype=np.int64)] * 2, ks=(2,))


def test_bad_arguments():
    with pytest.raises(ConfigError, match="K = 5 is larger than the 3 predictions"):
        per_user_metrics(np.array([[1, 2, 3]]), [np.array([1])], ks=(1, 5))
    with pytest.raises(ConfigError, match="2 prediction rows for 1 truth"):
        per_user_metrics(np.array([[1], [2]]), [np.array([1])], ks=(1,))
    with pytest.raises(ConfigError, match="ks"):
        per_user_metrics(np.array([[1]]), [np.array([1])], ks=(0,))
    with pytest.raises(ConfigError, match="integer matrix"):
        per_user_metrics(np.array([[1.0]]), [np.array([1])], ks=(1,))


def _reference(pred_row, truth, k, comirec):
    """Straightforward per-user definition, written independently of the vectorised code."""
    truth = {int(t) for t in truth if t > 0}
    seen, hits = set(), []
    for r, p in enumerate(pred_row[:k]):
        if p > 0 and p not in seen and p in truth:
            hits.append(r)
        seen.add(p)
    dcg = sum(1 / math.log2(r + 2) for r in hits)
    n_ideal = len(hits) if comirec else min(len(truth), k)
    idcg = sum(1 / math.log2(r + 2) for r in range(n_ideal))
    return len(hits) / len(truth), float(bool(hits)), dcg / idcg if idcg else 0.0


@pytest.mark.parametrize("comirec", [False, True])
@pytest.mark.parametrize("max_truth", [1, 6])  # 1 = the leave-one-out fast path
def test_matches_reference_on_random_data(comirec, max_truth):
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 15, size=(200, 12))  # small id range: many duplicates and zeros
    truth = [rng.integers(1, 15, size=rng.integers(1, max_truth + 1)) for _ in range(200)]
    m = per_user_metrics(pred, truth, ks=(1, 5, 12), comirec_ndcg=comirec)
    for u in range(200):
        for k in (1, 5, 12):
            rec, hit, ndcg = _reference(pred[u], truth[u], k, comirec)
            assert m[f"recall@{k}"][u] == pytest.approx(rec)
            assert m[f"hit@{k}"][u] == hit
            assert m[f"ndcg@{k}"][u] == pytest.approx(ndcg)


def test_early_stopping_metric_names():
    from seater.errors import ConfigError
    from seater.metrics import check_metric_name

    assert check_metric_name("ndcg@10", "m") == "ndcg@10" and check_metric_name("recall@5", "m") == "recall@5"
    for bad in ("mrr@3", "ndcg@0", "ndcg", "ndcg@x", "NDCG@10"):
        with pytest.raises(ConfigError, match="m: val_metric must be recall@K, hit@K or ndcg@K"):
            check_metric_name(bad, "m")
