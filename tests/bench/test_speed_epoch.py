"""`seater-bench speed epoch`: epochs of real retrievers on a small written dataset, and its errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bench.cli import _register, app
from seater.data.loaders import write_s3rec
from seater.data.splits import leave_one_out
from seater.data.synthetic import make_synthetic
from seater.errors import ConfigError, UnknownNameError

pytestmark = pytest.mark.usefixtures("one_thread")

_register()
runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    inter = make_synthetic(120, 60, mean_length=8, seed=0)
    path = tmp_path_factory.mktemp("syn")
    write_s3rec(inter, path)
    return path, inter


def test_epochs_of_each_retriever_are_timed_and_written(dataset, tmp_path):
    path, inter = dataset
    out = tmp_path / "ep.md"
    res = runner.invoke(app, ["speed", "epoch", "--data", str(path), "--retrievers", "seater@norank,sasrec", "--epochs", "2", "--k", "4",
                              "--param", "seater@norank:use_rank=false", "--param", "seater@norank:val_users=20", "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.with_suffix(".json").read_text())
    rows = {r["retriever"]: r for r in result["rows"]}
    assert list(rows) == ["seater@norank", "sasrec"]
    seater = rows["seater@norank"]
    assert seater["epochs"] == 2 and len(seater["epoch_s"]) == len(seater["batches_s"]) == 2
    assert seater["params"] == {"use_rank": False, "val_users": 20} and seater["tree"] == {"k": 4, "depth": 3}
    # SEATER trains on every (history, next item) pair of the leave-one-out training split
    assert seater["samples_per_epoch"] == int((leave_one_out(inter).train.targets > 0).sum())
    for r in rows.values():
        assert all(0 <= b <= e for b, e in zip(r["batches_s"], r["epoch_s"]))
        # the warm-up epoch is left out of the rate and the median (it was averaged in)
        assert r["first_epoch_s"] == r["epoch_s"][0] and r["steady_epochs"] == 1 and r["median_epoch_s"] == r["epoch_s"][1]
        assert r["samples_per_s"] == pytest.approx(r["samples_per_epoch"] / r["epoch_s"][1], rel=1e-3)
    md = out.read_text()
    assert "| seater@norank | use_rank=False, val_users=20 | " in md and "| sasrec | defaults | " in md
    assert "- data: " in md and "- commit: " in md and "incomplete" not in md


@pytest.mark.parametrize("args,error,message", [
    (["--retrievers", "nope"], UnknownNameError, "unknown retriever 'nope'"),
    (["--retrievers", "popular"], ConfigError, "retriever 'popular' does not train in epochs"),
    (["--retrievers", "seater,seater"], ConfigError, "must be distinct"),
    (["--retrievers", "seater@"], ConfigError, "give a label after @"),
    (["--retrievers", "sasrec", "--param", "seater:epochs=3"], ConfigError, "--param for seater, which is not among the retrievers"),
    (["--retrievers", "sasrec", "--param", "sasrec:nope=3"], ConfigError, "nope"),
    (["--retrievers", "sasrec", "--param", "sasrec"], ConfigError, "expected retriever:key=value"),
    (["--retrievers", "sasrec", "--param", "sasrec:epochs=3"], ConfigError, "--param sasrec:epochs: set by the command (--epochs"),
    # a checkpoint folder resumed a finished run and reported its old times (audit)
    (["--retrievers", "sasrec", "--param", "sasrec:checkpoint_dir=ck"], ConfigError, "resume an earlier run instead of training"),
    (["--retrievers", "sasrec", "--param", "sasrec:progress=true"], ConfigError, "time a progress bar"),
    (["--retrievers", "seater", "--k", "100000"], ConfigError, "k must be at most 65,536"),
])
def test_bad_options_fail_before_any_training(dataset, tmp_path, args, error, message):
    res = runner.invoke(app, ["speed", "epoch", "--data", str(dataset[0]), *args, "--out", str(tmp_path / "ep.md")])
    assert isinstance(res.exception, error) and message in str(res.exception), res.output
    assert not (tmp_path / "ep.md").exists()


def test_out_cannot_be_the_json_it_writes_beside_the_table(dataset, tmp_path):
    res = runner.invoke(app, ["speed", "epoch", "--data", str(dataset[0]), "--retrievers", "sasrec", "--out", str(tmp_path / "ep.json")])
    assert isinstance(res.exception, ConfigError) and "give a .md path (the JSON is written beside it) or a folder" in str(res.exception)


def test_a_missing_dataset_is_named(tmp_path):
    res = runner.invoke(app, ["speed", "epoch", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "ep.md")])
    assert res.exception is not None and str(tmp_path / "none") in str(res.exception)
