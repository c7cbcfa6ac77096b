"""SASRec, GRU4Rec, BERT4Rec on small planted-structure data, and the pieces they share."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from baselines.bert4rec import BERT4Rec, BERT4RecConfig, BERT4RecEncoder, cloze_mask
from baselines.dual_encoder import item_windows, length_bucketed_order, transition_windows
from baselines.gru4rec import GRU4Rec
from baselines.popular import MostPopular
from baselines.sasrec import SASRec, SASRecConfig, SASRecEncoder
from seater.data.splits import make_split
from seater.data.synthetic import make_synthetic
from seater.errors import ConfigError, DataError
from seater.metrics import evaluate
from seater.retriever import RETRIEVERS

MODELS = {"sasrec": SASRec, "gru4rec": GRU4Rec, "bert4rec": BERT4Rec}
# small and quick: a few hundred users, CPU seconds per model
FAST = dict(dim=32, epochs=8, patience=8, lr=5e-3, batch_size=64, device="cpu")
# the Cloze objective trains on ~20% of the positions per epoch, so BERT4Rec gets more epochs
EPOCHS = {"sasrec": 8, "gru4rec": 8, "bert4rec": 16}


@pytest.fixture(scope="module")
def split():
    torch.set_num_threads(1)
    return make_split(make_synthetic(400, 100, seed=0), "user_split", seed=0)


@pytest.fixture(scope="module")
def popular_recall(split):
    pred = MostPopular().fit(split).recommend(split.test.histories, 10)
    return evaluate(pred, split.test.truth, [10])["recall@10"]


@pytest.fixture(scope="module")
def fitted(split):
    return {name: cls(**{**FAST, "epochs": EPOCHS[name], "patience": EPOCHS[name]}).fit(split) for name, cls in MODELS.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_loss_falls_and_recall_beats_most_popular_on_held_out_users(name, fitted, split, popular_recall):
    model = fitted[name]
    losses = [h["train/loss"] for h in model.history_]
    assert losses[-1] < 0.8 * losses[0]
    recall = evaluate(model.recommend(split.test.histories, 10), split.test.truth, [10])["recall@10"]
    # observed (seed 0): popular .13; sasrec .63, gru4rec .64, bert4rec .54
    assert recall > 2 * popular_recall, (recall, popular_recall)
    info = model.fit_info_
    assert info["epochs"] == EPOCHS[name] and info["samples_per_second"] > 0 and 0 <= info["best_epoch"] < EPOCHS[name]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommend_is_brute_force_inner_product_and_embeddings_have_no_padding_row(name, fitted, split):
    model = fitted[name]
    emb = model.item_embeddings()
    assert emb.shape == (split.n_items, 32) and emb.dtype == np.float32
    hist = split.test.histories[:16]
    scores = model.user_embeddings(hist) @ emb.T  # (16, N), column j = item j + 1
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :7] + 1
    np.testing.assert_array_equal(model.recommend(hist, 7), expected)


def test_exclude_history_removes_exactly_the_history_items(fitted, split):
    model = fitted["sasrec"]
    hist = split.test.histories[:50]
    plain = model.recommend(hist, 30)
    model.cfg.exclude_history = True
    try:
        excl = model.recommend(hist, 10)
    finally:
        model.cfg.exclude_history = False
    for h, p, e in zip(hist, plain, excl):
        seen = set(h[h > 0].tolist())
        assert not seen & set(e.tolist())
        np.testing.assert_array_equal(e, [i for i in p if i not in seen][:10])
    assert any(set(h[h > 0].tolist()) & set(p[:10].tolist()) for h, p in zip(hist, plain))  # excluding mattered


def test_sasrec_is_causal():
    torch.manual_seed(0)
    enc = SASRecEncoder(50, SASRecConfig(dim=16, max_len=8)).eval()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    changed_after = seq.clone()
    changed_after[0, 5:] = torch.tensor([40, 41, 42])
    changed_before = seq.clone()
    changed_before[0, 2] = 30
    with torch.no_grad():
        out, after, before = enc(seq), enc(changed_after), enc(changed_before)
    torch.testing.assert_close(out[:, :5], after[:, :5])  # steps <= 4 ignore items at 5..7
    assert not torch.allclose(out[:, 4], before[:, 4])  # but depend on earlier items


@pytest.mark.parametrize("encoder", [SASRecEncoder, BERT4RecEncoder])
def test_trimming_leading_padding_is_exact_for_attention_encoders(encoder):
    """Training batches are cut to their longest window; outputs at real items must not change."""
    torch.manual_seed(0)
    cfg = SASRecConfig(dim=16, max_len=8) if encoder is SASRecEncoder else BERT4RecConfig(dim=16, max_len=8)
    enc = encoder(50, cfg).eval()
    seq = torch.tensor([[0, 0, 0, 0, 3, 7, 9, 11], [0, 0, 0, 0, 0, 0, 2, 5]])
    with torch.no_grad():
        full, trimmed = enc(seq), enc(seq[:, 4:])
    torch.testing.assert_close(full[0, 4:], trimmed[0])
    torch.testing.assert_close(full[1, 6:], trimmed[1, 2:])


def test_length_bucketed_order_is_a_permutation_with_homogeneous_batches():
    lengths = torch.randint(1, 50, (1000,), generator=torch.Generator().manual_seed(1))
    order = length_bucketed_order(lengths, 10, torch.Generator().manual_seed(0), group=100)
    assert sorted(order.tolist()) == list(range(1000))
    spread = torch.stack([lengths[b].max() - lengths[b].min() for b in order.split(10)]).float().mean()
    assert spread < 5  # a random batch of 10 spans ~40; observed ~0.5


def test_bert4rec_is_bidirectional():
    torch.manual_seed(0)
    enc = BERT4RecEncoder(50, BERT4RecConfig(dim=16, max_len=8)).eval()
    seq = torch.tensor([[0, 0, 3, 7, 9, 11, 2, 5]])
    later = seq.clone()
    later[0, 7] = 44
    with torch.no_grad():
        assert not torch.allclose(enc(seq)[:, 3], enc(later)[:, 3])


def test_bert4rec_masking_rate_is_respected():
    gen = torch.Generator().manual_seed(0)
    windows = torch.randint(1, 100, (4000, 20), generator=gen)
    windows[:2000, :5] = 0  # left padding on half of the rows
    inputs, targets = cloze_mask(windows, 0.3, 101, gen)
    masked = inputs == 101
    real = windows > 0
    assert not (masked & ~real).any()  # padding is never masked
    rate = masked.sum().item() / real.sum().item()
    assert abs(rate - 0.3) < 0.01, rate  # observed ~0.300
    assert torch.equal(targets[masked], windows[masked]) and (targets[~masked] == 0).all()
    assert torch.equal(inputs[~masked], windows[~masked])
    short = torch.tensor([[0, 0, 0, 4]])
    assert (cloze_mask(short, 0.01, 101, gen)[0] == 101).sum() == 1  # at least one mask per row


def test_training_windows_cover_every_transition_once():
    inputs, targets = transition_windows([np.array([1, 2, 3, 4, 5, 6]), np.array([7, 8])], max_len=3)
    np.testing.assert_array_equal(inputs, [[3, 4, 5], [0, 1, 2], [0, 0, 7]])
    np.testing.assert_array_equal(targets, [[4, 5, 6], [0, 2, 3], [0, 0, 8]])
    np.testing.assert_array_equal(item_windows([np.array([1, 2, 3, 4])], 3), [[2, 3, 4], [0, 0, 1]])


def test_sampled_softmax_with_popularity_logq_learns(split, popular_recall):
    model = SASRec(**{**FAST, "epochs": 5, "patience": 5}, loss="sampled", n_negatives=40, negative_sampling="popularity").fit(split)
    recall = evaluate(model.recommend(split.test.histories, 10), split.test.truth, [10])["recall@10"]
    assert recall > 2 * popular_recall, (recall, popular_recall)  # observed .44 vs .13


def test_registration_holds_every_default_and_bad_params_raise():
    for name, cls in MODELS.items():
        entry = RETRIEVERS.get(name)
        assert entry.factory is cls
        assert set(entry.defaults) == {f for f in cls.config_cls.__dataclass_fields__}
        cls(**entry.defaults)  # the registered defaults construct the model
    with pytest.raises(ConfigError, match="n_layer"):
        SASRec(n_layer=3)
    with pytest.raises(ConfigError, match="loss"):
        GRU4Rec(loss="bpr")
    with pytest.raises(ConfigError, match="mask_prob"):
        BERT4Rec(mask_prob=0.0)
    with pytest.raises(ConfigError, match="lr_schedule"):
        SASRec(lr_schedule="step")
    assert SASRec(lr_schedule="cosine").cfg.lr_schedule == "cosine"
    with pytest.raises(ConfigError, match="fit"):
        SASRec().recommend(np.zeros((1, 20), dtype=np.int64), 5)


def test_values_of_the_wrong_kind_and_right_padded_histories_are_named():
    """make_config promised a ConfigError: "0.2" for dropout raised a TypeError, and "false" for a flag
    counted as true. A right-padded history row made the model read padding as the latest item."""
    from seater.data.splits import leave_one_out

    for cls, kw, match in ((SASRec, {"dropout": "0.2"}, "dropout must be a number"),
                           (SASRec, {"exclude_history": "false"}, "exclude_history must be true or false"),
                           (BERT4Rec, {"mask_prob": "0.5"}, "mask_prob must be a number")):
        with pytest.raises(ConfigError, match=match):
            cls(**kw)
    SASRec(grad_clip=None)  # None disables clipping, as in the training loop
    split = leave_one_out(make_synthetic(40, 30, seed=0))
    model = SASRec(device="cpu", dim=16, n_heads=1, max_len=8, epochs=1).fit(split)
    with pytest.raises(DataError, match="left-padded.*row 1"):
        model.recommend(np.array([[0, 0, 3, 4], [3, 4, 0, 0]]), 5)
    assert model.user_embeddings(np.zeros((0, 4), np.int64)).shape == (0, 16)
    with pytest.raises(DataError, match="no training sequences"):
        MostPopular().fit(replace(split, train_sequences=[]))


def test_three_item_users_under_leave_one_out_are_one_clear_error_for_pair_models():
    """Their training sequences hold one item: SASRec / GRU4Rec have no window to predict (SASRec failed
    inside torch.cat), while BERT4Rec's Cloze windows and most-popular counts still train (audit)."""
    from seater.data import Interactions
    from seater.data.splits import make_split
    from seater.errors import DataError

    seqs = [np.array([1, 2, 3]), np.array([2, 3, 1]), np.array([3, 1, 2])]
    inter = Interactions(sequences=seqs, n_items=3, user_ids=np.arange(3), item_ids=np.arange(-1, 3), name="tiny")
    split = make_split(inter, "leave_one_out")
    assert len(split.train) == 0
    for model in (SASRec(device="cpu", dim=8, n_heads=1, max_len=4, epochs=1), GRU4Rec(device="cpu", dim=8, max_len=4, epochs=1)):
        with pytest.raises(DataError, match=f"tiny: no training window for {model.name}"):
            model.fit(split)
    BERT4Rec(device="cpu", dim=8, n_heads=1, max_len=4, epochs=1).fit(split)
    MostPopular().fit(split)
