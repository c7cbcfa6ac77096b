"""Epoch time and training samples/s of retrievers on a real dataset, and how much of each epoch
goes to making batches (issue 7: "training samples/s and epoch time on Beauty", "an epoch that is
not bound by data loading").

Each retriever trains `epochs` epochs on the leave-one-out training samples through its own `fit`,
the path the harness takes (the shared training loop, pre-tensorised batches), with its registered
defaults unless overridden. A retriever that needs a tree gets a balanced k-ary tree over a random
item order (`balanced_random_tree`): a step's cost depends on the tree's shape (k, depth), not on
which items share a branch.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.speed import ReportedRows
from seater.errors import ConfigError
from seater.trees.checks import MAX_K, check_int


@dataclass
class EpochSpeedConfig:
    data: str
    retrievers: tuple[str, ...] = ("seater", "sasrec")  # NAME or NAME@LABEL (a variant row)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # NAME[@LABEL] -> overrides
    epochs: int = 2
    k: int = 16
    data_format: str = "auto"
    device: str = "cpu"
    threads: int = 1
    seed: int = 0
    notes: list[str] = field(default_factory=list)


def check_retrievers(cfg: EpochSpeedConfig) -> None:
    """Unknown names, retrievers that do not train in epochs and bad overrides fail before any work."""
    from bench.registry import retrievers

    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {cfg.epochs}")
    check_int("k", cfg.k, 2, MAX_K)  # before the dataset loads, not after
    retrievers().check_variants(list(cfg.retrievers), cfg.params, "retrievers")
    for label, params in cfg.params.items():
        if own := sorted({"epochs", "patience"} & set(params)):  # the command sets them: the table would misreport
            raise ConfigError(f"--param {label}:{own[0]}: set by the command (--epochs; patience = epochs), not per retriever")
        # a checkpoint folder resumes a finished run (nothing trained, its old times reported); a progress
        # bar syncs the device inside the timed epochs
        if own := sorted({"checkpoint_dir", "progress"} & set(params)):
            raise ConfigError(f"--param {label}:{own[0]}: not allowed in a timing run (it would "
                              f"{'resume an earlier run instead of training' if own[0] == 'checkpoint_dir' else 'time a progress bar'})")
    for label in cfg.retrievers:
        name = label.partition("@")[0]
        if "epochs" not in retrievers().get(name).defaults:
            raise ConfigError(f"retriever {name!r} does not train in epochs: nothing to time")


def _overrides(cfg: EpochSpeedConfig, name: str) -> dict[str, Any]:
    # patience = epochs: early stopping must not cut the timed epochs short
    return {"epochs": cfg.epochs, "patience": cfg.epochs, **cfg.params.get(name, {})}


def run_epoch_speed(cfg: EpochSpeedConfig, log=print, on_rows=None) -> dict[str, Any]:
    """Train each retriever; returns a JSON-able dict with one row per retriever.
    `on_rows(result so far)` after each retriever."""
    import torch

    from bench.registry import retrievers
    from bench.speed.retrieval import balanced_random_tree
    from bench.tracking import RecordingTracker
    from seater.data.loaders import load_dataset
    from seater.data.splits import leave_one_out

    check_retrievers(cfg)
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    split = leave_one_out(load_dataset(cfg.data, cfg.data_format))
    log(f"data: {split.n_items:,} items, {len(split.train):,} training samples ({time.perf_counter() - t0:.1f} s)")
    tree = None
    rows = ReportedRows({"config": asdict(cfg), "n_items": split.n_items}, on_rows)
    for label in cfg.retrievers:
        name = label.partition("@")[0]
        entry = retrievers().get(name)
        params = retrievers().params(name, _overrides(cfg, label))
        extra = {}
        if getattr(entry.factory, "needs_tree", False):
            if tree is None:
                tree = balanced_random_tree(split.n_items, cfg.k, cfg.seed)
            extra["tree"] = tree
        model = entry.factory(**params, device=cfg.device, seed=cfg.seed)
        rec = RecordingTracker()
        log(f"{label}: training {cfg.epochs} epoch(s)")
        model.fit(split, tracker=rec, **extra)
        epochs = [c["metrics"] for c in rec.curves if "time/epoch_s" in c["metrics"]]
        sps = float(model.fit_info_["samples_per_second"])  # over all epochs
        epoch_s = [e["time/epoch_s"] for e in epochs]
        per_epoch = round(sps * sum(epoch_s) / len(epoch_s))
        steady = epoch_s[1:] or epoch_s  # the first epoch warms up (allocations, kernel choice): left out when others ran
        row = {
            "retriever": label, "params": cfg.params.get(label, {}), "epochs": len(epochs),
            "samples_per_epoch": per_epoch, "first_epoch_s": epoch_s[0], "steady_epochs": len(steady),
            "epoch_s": epoch_s, "batches_s": [e["time/batches_s"] for e in epochs], "valid_s": [e["time/valid_s"] for e in epochs],
            "median_epoch_s": statistics.median(steady), "samples_per_s": per_epoch * len(steady) / sum(steady),
        }
        if extra:
            row["tree"] = {"k": cfg.k, "depth": tree.depth}
        rows.append(row)
        log(f"{label}: epochs {', '.join(f'{s:.1f}' for s in epoch_s)} s; {row['samples_per_s']:,.0f} samples/s; "
            f"making batches {sum(row['batches_s']) / sum(epoch_s):.2%} of the epochs")
    return rows.result()


def write_results(result: dict[str, Any], out: Path, info: dict[str, Any]) -> list[Path]:
    """Markdown table at `out` (a .md path, or ``speed_epoch.md`` in the folder `out`), the full result
    (every epoch) as JSON beside it."""
    from bench.provenance import markdown_header

    out = Path(out) if Path(out).suffix == ".md" else Path(out) / "speed_epoch.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    js = out.with_suffix(".json")
    js.write_text(json.dumps({"provenance": info, **result}, indent=2) + "\n")
    cfg = result["config"]
    lines = ["# Training epochs on real data", "", markdown_header(info, data=f"{cfg['data']}, leave-one-out training samples ({result['n_items']:,} items)"), ""]
    lines += [f"Device {cfg['device']}, {cfg['threads']} torch thread(s); {cfg['epochs']} epoch(s) per retriever, validation apart; "
              f"retrievers that need a tree train on a balanced k = {cfg['k']} tree over a random item order.", ""]
    lines += [f"- {note}" for note in cfg["notes"]]
    lines += ["", "| retriever | overrides | samples / epoch | epoch s (each) | median epoch s | samples/s | making batches |",
              "|---|---|---:|---|---:|---:|---:|"]
    for r in result["rows"]:
        over = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "defaults"
        batches = sum(r["batches_s"]) / sum(r["epoch_s"])
        lines.append(f"| {r['retriever']} | {over} | {r['samples_per_epoch']:,} | {', '.join(f'{s:.1f}' for s in r['epoch_s'])} "
                     f"| {r['median_epoch_s']:.1f} | {r['samples_per_s']:,.0f} | {batches:.2%} |")
    lines += ["", "samples/s and median epoch s: the retriever's own training samples (next-item pairs for SEATER, windows "
              "for the dual encoders) over the training seconds of the epochs after the first (the warm-up; all epochs "
              "when only one ran); making batches: the share of all epochs' seconds spent in "
              "the batch iterator (`time/batches_s` of the training loop)."]
    out.write_text("\n".join(lines) + "\n")
    return [out, js]
