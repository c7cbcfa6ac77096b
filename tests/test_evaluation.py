"""evaluate_retriever: batching, metrics agreement, contract checks; check_predictions rates."""

import numpy as np
import pytest

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
