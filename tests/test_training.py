"""The shared training loop and exact chunked top-K, on tiny problems with known answers."""

from __future__ import annotations

import copy

import pytest
import torch

from seater.errors import ConfigError
from seater.topk import topk_inner_product
from seater.training import CHECKPOINT_NAME, TrainConfig, load_checkpoint, seed_everything, train_config, train_loop


class Recorder:
    def __init__(self):
        self.metrics: list[tuple[int, dict]] = []

    def log_params(self, params):
        pass

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))

    def log_artifact(self, path):
        pass

    def set_status(self, status):
        pass


def _regression(seed: int = 0):
    """y = X w* + noise; a dropout layer makes the loop's RNG handling matter for resume."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    y = x @ torch.randn(8, 1, generator=g) + 0.01 * torch.randn(256, 1, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))

    def batches(epoch):
        perm = torch.randperm(256, generator=torch.Generator().manual_seed(epoch))
        return [(x[perm[i : i + 32]], y[perm[i : i + 32]]) for i in range(0, 256, 32)]

    def step_loss(batch):
        xb, yb = batch
        return {"loss": torch.nn.functional.mse_loss(model(xb), yb), "abs": (model(xb) - yb).abs().mean()}

    def validate():
        return {"neg_mse": -torch.nn.functional.mse_loss(model(x), y).item()}

    return model, batches, step_loss, validate


def _cfg(**kw):
    base = dict(epochs=6, lr=0.05, patience=3, val_metric="neg_mse", device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_falls_and_tracker_gets_epoch_metrics():
    model, batches, step_loss, validate = _regression()
    tracker = Recorder()
    res = train_loop(model, batches, step_loss, validate, _cfg(), tracker=tracker)
    losses = [h["train/loss"] for h in res.history]
    assert losses[-1] < 0.2 * losses[0]
    assert res.samples_seen == 6 * 256 and res.epochs_run == 6 and res.samples_per_second > 0
    steps = [s for s, _ in tracker.metrics]
    assert steps == list(range(6))
    assert {"train/loss", "train/abs", "valid/neg_mse", "time/epoch_s"} <= set(tracker.metrics[0][1])


def test_the_time_spent_making_batches_is_logged_per_epoch():
    import time

    model, batches, step_loss, validate = _regression()

    def slow_batches(epoch):  # 8 batches, each 20 ms to make
        for b in batches(epoch):
            time.sleep(0.02)
            yield b

    res = train_loop(model, slow_batches, step_loss, validate, _cfg(epochs=2))
    for h in res.history:
        assert 0.16 <= h["time/batches_s"] <= h["time/epoch_s"]
    fast = train_loop(model, batches, step_loss, validate, _cfg(epochs=1)).history[0]
    assert fast["time/batches_s"] < 0.05


def test_early_stopping_restores_best_weights():
    model = torch.nn.Linear(2, 1)
    scripted = iter([0.1, 0.5, 0.3, 0.2, 0.4, 0.9])  # best at epoch 1, epochs 2-4 worse -> stop after epoch 4
    snapshots = []

    def validate():
        snapshots.append(copy.deepcopy(model.state_dict()))
        return {"ndcg@10": next(scripted)}

    def step_loss(batch):
        return (model(batch) ** 2).mean()

    res = train_loop(model, lambda e: [torch.ones(4, 2)], step_loss, validate, TrainConfig(epochs=6, patience=3, device="cpu", progress=False, lr=0.1))
    assert res.best_epoch == 1 and res.epochs_run == 5 and res.stopped_early
    assert res.best_metrics == {"ndcg@10": 0.5}
    for key, val in model.state_dict().items():
        assert torch.equal(val, snapshots[1][key])
        assert not torch.equal(val, snapshots[4][key])


@pytest.mark.parametrize("schedule, ema", [("constant", 0.0), ("cosine", 0.0), ("constant", 0.9)])
def test_resume_after_interruption_matches_uninterrupted_run(tmp_path, schedule, ema):
    model_a, batches, step_loss, validate = _regression()
    res_a = train_loop(model_a, batches, step_loss, validate, _cfg(patience=10, lr_schedule=schedule, ema=ema))

    model_b, batches_b, step_loss_b, validate_b = _regression()

    def crashing(epoch):
        if epoch == 3:
            raise KeyboardInterrupt
        return batches_b(epoch)

    with pytest.raises(KeyboardInterrupt):
        train_loop(model_b, crashing, step_loss_b, validate_b, _cfg(patience=10, lr_schedule=schedule, ema=ema, checkpoint_dir=str(tmp_path)))
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_NAME)  # weights_only=True works
    assert ckpt["epoch"] == 2
    # disturb the global RNG as a fresh process would: the checkpoint must restore it
    seed_everything(123)
    torch.rand(10)
    model_c, batches_c, step_loss_c, validate_c = _regression()
    from bench.tracking import RecordingTracker

    rec = RecordingTracker()
    res_c = train_loop(model_c, batches_c, step_loss_c, validate_c, _cfg(patience=10, lr_schedule=schedule, ema=ema, checkpoint_dir=str(tmp_path)),
                       tracker=rec)
    assert res_c.epochs_run == res_a.epochs_run == 6
    assert res_c.best_epoch == res_a.best_epoch
    # the resumed attempt reports the whole curve and the time of the epochs it did not run itself
    assert [c["step"] for c in rec.curves] == list(range(6))
    assert [c["metrics"]["train/loss"] for c in rec.curves] == [h["train/loss"] for h in res_a.history]
    assert res_c.resumed_seconds == pytest.approx(sum(h["time/epoch_s"] + h["time/valid_s"] for h in res_c.history[:3]))
    for key, val in model_a.state_dict().items():
        assert torch.equal(val, model_c.state_dict()[key])


def test_ema_validates_and_keeps_the_average_while_training_goes_on_from_the_raw_weights():
    # loss = w: every Adam step moves w by lr / (1 + eps) (see test_lr_schedule_sets_each_epochs_step),
    # so the raw weight after step t is -0.1 t and its moving average is computed here by hand
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.zeros(()))
    seen, validated = [], []

    def step_loss(batch):
        seen.append(float(model.w.detach()))
        return model.w * batch.sum()

    def validate():
        validated.append(float(model.w))
        return {"ndcg@10": -float(model.w)}

    cfg = TrainConfig(epochs=3, lr=0.1, ema=0.5, patience=10, device="cpu", progress=False)
    train_loop(model, lambda e: [torch.ones(1)] * 3, step_loss, validate, cfg)
    raw = [-0.1 * t for t in range(10)]
    assert seen == pytest.approx(raw[:9], abs=1e-5)  # training never continued from the average
    avg = [raw[1]]
    for t in range(2, 10):
        avg.append(0.5 * avg[-1] + 0.5 * raw[t])
    assert validated == pytest.approx([avg[2], avg[5], avg[8]], abs=1e-5)
    assert float(model.w.detach()) == pytest.approx(avg[8], abs=1e-5)  # the best epoch's average is returned


@pytest.mark.parametrize("value", [-0.1, 1.0, "0.9", True])
def test_ema_outside_0_1_is_a_config_error(value):
    with pytest.raises(ConfigError, match="training parameter ema must be in"):
        TrainConfig(ema=value)


def test_checkpoint_from_other_config_is_refused(tmp_path):
    model, batches, step_loss, validate = _regression()
    train_loop(model, batches, step_loss, validate, _cfg(epochs=1, checkpoint_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="lr"):
        train_loop(model, batches, step_loss, validate, _cfg(epochs=2, lr=0.01, checkpoint_dir=str(tmp_path)))


def test_checkpoint_of_another_model_or_tree_is_refused(tmp_path):
    """The training config alone let a killed TIGER resume on a rebuilt tree or with other model
    settings (silently), and a checkpoint of other layer sizes failed inside torch."""
    from seater.training import resume_identity

    model, batches, step_loss, validate = _regression()
    ident = resume_identity({"d_model": 8, "user_token": "history", "eval_batch_size": 64, "lr": 0.05, "hidden": (4, 2)},
                            ignore=("eval_batch_size",), tree="abc")
    assert ident == {"d_model": 8, "user_token": "history", "hidden": [4, 2], "tree": "abc"}  # lr: TrainConfig's own check
    train_loop(model, batches, step_loss, validate, _cfg(epochs=1, checkpoint_dir=str(tmp_path)), identity=ident)
    for other in ({**ident, "tree": "abd"}, {**ident, "user_token": "none"}, {k: v for k, v in ident.items() if k != "hidden"}):
        with pytest.raises(ConfigError, match="another model or tree"):
            train_loop(model, batches, step_loss, validate, _cfg(epochs=2, checkpoint_dir=str(tmp_path)), identity=other)
    wider = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="model of another shape"):
        train_loop(wider, batches, step_loss, validate, _cfg(epochs=2, checkpoint_dir=str(tmp_path)))
    res = train_loop(model, batches, step_loss, validate, _cfg(epochs=2, checkpoint_dir=str(tmp_path)), identity=dict(ident))
    assert res.epochs_run == 2  # the same identity resumes


def test_resume_identity_is_plain_and_leaves_out_parameters_added_at_their_defaults(tmp_path):
    """A numpy scalar (a sweep value from np.linspace) made the checkpoint unreadable under
    weights_only=True; a parameter added after a run was killed (at its old-behaviour default) must
    not stop it resuming, as it does not change its cell id."""
    import numpy as np

    import seater.model.retriever  # noqa: F401  (registers "seater")
    from seater.training import resume_identity

    ident = resume_identity({"tau": np.float64(0.07), "sizes": (np.int64(1), 2)}, tree="t")
    assert ident == {"tau": 0.07, "sizes": [1, 2], "tree": "t"} and type(ident["tau"]) is float and type(ident["sizes"][0]) is int
    model, batches, step_loss, validate = _regression()
    train_loop(model, batches, step_loss, validate, _cfg(epochs=1, checkpoint_dir=str(tmp_path)), identity=ident)
    res = train_loop(model, batches, step_loss, validate, _cfg(epochs=2, checkpoint_dir=str(tmp_path)), identity=dict(ident))
    assert res.epochs_run == 2  # read back under weights_only=True

    old = {"d_model": 64, "use_rank": True}
    assert resume_identity({**old, "rank_item_token": False}, retriever="seater") == old
    assert resume_identity({**old, "rank_item_token": True}, retriever="seater") == {**old, "rank_item_token": True}


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_lr_schedule_sets_each_epochs_step(schedule):
    # loss = w has gradient 1, so every Adam step moves w by lr / (1 + eps): after one batch per epoch
    # w has fallen by the sum of the epochs' learning rates, hand-computed here
    w = torch.nn.Parameter(torch.zeros(()))
    model = torch.nn.Module()
    model.w = w
    lrs = [0.1] * 4 if schedule == "constant" else [0.1, 0.1 * (1 + 0.5**0.5) / 2, 0.05, 0.1 * (1 - 0.5**0.5) / 2]
    cfg = TrainConfig(epochs=4, lr=0.1, lr_schedule=schedule, patience=10, device="cpu", progress=False)
    res = train_loop(model, lambda e: [torch.ones(1)], lambda b: model.w * b.sum(), lambda: {"ndcg@10": -float(model.w)}, cfg)
    assert [h["train/lr"] for h in res.history] == pytest.approx(lrs, rel=1e-12)
    assert float(w.detach()) == pytest.approx(-sum(lrs), rel=1e-6)


def test_unknown_lr_schedule_is_a_config_error():
    with pytest.raises(ConfigError, match="lr_schedule.*'step'"):
        _cfg(lr_schedule="step")


def test_train_config_takes_the_shared_fields_and_the_fixed_ones_on_top():
    from dataclasses import dataclass

    @dataclass
    class ModelConfig:
        dim: int = 64  # the model's own: not a training field
        epochs: int = 7
        lr: float = 0.01
        lr_schedule: str = "cosine"
        device: str = "auto"

    cfg = train_config(ModelConfig(), device="cpu", seed=3)
    assert (cfg.epochs, cfg.lr, cfg.lr_schedule, cfg.device, cfg.seed) == (7, 0.01, "cosine", "cpu", 3)
    assert cfg.patience == TrainConfig.patience  # absent from the model: the loop's default
    assert train_config({"epochs": 2, "dim": 8}, epochs=5).epochs == 5  # dicts too; fixed wins
    with pytest.raises(ConfigError, match="lr_schedule"):
        train_config(ModelConfig(lr_schedule="linear"))


@pytest.mark.parametrize("field", ["epochs", "patience", "batch_size"])
@pytest.mark.parametrize("value", [2.5, "3", True, 0, -2])
def test_counts_must_be_positive_integers(field, value):
    with pytest.raises(ConfigError, match=f"training parameter {field} must be an integer >= 1"):
        TrainConfig(**{field: value})


def test_cosine_checkpoint_refuses_other_epochs(tmp_path):
    # constant lr: more epochs may continue an interrupted run; cosine: epochs shape the decay
    model, batches, step_loss, validate = _regression()
    train_loop(model, batches, step_loss, validate, _cfg(epochs=2, lr_schedule="cosine", checkpoint_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="epochs"):
        train_loop(model, batches, step_loss, validate, _cfg(epochs=4, lr_schedule="cosine", checkpoint_dir=str(tmp_path)))


def test_checkpoint_from_before_lr_schedule_resumes_as_constant(tmp_path):
    model, batches, step_loss, validate = _regression()
    train_loop(model, batches, step_loss, validate, _cfg(epochs=1, checkpoint_dir=str(tmp_path)))
    ckpt = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    del ckpt["config"]["lr_schedule"]  # as written before the field existed
    torch.save(ckpt, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ConfigError, match="lr_schedule"):
        train_loop(model, batches, step_loss, validate, _cfg(epochs=2, lr_schedule="cosine", checkpoint_dir=str(tmp_path)))
    res = train_loop(model, batches, step_loss, validate, _cfg(epochs=2, checkpoint_dir=str(tmp_path)))
    assert res.epochs_run == 2


def test_missing_val_metric_is_a_config_error():
    model, batches, step_loss, _ = _regression()
    with pytest.raises(ConfigError, match="recall@10"):
        train_loop(model, batches, step_loss, lambda: {"recall@10": 0.0}, _cfg(epochs=1))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_topk_matches_brute_force(chunk):
    g = torch.Generator().manual_seed(0)
    q, items = torch.randn(9, 5, generator=g), torch.randn(50, 5, generator=g)
    exclude = torch.randint(0, 51, (9, 6), generator=g)  # includes padding 0
    scores, ids = topk_inner_product(q, items, 10, exclude=exclude, chunk=chunk)
    full = q @ items.T  # (9, 50), column j = item j + 1
    for b in range(9):
        banned = {int(i) for i in exclude[b] if i > 0}
        ranked = [j + 1 for j in full[b].argsort(descending=True).tolist() if j + 1 not in banned][:10]
        assert ids[b].tolist() == ranked
        assert torch.allclose(scores[b], full[b, [r - 1 for r in ranked]])


def test_topk_pads_with_zero_when_too_few_items():
    q, items = torch.ones(2, 3), torch.eye(3)
    _, ids = topk_inner_product(q, items, 5, exclude=torch.tensor([[1, 0], [0, 0]]), chunk=2)
    assert ids[0, :2].tolist() in ([2, 3], [3, 2]) and ids[0, 2:].tolist() == [0, 0, 0]
    assert sorted(ids[1, :3].tolist()) == [1, 2, 3] and ids[1, 3:].tolist() == [0, 0]


@pytest.mark.parametrize("field, value", [("lr", float("nan")), ("lr", float("inf")), ("weight_decay", -1.0), ("grad_clip", float("nan"))])
def test_training_numbers_that_torch_would_reject_deep_inside(field, value):
    from seater.errors import ConfigError

    with pytest.raises(ConfigError, match=f"training parameter {field} must be"):
        TrainConfig(**{field: value})
