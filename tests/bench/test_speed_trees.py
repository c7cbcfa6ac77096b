"""`seater-bench speed trees` / `trees-quality`: tables from real builds on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.speed.trees import TreeQualityConfig, TreeSpeedConfig, run_tree_quality, run_tree_speed, write_results
from seater.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")

from bench.provenance import provenance

INFO = provenance()


def test_speed_rows_compare_against_constrained_on_the_same_data(tmp_path):
    cfg = TreeSpeedConfig(sizes=(200, 300), k=4, dim=8, repeats=2, compare_constrained_at=300)
    result = run_tree_speed(cfg, log=lambda _: None)
    rows = result["rows"]
    assert [(r["n_items"], r["builder"]) for r in rows] == [(200, "balanced"), (300, "balanced"), (300, "constrained")]
    bal, con = rows[1], rows[2]
    assert len(bal["runs_s"]) == 2 and bal["best_s"] == min(bal["runs_s"]) and bal["balanced"]
    assert bal["speedup_vs_constrained"] == pytest.approx(con["best_s"] / bal["best_s"])
    assert bal["cost_ratio_vs_constrained"] == pytest.approx(bal["total_cost"] / con["total_cost"])
    md, js = write_results(result, tmp_path / "speed.md", INFO, "speed")
    text = md.read_text()
    assert "| 200 | balanced |" in text and "nan" not in text and "parameters: defaults (k = 4)" in text
    assert json.loads(js.read_text())["rows"][2]["builder"] == "constrained"
    # balanced parameters reach the builder, and the table says which
    one = run_tree_speed(TreeSpeedConfig(sizes=(200,), k=4, dim=8, repeats=1, compare_constrained_at=0, params={"n_init": 2}), log=lambda _: None)
    assert one["rows"][0]["total_cost"] != pytest.approx(rows[0]["total_cost"], rel=1e-9)
    md, _ = write_results(one, tmp_path / "speed2.md", INFO, "speed")
    assert "parameters: n_init=2 (k = 4)" in md.read_text()


def test_quality_reads_an_npy_file_and_reports_the_median(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "items.npy"
    np.save(path, rng.normal(size=(250, 6)).astype(np.float32))
    cfg = TreeQualityConfig(sizes=(120, 10_000), seeds=(0, 1, 2), data=(str(path),), k=4, dim=6)
    result = run_tree_quality(cfg, log=lambda _: None)
    rows = result["rows"]
    per_seed = [r for r in rows if r["seed"] != "median"]
    medians = [r for r in rows if r["seed"] == "median"]
    assert [r["n_items"] for r in per_seed] == [120] * 3 + [250] * 3  # subsample, then all items
    for r in per_seed:
        assert r["ratio"] == pytest.approx(r["balanced_cost"] / r["constrained_cost"])
    assert medians[0]["ratio"] == pytest.approx(float(np.median([r["ratio"] for r in per_seed[:3]])))
    md, _ = write_results(result, tmp_path / "q.md", INFO, "quality")
    assert "**median**" in md.read_text() and "parameters: defaults" in md.read_text()
    # balanced parameters reach the builder (and the table says which)
    cfg = TreeQualityConfig(sizes=(120,), seeds=(0,), data=(str(path),), k=4, dim=6, params={"n_init": 2, "max_iter": 1})
    one = run_tree_quality(cfg, log=lambda _: None)
    assert one["rows"][0]["balanced_cost"] != pytest.approx(per_seed[0]["balanced_cost"], rel=1e-9)
    md, _ = write_results(one, tmp_path / "q2.md", INFO, "quality")
    assert "parameters: n_init=2, max_iter=1" in md.read_text()


def test_quality_rejects_bad_data(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        run_tree_quality(TreeQualityConfig(sizes=(50,), seeds=(0,), data=(str(tmp_path / "missing.npy"),), k=4), log=lambda _: None)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.arange(10))
    with pytest.raises(DataError, match=r"bad.npy: embeddings must be a 2-D array"):
        run_tree_quality(TreeQualityConfig(sizes=(50,), seeds=(0,), data=(str(bad),), k=4), log=lambda _: None)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not an array")
    with pytest.raises(DataError, match=r"\.npy array"):  # seater.trees.checks words it
        run_tree_quality(TreeQualityConfig(sizes=(50,), seeds=(0,), data=(str(junk),), k=4), log=lambda _: None)
    with pytest.raises(DataError, match="unknown data"):
        run_tree_quality(TreeQualityConfig(sizes=(50,), seeds=(0,), data=("nope",), k=4), log=lambda _: None)
    built = []
    with pytest.raises(DataError, match="unknown data 'nope'"):  # before the synthetic rows are built
        run_tree_quality(TreeQualityConfig(sizes=(50,), seeds=(0,), data=("synthetic", "nope"), k=4), log=built.append)
    assert built == []


def test_out_is_a_markdown_path_or_a_folder(tmp_path):
    res = runner.invoke(app, [*SPEED, "--out", str(tmp_path / "t.json")])
    assert isinstance(res.exception, ConfigError) and "give a .md path (the JSON is written beside it) or a folder" in str(res.exception)
    assert not (tmp_path / "t.json").exists()
    res = runner.invoke(app, [*QUALITY, "--data", "nope", "--out", str(tmp_path)])  # an existing folder is accepted
    assert isinstance(res.exception, DataError) and "unknown data 'nope'" in str(res.exception)
    (tmp_path / "afile").write_text("")
    res = runner.invoke(app, [*SPEED, "--out", str(tmp_path / "afile" / "x.md")])  # checked before any build
    assert isinstance(res.exception, ConfigError) and f"{tmp_path / 'afile'} is a file, not a folder" in str(res.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_cost_ratios_when_constrained_splits_perfectly(tmp_path):
    """At most k items (or all equal), every builder's cost is 0: the ratio is 1, not a ZeroDivisionError."""
    result = run_tree_quality(TreeQualityConfig(sizes=(4,), seeds=(0,), data=("synthetic",), k=4), log=lambda _: None)
    assert [r["ratio"] for r in result["rows"]] == [1.0, 1.0]  # the seed's row and the median
    rows = run_tree_speed(TreeSpeedConfig(sizes=(4,), repeats=1, compare_constrained_at=4, k=4, threads=1), log=lambda _: None)["rows"]
    assert rows[0]["cost_ratio_vs_constrained"] == 1.0


def test_quality_reuses_recorded_constrained_costs_for_the_same_data(tmp_path):
    first = run_tree_quality(TreeQualityConfig(sizes=(150,), seeds=(0, 1), data=("synthetic",), k=4, dim=6), log=lambda _: None)
    _, js = write_results(first, tmp_path / "q.md", INFO, "quality")
    cfg = TreeQualityConfig(sizes=(150, 160), seeds=(0, 1), data=("synthetic",), k=4, dim=6, params={"n_init": 2},
                            reuse_constrained=str(js))
    second = run_tree_quality(cfg, log=lambda _: None)
    rows = [r for r in second["rows"] if r["seed"] != "median"]
    old = [r for r in first["rows"] if r["seed"] != "median"]
    assert [r["constrained_reused"] for r in rows] == [True, True, False, False]  # 160 items: not recorded
    assert [r["constrained_cost"] for r in rows[:2]] == [r["constrained_cost"] for r in old]
    md, _ = write_results(second, tmp_path / "q2.md", INFO, "quality")
    assert "(recorded)" in md.read_text()
    with pytest.raises(DataError, match="k=4"):
        run_tree_quality(TreeQualityConfig(sizes=(150,), seeds=(0,), data=("synthetic",), k=3, dim=6, reuse_constrained=str(js)),
                         log=lambda _: None)


# --------------------------------------------------------------------------- bad input: one clear error, no traceback
from typer.testing import CliRunner  # noqa: E402

from bench.cli import _register, app  # noqa: E402
from bench.speed.trees import cooccurrence_embeddings  # noqa: E402
from seater.errors import ConfigError  # noqa: E402

_register()
runner = CliRunner()
SPEED = ["speed", "trees", "--sizes", "40", "--compare-constrained-at", "0", "--k", "4", "--dim", "4"]
QUALITY = ["speed", "trees-quality", "--sizes", "30", "--seeds", "0", "--k", "4", "--dim", "4"]


def test_speed_rejects_repeats_below_one(tmp_path):
    res = runner.invoke(app, [*SPEED, "--repeats", "0", "--out", str(tmp_path / "t.md")])
    assert res.exit_code == 2, res.output
    assert "Invalid value for '--repeats'" in res.output and not (tmp_path / "t.md").exists()


@pytest.mark.parametrize("cmd, param, option", [
    (SPEED, "device=cuda:x", "--device"), (SPEED, "threads=2", "--threads"), (SPEED, "max_iter=3", "--max-iter"),
    (QUALITY, "threads=2", "--threads"),
])
def test_params_that_have_their_own_option_are_rejected(tmp_path, cmd, param, option):
    """They used to be silently overridden by the option (e.g. `--param device=cuda:x` ran on the CPU)."""
    res = runner.invoke(app, [*cmd, "--param", param, "--out", str(tmp_path / "t.md")])
    assert isinstance(res.exception, ConfigError), res.output
    assert f"use {option} instead" in str(res.exception) and not (tmp_path / "t.md").exists()


@pytest.mark.parametrize("data", ["", " , "])
def test_quality_rejects_an_empty_data_list(tmp_path, data):
    res = runner.invoke(app, [*QUALITY, "--data", data, "--out", str(tmp_path / "q.md")])
    assert isinstance(res.exception, ConfigError) and "--data must name at least one" in str(res.exception)
    assert not (tmp_path / "q.md").exists()


def test_beauty_is_read_with_the_project_loader(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "sequences.txt").write_text("".join(
        f"{u} " + " ".join(str(i) for i in rng.choice(np.arange(1, 21), 5, replace=False)) + "\n" for u in range(1, 31)))
    emb = cooccurrence_embeddings(tmp_path, dim=4)
    assert emb.shape == (20, 4) and emb.dtype == np.float32 and np.isfinite(emb).all()
    with open(tmp_path / "sequences.txt", "a") as f:
        f.write("31 1 2 x3 4\n")
    with pytest.raises(DataError, match=r"sequences.txt:31: .*must be integers, got 'x3'"):
        cooccurrence_embeddings(tmp_path, dim=4)
    res = runner.invoke(app, [*QUALITY, "--data", "beauty", "--beauty-path", str(tmp_path), "--out", str(tmp_path / "q.md")])
    assert isinstance(res.exception, DataError) and "sequences.txt:31" in str(res.exception)


@pytest.mark.parametrize("text, message", [
    ("not json", "is not valid JSON"),
    ('{"rows": []}', "is not the JSON of a trees-quality run"),
    ('[1, 2]', "is not the JSON of a trees-quality run"),
    ('{"config": {"k": 4, "dim": 6}, "rows": [{"data": "synthetic", "seed": 0}]}', "row 0 is not a trees-quality row"),
])
def test_quality_rejects_a_bad_reuse_file(tmp_path, text, message):
    path = tmp_path / "old.json"
    path.write_text(text)
    cfg = TreeQualityConfig(sizes=(50,), seeds=(0,), data=("synthetic",), k=4, dim=6, reuse_constrained=str(path))
    with pytest.raises(DataError, match=message) as err:
        run_tree_quality(cfg, log=lambda _: None)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("args, message", [
    (["--sizes", "40,40"], "--sizes lists a value twice"),
    (["--sizes", "40", "--compare-constrained-at", "50"], "--compare-constrained-at 50 is not one of --sizes 40"),
    (["--sizes", "40,1e12"], "more than this machine's"),
])
def test_speed_trees_refuses_options_before_any_build(tmp_path, args, message):
    res = runner.invoke(app, [*SPEED, *args, "--out", str(tmp_path / "t.md")])
    assert isinstance(res.exception, ConfigError) and message in str(res.exception), res.output
    assert not (tmp_path / "t.md").exists()


def test_the_balanced_row_is_reported_before_the_constrained_build(monkeypatch):
    import bench.speed.trees as speed_trees

    real = speed_trees._time_build

    def constrained_dies(builders, name, *args):
        if name == "constrained":
            raise KeyboardInterrupt  # killed during an hour-long constrained build
        return real(builders, name, *args)

    monkeypatch.setattr(speed_trees, "_time_build", constrained_dies)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        run_tree_speed(TreeSpeedConfig(sizes=(40,), repeats=1, compare_constrained_at=40, k=4, dim=4, threads=1),
                       log=lambda _: None, on_rows=seen.append)
    assert [r["builder"] for r in seen[-1]["rows"]] == ["balanced"]


def test_memory_check_trusts_a_machine_that_does_not_say(monkeypatch):
    import os

    from bench.cli import fits_in_memory

    monkeypatch.setattr(os, "sysconf", lambda name: -1)  # sysconf may answer -1 for "unknown"
    fits_in_memory(10**15, "a petabyte")  # no error: nothing known to compare with
