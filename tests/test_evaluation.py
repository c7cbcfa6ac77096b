"""evaluate_retriever: batching, metrics agreement, contract checks; check_predictions rates."""

import numpy as np
import pytest

from seater.data.splits import leave_one_out
from seater.data.synthetic import make_synthetic
from seater.data.types import EvalSet
from seater.errors import ConfigError
from seater.evaluation import check_predictions, evaluate_retriever
from seater.metrics import evaluate


class LastItemPlusOne:
    """Recommends h, h+1, ..., h+k-1 where h is the last history item: a deterministic fake."""

    def recommend(self, histories, k):
        return histories[:, -1:] + np.arange(k)[None, :]


class WrongShape:
    def recommend(self, histories, k):
        return np.zeros((len(histories), k - 1), dtype=np.int64)


def _evalset(n=7):
    hist = np.zeros((n, 3), dtype=np.int64)
    hist[:, -1] = np.arange(1, n + 1)
    # user u (last item u+1) has truth {u+2}: a hit at rank 1, except every third user
    truth = [np.array([u + 2 if u % 3 else 100]) for u in range(n)]
    return EvalSet(users=np.arange(n), histories=hist, truth=truth)


def test_batched_evaluation_matches_metrics():
    es = _evalset()
    res = evaluate_retriever(LastItemPlusOne(), es, ks=(1, 2, 5), batch_size=3, n_items=20)
    assert res.predictions.shape == (7, 5)
    assert res.predictions[0].tolist() == [1, 2, 3, 4, 5]
    assert res.metrics == evaluate(res.predictions, es.truth, ks=(1, 2, 5))
    # users 1, 2, 4, 5 hit at rank 1 (users 0, 3, 6 have truth 100): hit@2 = 4/7, hit@1 = 0
    assert res.metrics["hit@2"] == pytest.approx(4 / 7)
    assert res.metrics["hit@1"] == 0.0
    assert res.per_user["hit@2"].tolist() == [0, 1, 1, 0, 1, 1, 0]
    assert res.n_users == 7 and res.n_empty_truth == 0 and res.seconds >= 0
    same = evaluate_retriever(LastItemPlusOne(), es, ks=(1, 2, 5), batch_size=1000)
    assert same.metrics == res.metrics
    # predictions 1..11 all in range for n_items=20, no duplicates, no padding
    assert res.prediction_checks == {"invalid_rate": 0.0, "padding_rate": 0.0, "duplicate_rate": 0.0}


def test_wrong_shape_is_reported():
    with pytest.raises(ConfigError, match=r"WrongShape.recommend returned .*shape \(3, 4\); expected .*\(3, 5\)"):
        evaluate_retriever(WrongShape(), _evalset(3), ks=(5,))


def test_check_predictions_rates():
    pred = np.array([[1, 1, 0, 9], [2, -1, 3, 2]])  # n_items = 5: 9 and -1 invalid
    r = check_predictions(pred, n_items=5)
    assert r["invalid_rate"] == pytest.approx(2 / 8)
    assert r["padding_rate"] == pytest.approx(1 / 8)
    assert r["duplicate_rate"] == pytest.approx(2 / 8)  # the second 1 and the second 2


class BeamAndExact:
    """Beam ranks items 1, 2, 3, ...; exact scoring ranks 7, 1, 3, ... (top-2 share item 1)."""

    def recommend(self, histories, k):
        return np.tile(np.arange(1, k + 1), (len(histories), 1))

    def recommend_exact(self, histories, k):
        row = np.r_[[7, 1], np.arange(3, k + 1)]
        return np.tile(row, (len(histories), 1))


def test_beam_vs_exact_hand_case():
    from seater.evaluation import beam_vs_exact

    n = 6
    ev = EvalSet(users=np.arange(n), histories=np.zeros((n, 2), dtype=np.int64), truth=[np.array([2])] * 3 + [np.array([7])] * 3)
    out = beam_vs_exact(BeamAndExact(), ev, ks=(1, 2), n_users=100, seed=0)
    assert out["n_users"] == 6
    # beam [1, 2]: users with truth 2 hit at rank 2; exact [7, 1]: users with truth 7 hit at rank 1
    assert out["beam_recall@1"] == 0.0 and out["beam_recall@2"] == 0.5
    assert out["recall@1"] == 0.5 and out["recall@2"] == 0.5
    assert out["ndcg@2"] == pytest.approx(0.5) and out["beam_ndcg@2"] == pytest.approx(0.5 / np.log2(3))
    assert out["overlap@1"] == 0.0 and out["overlap@2"] == 0.5  # {1, 2} vs {7, 1}
    # a sample of users, reproducible per seed; rows taken from given beam predictions
    a = beam_vs_exact(BeamAndExact(), ev, ks=(2,), n_users=3, seed=1)
    b = beam_vs_exact(BeamAndExact(), ev, ks=(2,), n_users=3, seed=1, beam_predictions=BeamAndExact().recommend(ev.histories, 2))
    assert a["n_users"] == 3 and a["recall@2"] == b["recall@2"] and a["beam_recall@2"] == b["beam_recall@2"]
    with pytest.raises(ConfigError, match="recommend_exact"):
        beam_vs_exact(LastItemPlusOne(), ev, ks=(2,), n_users=3)


def test_recommend_checks_k_and_the_kind_of_histories():
    """Every retriever: k must be a positive integer, histories integer ids (3.5 would silently become item 3)."""
    from baselines.popular import MostPopular
    from seater.errors import ConfigError, DataError
    from seater.retriever import check_histories, check_topk

    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match=r"who: k \(items per user\) must be an integer >= 1"):
            check_topk(bad, "who")
    with pytest.raises(DataError, match="histories must hold integer item ids, got dtype float64"):
        check_histories(np.array([[1.5, 2.0]]), 5, "who")
    assert check_histories(np.zeros((0, 3)), 5, "who").shape == (0, 3)  # an empty batch of any dtype is fine
    split = leave_one_out(make_synthetic(n_users=30, n_items=20, seed=0))
    pop = MostPopular().fit(split)
    with pytest.raises(ConfigError, match="popular.recommend: k"):
        pop.recommend(split.test.histories[:2], -1)
