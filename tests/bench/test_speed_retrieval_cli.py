"""`seater-bench speed retrieval`: bad options give one clear message and a non-zero exit, never a traceback or a hang."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from bench.cli import _register, app
from bench.speed.retrieval import balanced_codes, balanced_random_tree
from seater.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")

_register()
runner = CliRunner()

BASE = ["speed", "retrieval", "--sizes", "40", "--beams", "4", "--users", "8", "--batch", "8", "--train-batch", "8",
        "--train-steps", "1", "--beam", "4", "--topk", "4", "--k", "4", "--repeats", "1"]


def _flat(text: str) -> str:
    """The output with rich's box drawing and line wrapping removed."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.timeout(60)  # k = 1 used to loop forever in balanced_codes
@pytest.mark.parametrize("option, value, least", [
    ("--k", "1", 2), ("--k", "0", 2), ("--users", "0", 1), ("--users-large", "0", 1), ("--batch", "0", 1),
    ("--train-batch", "0", 1), ("--train-steps", "0", 1), ("--threads", "-1", 1), ("--threads", "0", 1),
    ("--beam", "0", 1), ("--topk", "0", 1),
])
def test_bad_option_is_rejected_before_any_work(tmp_path, option, value, least):
    res = runner.invoke(app, [*BASE, option, value, "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert f"Invalid value for '{option}': Input should be greater than or equal to {least}" in _flat(res.output)
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("k", [1, 0, -3])
def test_balanced_trees_reject_k_below_two(k):
    with pytest.raises(ConfigError, match=f"k must be an integer >= 2, got {k}"):
        balanced_codes([0, 1, 2], k)
    with pytest.raises(ConfigError, match=f"k must be an integer >= 2, got {k}"):
        balanced_random_tree(10, k)


def test_balanced_codes_reject_an_empty_catalog():
    with pytest.raises(ConfigError, match="at least one item"):
        balanced_codes([], 2)


def test_good_options_still_run(tmp_path):
    res = runner.invoke(app, [*BASE, "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "speed_retrieval.md").is_file()


def test_compile_adds_a_compiled_training_row_at_the_first_size(tmp_path, monkeypatch):
    """--compile MODES times training with the loss under torch.compile (here the "aot_eager"
    backend, which traces like inductor without generating code) beside the eager row."""
    import json

    import torch

    real, modes = torch.compile, []

    def traced(fn, dynamic=None, mode=None):
        modes.append(mode)
        return real(fn, dynamic=dynamic, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", traced)
    torch._dynamo.reset()  # no compiled code left from other tests
    res = runner.invoke(app, [*BASE, "--sizes", "40,60", "--compile", "default,reduce-overhead", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert modes == ["default", "reduce-overhead"]
    train = [r for r in json.loads((tmp_path / "speed_retrieval.json").read_text())["rows"] if r["kind"] == "train"]
    assert [(r["n_items"], r.get("compiled")) for r in train] == [(40, None), (40, "default"), (40, "reduce-overhead")]
    assert all(r["compile_s"] > 0 and r["samples_per_s"] > 0 for r in train[1:])
    assert "torch.compile mode reduce-overhead (compile" in (tmp_path / "speed_retrieval.md").read_text()


def test_an_unknown_compile_mode_is_rejected_before_any_work(tmp_path):
    res = runner.invoke(app, [*BASE, "--compile", "fast", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert "--compile takes default, reduce-overhead" in _flat(res.output)
    assert not (tmp_path / "out").exists()


def test_a_run_that_dies_mid_way_keeps_the_rows_it_measured(tmp_path, monkeypatch):
    """The table is written after every row (header marked incomplete), so a crash or a time limit on a
    lent GPU loses only the row it was measuring; a finished run's table carries no such mark."""
    import json

    import bench.speed.retrieval as retrieval

    def dies(*args, **kwargs):
        raise RuntimeError("killed while timing training")

    with monkeypatch.context() as m:
        m.setattr(retrieval, "_train_row", dies)
        res = runner.invoke(app, [*BASE, "--beams", "2,4", "--out", str(tmp_path)])
    assert isinstance(res.exception, RuntimeError)
    kept = json.loads((tmp_path / "speed_retrieval.json").read_text())
    assert [(r["kind"], r.get("beam")) for r in kept["rows"]] == [("beam", 2), ("beam", 4), ("exact", None)]
    assert kept["provenance"]["incomplete"] is True and "machine_load" in kept["provenance"]
    assert "**incomplete**" in (tmp_path / "speed_retrieval.md").read_text()
    assert not (tmp_path / "speed_retrieval.png").exists()  # curves only for a finished run

    res = runner.invoke(app, [*BASE, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "incomplete" not in (tmp_path / "speed_retrieval.md").read_text()
    assert "incomplete" not in json.loads((tmp_path / "speed_retrieval.json").read_text())["provenance"]


@pytest.mark.parametrize("args, message", [
    (["--beam", "2", "--topk", "4"], "--beam 2 is below --topk 4"),
    (["--attention", "auto,auto"], "each once"),
    (["--compile", ","], "each once"),
    (["--sizes", "40,40"], "--sizes lists a value twice"),
    (["--sizes", "1e13"], "more than this machine's"),
    (["--out", "r.md"], "a folder (speed_retrieval.md, .json and .png are written in it)"),
    # rows labelled top-K over padded lists, beam points where nothing is pruned (audit)
    (["--sizes", "3,40"], "--sizes 3: a catalog below --topk 4 items"),
    (["--beams", "4,41"], "--beams 41: wider than the first size's catalog (40 items)"),
    (["--sizes", "40,6", "--topk", "4", "--beam", "8", "--beams", "4"], "--beam 8: wider than the catalog of --sizes 6"),
])
def test_options_that_would_mislead_the_tables_are_refused(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*BASE, "--out", str(tmp_path / "out"), *args])
    assert res.exit_code != 0 and message in (str(res.exception) + _flat(res.output)), res.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.md").exists()


def test_the_size_curve_has_its_first_size_when_the_beam_is_not_among_the_widths(tmp_path):
    import json

    res = runner.invoke(app, [*BASE, "--sizes", "40,60", "--beams", "2", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "out" / "speed_retrieval.md").read_text()
    assert "| 40 | " in md.split("Beam width curve")[0] and "| 60 | " in md.split("Beam width curve")[0]
    rows = json.loads((tmp_path / "out" / "speed_retrieval.json").read_text())["rows"]
    assert sorted(r["beam"] for r in rows if r["kind"] == "beam" and r["n_items"] == 40) == [2, 4]
