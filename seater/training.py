"""The one training loop every neural model uses (dual encoders, SEATER, TIGER).

The model supplies three callables and the loop does the rest: AdamW (constant learning rate or a
cosine decay), bf16 autocast on CUDA, gradient clipping, an optional moving average of the weights,
validation after every epoch with early stopping on one metric, restore of the best weights, a
checkpoint per epoch (resumable after an interruption), per-epoch metrics to the tracker and a tqdm
progress bar.

Usage::

    cfg = TrainConfig(epochs=50, lr=1e-3, val_metric="ndcg@10", checkpoint_dir="/tmp/ckpt")
    result = train_loop(model, batches=lambda epoch: loader(epoch), step_loss=lambda b: model.loss(b),
                        validate=lambda: {"ndcg@10": ...}, cfg=cfg, tracker=tracker)

Determinism: the loop seeds python/numpy/torch from `cfg.seed`; `batches(epoch)` should draw its
shuffling from `epoch` (not from a global generator) so that a resumed run replays the same data.
Checkpoints hold only tensors and plain Python values, so `torch.load(weights_only=True)` reads them.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from seater.device import resolve_device
from seater.errors import ConfigError, SeaterError
from seater.tracking import NullTracker, Tracker
from seater.trees.checks import check_int

CHECKPOINT_NAME = "last.pt"
# config fields that may change between an interrupted run and its resumption
_RESUMABLE_FIELDS = {"epochs", "progress", "checkpoint_dir", "device"}
# config fields added after checkpoints existed; their defaults reproduce the older behaviour
_ADDED_FIELDS = ("lr_schedule", "ema")
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    epochs: int = 200  # upper bound; early stopping usually ends sooner
    batch_size: int = 256  # read by the model's `batches`, not by the loop itself
    lr: float = 1e-3  # AdamW learning rate
    lr_schedule: str = "constant"  # "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, set at the start of each epoch
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    grad_clip: float | None = 5.0  # max global grad norm; None disables clipping
    # > 0: validate, keep and return an exponential moving average of the weights (this decay per
    # step, e.g. 0.999 ~ the last 1,000 steps) instead of the last step's; 0 = off
    ema: float = 0.0
    patience: int = 4  # epochs without improvement of val_metric before stopping
    val_metric: str = "ndcg@10"  # key of validate()'s dict; higher is better
    amp: bool = True  # bf16 autocast; only takes effect on CUDA
    device: str = "auto"  # "auto" = CUDA when present
    seed: int = 0  # seeds python, numpy and torch at the start of the loop
    checkpoint_dir: str | None = None  # where last.pt is written each epoch and resumed from
    progress: bool = True  # tqdm bar over the batches of an epoch

    def __post_init__(self) -> None:
        for name in ("epochs", "patience", "batch_size"):
            check_int(f"training parameter {name}", getattr(self, name), 1)
        if not 0 < self.lr < math.inf:  # nan too
            raise ConfigError(f"training parameter lr must be a finite number > 0, got {self.lr}")
        if not 0 <= self.weight_decay < math.inf:
            raise ConfigError(f"training parameter weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"training parameter lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"training parameter grad_clip must be > 0 or None, got {self.grad_clip}")
        if isinstance(self.ema, bool) or not isinstance(self.ema, (int, float)) or not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"training parameter ema must be in [0, 1) (0 = off), got {self.ema!r}")


def train_config(source: Any, **fixed: Any) -> TrainConfig:
    """The TrainConfig of a model: every TrainConfig field that `source` (the model's config object or
    params dict) also has, then `fixed` (what the model decides itself: device, seed, ...) on top.

    The one mapping from model parameters to the loop's, used both to check a model's parameters when it
    is configured and to train it, so a new training parameter needs no edit in each model.
    """
    values = source if isinstance(source, dict) else vars(source)
    own = {f.name: values[f.name] for f in fields(TrainConfig) if f.name in values}
    return TrainConfig(**{**own, **fixed})


@dataclass
class TrainResult:
    best_epoch: int  # 0-based epoch whose weights were restored
    best_metrics: dict[str, float]  # validate() output at best_epoch
    epochs_run: int  # epochs trained in total (including those before a resume)
    train_seconds: float  # wall time of training + validation, summed over all epochs
    samples_seen: int  # training rows processed (first dimension of every batch)
    history: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch
    stopped_early: bool = False
    resumed_seconds: float = 0.0  # train_seconds of the epochs restored from a checkpoint (run by an earlier process)

    @property
    def samples_per_second(self) -> float:
        """Training throughput over the pure training time (validation excluded)."""
        fit_s = sum(h["time/epoch_s"] for h in self.history)
        return self.samples_seen / fit_s if fit_s > 0 else 0.0


def bf16_autocast(device: torch.device | str = "cuda"):
    """The training loop's mixed precision: bf16 autocast on CUDA, nothing elsewhere (a fresh context per call)."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) so a run is repeatable from `seed`."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _batch_rows(batch: Any) -> int:
    """Rows in a batch: first dimension of its first tensor (tensor, tuple/list or dict)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for x in items:
        if isinstance(x, torch.Tensor) and x.dim() > 0:
            return int(x.shape[0])
    return 0


def _rng_state() -> dict[str, Any]:
    """Every RNG state as tensors/ints, so the checkpoint loads with weights_only=True."""
    version, mt, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python_version": version,
        "python_mt": torch.tensor(mt, dtype=torch.int64),
        "python_gauss": gauss,
        "numpy_keys": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_mt"].tolist()), state["python_gauss"]))
    np.random.set_state(
        ("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _config_fingerprint(cfg: TrainConfig) -> dict[str, Any]:
    """The fields a resumed run must share with the checkpoint (epochs too when they shape the cosine decay)."""
    free = _RESUMABLE_FIELDS - {"epochs"} if cfg.lr_schedule == "cosine" else _RESUMABLE_FIELDS
    return {k: v for k, v in asdict(cfg).items() if k not in free}


def resume_identity(params: dict[str, Any], ignore: tuple[str, ...] = (), retriever: str | None = None, **extra: Any) -> dict[str, Any]:
    """`train_loop`'s identity from a model's parameters: all but the TrainConfig fields (checked on
    their own) and `ignore` (those that only decode or report), plus `extra` (e.g. ``tree=tree.hash()``).

    `retriever`: its registry name; parameters registered as added later are left out at their defaults,
    as in cell ids, so a run killed before a parameter existed still resumes after. Values become plain
    Python (a numpy scalar would make the checkpoint unreadable under ``weights_only=True``).
    """
    if retriever is not None:
        from seater.retriever import RETRIEVERS

        if retriever in RETRIEVERS:
            params = RETRIEVERS.identity_params(retriever, params)
    skip = {f.name for f in fields(TrainConfig)} | set(ignore)
    return _plain({**{k: v for k, v in params.items() if k not in skip}, **extra})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """The learning rate of `epoch` (0-based): a function of the epoch alone, so a resumed run replays it.

    Cosine decays from cfg.lr at epoch 0 towards 0 at cfg.epochs (the last epoch still gets a small
    step); early stopping does not shorten it, so the curve is the same for every run of one config.
    """
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    return cfg.lr


def _swap_in(model: torch.nn.Module, ema: AveragedModel) -> list[torch.Tensor]:
    """Put the averaged parameters into `model` (which validates and is saved as the best); returns its own."""
    raw = [p.detach().clone() for p in model.parameters()]
    _copy_params(model, [p.detach() for p in ema.module.parameters()])
    return raw


@torch.no_grad()
def _copy_params(model: torch.nn.Module, values: list[torch.Tensor]) -> None:
    for p, v in zip(model.parameters(), values, strict=True):
        p.copy_(v)


def _save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: an interruption during the write leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `train_loop` (tensors and plain values only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params, grad_clip: float | None) -> None:
    """One update from `loss`: clear the gradients, backward, clip their norm to `grad_clip` (None: no
    clipping), step. The training loop's update, and what the speed benchmarks time as a step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def _timed(batches: Iterable[Any], waited: list[float]) -> Iterator[Any]:
    """`batches`, adding the seconds spent making each batch to ``waited[0]``: how much of an
    epoch the host spends on data rather than on steps (on CUDA, steps queue asynchronously, so
    a loader that cannot keep up shows here too)."""
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        waited[0] += time.perf_counter() - t0
        yield batch


def train_loop(
    model: torch.nn.Module,
    batches: Callable[[int], Iterable[Any]],
    step_loss: Callable[[Any], torch.Tensor | dict[str, torch.Tensor]],
    validate: Callable[[], dict[str, float]],
    cfg: TrainConfig,
    tracker: Tracker | None = None,
    identity: dict[str, Any] | None = None,
) -> TrainResult:
    """Train `model` until `cfg.epochs` or early stopping; the best weights are restored on return.

    batches(epoch): the epoch's batches, already tensors on the device.
    step_loss(batch): the loss tensor, or a dict with key "loss" (other keys are logged as train/<key>).
    validate(): metrics (higher is better) computed in eval mode under no_grad; must hold cfg.val_metric.
    identity: what else a resumed run must share with its checkpoint beyond `cfg` (the model's own
    settings, the tree's hash: `resume_identity`), plain values; a checkpoint that recorded another
    is refused, not silently trained on (one written before this check recorded none and resumes).
    """
    tracker = tracker or NullTracker()
    device = resolve_device(cfg.device)
    model.to(device)
    use_amp = cfg.amp and device.type == "cuda"
    seed_everything(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # parameters only: buffers (e.g. integer lookup tables) are not averaged
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema > 0 else None

    start_epoch, best_value, best_epoch, bad_epochs, samples_seen, finished = 0, -math.inf, -1, 0, 0, False
    best_metrics: dict[str, float] = {}
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = []
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None

    if ckpt_path is not None and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        saved = {**{k: getattr(TrainConfig, k) for k in _ADDED_FIELDS}, **ckpt["config"]}
        now = _config_fingerprint(cfg)
        diff = sorted(k for k in now if k in saved and saved[k] != now[k])  # the fields both record
        if diff:
            raise ConfigError(
                f"checkpoint {ckpt_path} was written with a different training config ({', '.join(diff)}); "
                "use another checkpoint_dir or delete it"
            )
        if identity is not None and "identity" in ckpt:
            diff = sorted(k for k in set(identity) | set(ckpt["identity"]) if identity.get(k) != ckpt["identity"].get(k))
            if diff:
                raise ConfigError(f"checkpoint {ckpt_path} was written for another model or tree ({', '.join(diff)} differ); "
                                  "use another checkpoint_dir or delete it")
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as e:  # other layer sizes: a missing / unexpected key or a size mismatch
            raise ConfigError(f"checkpoint {ckpt_path} holds a model of another shape ({str(e).splitlines()[0]}); "
                              "use another checkpoint_dir or delete it") from None
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        start_epoch, best_value, best_epoch = ckpt["epoch"] + 1, ckpt["best_value"], ckpt["best_epoch"]
        bad_epochs, samples_seen, finished = ckpt["bad_epochs"], ckpt["samples_seen"], ckpt["finished"]
        best_metrics, best_state, history = ckpt["best_metrics"], ckpt["best_model"], ckpt["history"]
        _set_rng_state(ckpt["rng"])
        for row in history:  # the tracker of this attempt gets the whole curve, not the resumed part only
            tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
    resumed_seconds = sum(h["time/epoch_s"] + h["time/valid_s"] for h in history)

    autocast = bf16_autocast if use_amp else contextlib.nullcontext
    for epoch in range(start_epoch, cfg.epochs):
        if finished:
            break
        model.train()
        lr = epoch_lr(cfg, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        part_sums: dict[str, torch.Tensor] = {}
        n_steps = 0
        waited = [0.0]
        bar = tqdm(_timed(batches(epoch), waited), desc=f"epoch {epoch}", disable=not cfg.progress, leave=False)
        for batch in bar:
            with autocast():
                out = step_loss(batch)
            loss = out["loss"] if isinstance(out, dict) else out
            backward_step(loss, optimizer, model.parameters(), cfg.grad_clip)
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.detach().float()
            if isinstance(out, dict):
                for key, val in out.items():
                    if key != "loss":
                        part_sums[key] = part_sums.get(key, torch.zeros((), device=device)) + val.detach().float()
            n_steps += 1
            samples_seen += _batch_rows(batch)
            if cfg.progress and n_steps % 50 == 0:
                bar.set_postfix(loss=f"{loss_sum.item() / n_steps:.4f}")
        bar.close()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_s = time.perf_counter() - t0
        if n_steps == 0:
            raise ConfigError(f"batches({epoch}) yielded no batch; the training data is empty")
        mean_loss = loss_sum.item() / n_steps
        if not math.isfinite(mean_loss):
            raise SeaterError(f"training diverged at epoch {epoch} (mean loss {mean_loss}); lower lr or enable grad_clip")

        model.eval()
        t1 = time.perf_counter()
        raw = _swap_in(model, ema) if ema is not None else None
        with torch.no_grad():
            metrics = {k: float(v) for k, v in validate().items()}
        valid_s = time.perf_counter() - t1
        if cfg.val_metric not in metrics:
            raise ConfigError(f"val_metric {cfg.val_metric!r} is not among the validation metrics: {', '.join(sorted(metrics))}")

        row = {"epoch": float(epoch), "train/loss": mean_loss, "train/lr": lr}
        row.update({f"train/{k}": v.item() / n_steps for k, v in part_sums.items()})
        row.update({f"valid/{k}": v for k, v in metrics.items()})
        row.update({"time/epoch_s": epoch_s, "time/batches_s": waited[0], "time/valid_s": valid_s})
        history.append(row)
        tracker.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)

        value = metrics[cfg.val_metric]
        if value > best_value:
            best_value, best_epoch, best_metrics, bad_epochs = value, epoch, metrics, 0
            best_state = _cpu_state(model)
        else:
            bad_epochs += 1
        if raw is not None:
            _copy_params(model, raw)  # training goes on from the raw weights
        finished = bad_epochs >= cfg.patience
        if cfg.progress:
            tqdm.write(f"epoch {epoch}: loss {mean_loss:.4f} {cfg.val_metric} {value:.4f} (best {best_value:.4f} @ {best_epoch}) {epoch_s:.1f}s")

        if ckpt_path is not None:
            _save_checkpoint(
                ckpt_path,
                {
                    "config": _config_fingerprint(cfg),
                    **({"identity": identity} if identity is not None else {}),
                    "model": _cpu_state(model),
                    "optimizer": optimizer.state_dict(),
                    **({"ema": ema.state_dict()} if ema is not None else {}),
                    "epoch": epoch,
                    "best_value": best_value,
                    "best_epoch": best_epoch,
                    "best_metrics": best_metrics,
                    "best_model": best_state,
                    "bad_epochs": bad_epochs,
                    "samples_seen": samples_seen,
                    "finished": finished,
                    "history": history,
                    "rng": _rng_state(),
                },
            )
        if finished:
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(
        best_epoch=best_epoch,
        best_metrics=best_metrics,
        epochs_run=len(history),
        train_seconds=sum(h["time/epoch_s"] + h["time/valid_s"] for h in history),
        samples_seen=samples_seen,
        history=history,
        stopped_early=finished,
        resumed_seconds=resumed_seconds,
    )
