"""Leaderboard aggregation on hand-made rows: seeds -> mean ± std and CI, paired per-user test,
best / second-best marks, CSV, plots when the grid has the axis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.leaderboard import mean_std_ci, write_leaderboard


def _row(tmp_path, name, seed, per_user, tree=None, n_items=100, extra=None):
    d = tmp_path / "per_user" / f"{name}-{seed}"
    d.mkdir(parents=True)
    np.save(d / "test_ndcg@10.npy", per_user)
    ret = {"name": name, "params": {}, "needs_tree": bool(tree), "swept": []}
    cell = {"suite": "lb", "seed": seed, "ks": [10], "embeddings": None, "tree": tree, "retriever": ret,
            "dataset": {"name": "d", "source": "synthetic", "format": "s3rec", "protocol": "leave_one_out",
                        "max_history": 20, "synthetic": {}}, "device": "cpu", "eval_batch_size": 8}
    metrics = {"test/ndcg@10": float(np.nanmean(per_user)), "time/train_s": 1.0 + seed, **(extra or {})}
    cid = f"{name}-{json.dumps(tree, sort_keys=True)}-{n_items}-{seed}"
    return {"row_id": cid, "cell_id": cid, "name": cid, "suite": "lb", "status": "FINISHED", "error": None,
            "cell": cell, "params": {}, "metrics": metrics, "curves": [], "lineage": {},
            "artifacts": {"per_user": str(d)}, "data": {"n_items": n_items}, "provenance": {}}


def test_mean_std_ci_matches_scipy():
    from scipy import stats

    x = np.array([0.1, 0.3, 0.2, 0.25])
    m, s, ci = mean_std_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (m, s) == pytest.approx((0.2125, np.std(x, ddof=1)))
    assert (m - ci, m + ci) == pytest.approx((lo, hi))
    assert math.isnan(mean_std_ci(np.array([0.5]))[2])


def test_leaderboard_ranks_tests_and_marks(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1):
        base = rng.random(200)
        rows.append(_row(tmp_path, "good", seed, base + 0.2))  # clearly better on every user
        rows.append(_row(tmp_path, "same", seed, base + 0.2 - np.abs(rng.normal(0, 1e-3, 200))))  # a hair worse
        rows.append(_row(tmp_path, "bad", seed, base))
    runfile = tmp_path / "results.jsonl"
    runfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = write_leaderboard(runfile, results_dir=tmp_path / "res")
    md = out.markdown_path.read_text()
    lines = [ln for ln in md.splitlines() if ln.startswith("| ") and "seeds" not in ln]
    assert [ln.split(" | ")[0] for ln in lines] == ["| good", "| same", "| bad"]
    good, same, bad = lines
    assert "**" in good.split(" | ")[2] and "_" in same.split(" | ")[2]  # best and second best ndcg
    assert good.endswith("| best |")
    assert "### Beam width" not in md  # no cell ran a beam_sweep: no empty table
    # bad is 0.2 below good on every user: p ~ 0, marked significant; compare with scipy directly
    from scipy import stats

    a = np.stack([np.load(tmp_path / "per_user" / f"good-{s}" / "test_ndcg@10.npy") for s in (0, 1)])
    b = np.stack([np.load(tmp_path / "per_user" / f"same-{s}" / "test_ndcg@10.npy") for s in (0, 1)])
    p_same = stats.ttest_rel(a.mean(0), b.mean(0)).pvalue  # a user is one pair: their mean over the two seeds
    assert bad.endswith(" * |")
    csv_text = out.csv_path.read_text()
    assert csv_text.startswith("# command:") and "# protocol: leave_one_out" in csv_text
    import csv

    body = [ln for ln in csv_text.splitlines() if not ln.startswith("#")]
    recs = list(csv.DictReader(body))
    assert float(next(r for r in recs if r["config"] == "same")["p_vs_best"]) == pytest.approx(p_same, rel=1e-6, abs=0)
    assert float(recs[0]["test/ndcg@10"]) == pytest.approx(np.mean(a))
    assert not out.plots  # no tree axis in this grid


def test_a_wide_leaderboard_leads_with_its_headline_columns(tmp_path):
    """Dozens of columns do not read as a table: the headline ones (primary metric, recall / NDCG at
    the smallest cut-offs, tree cost, build / train / serve time) come first, then every column."""
    rows = [_row(tmp_path, name, 0, np.full(10, v), extra={"test/recall@10": v, "test/hit@10": v, "mem/peak_mb": 100.0})
            for name, v in (("a", 0.5), ("b", 0.4))]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = write_leaderboard(tmp_path / "results.jsonl", results_dir=tmp_path / "res").markdown_path.read_text()
    heads = [ln for ln in md.splitlines() if ln.startswith("| config |")]
    assert heads == ["| config | seeds | test/ndcg@10 | test/recall@10 | time/train_s | 95% CI test/ndcg@10 | p vs best |",
                     "| config | seeds | test/ndcg@10 | test/recall@10 | test/hit@10 | time/train_s | mem/peak_mb | 95% CI test/ndcg@10 | p vs best |"]
    assert md.index(heads[0]) < md.index("All columns:") < md.index(heads[1])
    assert [ln.split(" | ")[0] for ln in md.splitlines() if ln.startswith("| a |") or ln.startswith("| b |")] == ["| a", "| b"] * 2

    from bench.leaderboard import terminal_view

    shown = terminal_view(md)  # what `run` prints: the headline table, not the wide one
    assert heads[0] in shown and heads[1] not in shown and "All columns" not in shown and "## Protocol card" in shown


def test_leaderboard_against_a_reference_row(tmp_path):
    """--against: p and change against the named row (here not the best one); a glob matching no row or
    several rows is one clear error."""
    import csv

    from scipy import stats

    rng = np.random.default_rng(1)
    rows = []
    for seed in (0, 1):
        base = rng.random(200)
        rows.append(_row(tmp_path, "good", seed, base + 0.2))
        rows.append(_row(tmp_path, "ref", seed, base + 0.1 + rng.normal(0, 0.05, 200)))
        rows.append(_row(tmp_path, "bad", seed, base))
    rows.append(_row(tmp_path, "partial", 1, rng.random(200)))  # one seed: compared with ref's seed 1 only
    runfile = tmp_path / "results.jsonl"
    runfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = write_leaderboard(runfile, results_dir=tmp_path / "res", against="ref*")
    md = out.markdown_path.read_text()
    assert "against the reference row `ref`" in md and "| change vs ref | p vs ref |" in md
    lines = {ln.split(" | ")[0]: ln for ln in md.splitlines() if ln.startswith("| ") and "seeds" not in ln}
    assert lines["| ref"].endswith("| ref | ref |")
    body = [ln for ln in out.csv_path.read_text().splitlines() if not ln.startswith("#")]
    recs = {r["config"]: r for r in csv.DictReader(body)}
    per_user = {n: np.stack([np.load(tmp_path / "per_user" / f"{n}-{s}" / "test_ndcg@10.npy") for s in (0, 1)])
                for n in ("good", "ref", "bad")}
    for name in ("good", "bad"):
        p = stats.ttest_rel(per_user["ref"].mean(0), per_user[name].mean(0)).pvalue  # per-user means over the seeds
        assert float(recs[name]["p_vs_ref"]) == pytest.approx(p, rel=1e-6, abs=0)
        change = (per_user[name].mean() / per_user["ref"].mean() - 1) * 100
        assert float(recs[name]["change_vs_ref_pct"]) == pytest.approx(change)
        assert f"{change:+.1f}%" in lines[f"| {name}"]
    ref1 = np.load(tmp_path / "per_user" / "ref-1" / "test_ndcg@10.npy").mean()
    partial = np.load(tmp_path / "per_user" / "partial-1" / "test_ndcg@10.npy").mean()
    assert float(recs["partial"]["change_vs_ref_pct"]) == pytest.approx((partial / ref1 - 1) * 100)
    assert recs["good"]["best"] == "True" and recs["ref"]["ref"] == "True"
    from seater.errors import ConfigError

    with pytest.raises(ConfigError, match="matches no row of dataset d; it must match exactly one of: `good`"):
        write_leaderboard(runfile, results_dir=tmp_path / "res", against="nope")
    with pytest.raises(ConfigError, match="matches 4 rows"):
        write_leaderboard(runfile, results_dir=tmp_path / "res", against="*")
    for r in rows:  # no test values of the primary metric (a tree-only grid): said, not silently dropped
        r["metrics"] = {"time/train_s": 1.0}
    runfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.warns(UserWarning, match=r"--against 'ref\*' not used for dataset d: no row has values of test/ndcg@10"):
        write_leaderboard(runfile, results_dir=tmp_path / "res2", against="ref*")


def test_build_time_plot_when_sizes_vary(tmp_path):
    rows = []
    for n in (100, 1000, 10000):
        for b in ("greedy", "constrained"):
            tree = {"label": b, "builder": b, "k": 8, "params": {}, "swept": []}
            r = _row(tmp_path, f"t{b}{n}", 0, np.ones(3), tree=tree, n_items=n, extra={"time/tree_build_s": n * 1e-3})
            r["cell"]["retriever"] = None
            r["metrics"] = {"time/tree_build_s": n * 1e-3, "tree/cost_ratio": 0.5}
            rows.append(r)
    runfile = tmp_path / "results.jsonl"
    runfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = write_leaderboard(runfile, results_dir=tmp_path / "res")
    assert [p.name for p in out.plots] == ["build_time_vs_items.png", "quality_vs_build_time.png"]
    assert all(p.stat().st_size > 1000 for p in out.plots)


def test_quality_vs_build_time_plot_needs_several_trees(tmp_path):
    from bench.plots import leaderboard_plots

    rows = []
    for seed in (0, 1):
        for b, t in (("greedy", 0.5), ("constrained", 50.0)):
            tree = {"label": b, "builder": b, "k": 16, "params": {}, "swept": []}
            r = _row(tmp_path, f"seater-{b}", seed, np.full(5, 0.1), tree=tree, extra={"time/tree_build_s": t + seed})
            r["cell"]["retriever"]["name"] = "seater"
            rows.append(r)
    info = {"commit": "abc", "hardware": "cpu"}
    paths = leaderboard_plots(rows, tmp_path, "ndcg@10", info)
    assert [p.name for p in paths] == ["quality_vs_build_time.png"] and paths[0].stat().st_size > 1000
    one_tree = [r for r in rows if r["cell"]["tree"]["label"] == "greedy"]
    assert leaderboard_plots(one_tree, tmp_path / "one", "ndcg@10", info) == []


def test_same_name_different_params_get_distinct_labels(tmp_path):
    from bench.leaderboard import group_rows

    rows = []
    for patience in (3, 10):
        r = _row(tmp_path, f"bert4rec-p{patience}", 0, np.full(10, 0.1 * patience))
        r["cell"]["retriever"].update(name="bert4rec", params={"lr": 0.002, "patience": patience})
        rows.append(r)
    labels = sorted(g.label for g in group_rows(rows))
    assert labels == ["bert4rec [patience=10]", "bert4rec [patience=3]"]
    # differing tree parameters (not swept) tell rows apart too
    tree = {"label": "balanced", "builder": "balanced", "k": 16, "swept": []}
    rows = []
    for n_init in (1, 3):
        r = _row(tmp_path, f"seater-n{n_init}", 0, np.full(10, 0.1), tree={**tree, "params": {"n_init": n_init}})
        r["cell"]["retriever"]["name"] = "seater"
        rows.append(r)
    labels = sorted(g.label for g in group_rows(rows))
    assert labels == ["seater + balanced:k=16 [tree.n_init=1]", "seater + balanced:k=16 [tree.n_init=3]"]


def test_leaderboard_goes_to_the_named_suite_when_rows_come_from_several(tmp_path):
    rows = [_row(tmp_path, "a", 0, np.full(20, 0.5)), {**_row(tmp_path, "b", 0, np.full(20, 0.4)), "suite": "other"}]
    runfile = tmp_path / "results.jsonl"
    runfile.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert write_leaderboard(runfile, results_dir=tmp_path / "res").markdown_path.parent.name == "other"  # last row's
    out = write_leaderboard(runfile, results_dir=tmp_path / "res", suite="lb")
    assert out.markdown_path == tmp_path / "res" / "lb" / "leaderboard.md"
    assert "| a |" in out.markdown_path.read_text() and "| b |" in out.markdown_path.read_text()


def test_results_file_is_named_relative_to_the_working_directory(tmp_path, monkeypatch):
    runfile = tmp_path / "runs" / "x" / "results.jsonl"
    runfile.parent.mkdir(parents=True)
    runfile.write_text(json.dumps(_row(tmp_path, "a", 0, np.full(20, 0.5))) + "\n")
    monkeypatch.chdir(tmp_path)
    md = write_leaderboard(runfile.resolve(), results_dir="res").markdown_path.read_text()
    assert "- results file: `runs/x/results.jsonl` (1 cells, 0 failed)" in md
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # a run file outside the working directory keeps the path given
    md = write_leaderboard(Path("../runs/x/results.jsonl"), results_dir="res").markdown_path.read_text()
    assert "- results file: `../runs/x/results.jsonl`" in md


def test_paired_test_finds_per_user_files_of_a_moved_run_folder(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.random(100)
    rows = [_row(tmp_path / "old", "good", 0, base + 0.1), _row(tmp_path / "old", "bad", 0, base)]
    moved = tmp_path / "moved"
    (tmp_path / "old").rename(moved)  # the recorded per_user paths no longer exist
    for r in rows:
        (moved / "per_user" / r["artifacts"]["per_user"].split("/")[-1]).rename(moved / "per_user" / r["cell_id"])
    (moved / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    md = write_leaderboard(moved / "results.jsonl", results_dir=tmp_path / "res").markdown_path.read_text()
    bad = [ln for ln in md.splitlines() if ln.startswith("| bad")][0]
    assert bad.rstrip(" |").endswith("*")  # p-value computed (and significant), not "–"


def test_several_run_files_make_one_table_with_shared_cells_once(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.random(100)
    shared = [_row(tmp_path / "a", "full", s, base + 0.1) for s in (0, 1)]
    run_a = [*shared, *(_row(tmp_path / "a", "ablated", s, base) for s in (0, 1))]
    # run b reused the shared cells (same cell ids) and also holds a failed retry of one of them
    failed = {**shared[0], "status": "FAILED", "error": "killed", "metrics": {}}
    run_b = [*shared, failed, *(_row(tmp_path / "b", "k8", s, base + 0.05) for s in (0, 1))]
    for folder, rows in (("a", run_a), ("b", run_b)):
        (tmp_path / folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = write_leaderboard([tmp_path / "a" / "results.jsonl", tmp_path / "b" / "results.jsonl"],
                            results_dir=tmp_path / "res", suite="merged")
    md = out.markdown_path.read_text()
    assert out.markdown_path == tmp_path / "res" / "merged" / "leaderboard.md"
    table = [ln for ln in md.splitlines() if ln.startswith("| ") and "seeds" not in ln]
    assert [ln.split(" | ")[0] for ln in table] == ["| full", "| k8", "| ablated"]
    assert all(ln.split(" | ")[1] == "2" for ln in table)  # each shared cell once per seed, the failure ignored
    assert "0 failed" in md and "Failed cells" not in md
    assert table[2].rstrip(" |").endswith("*")  # p-value from the per-user files of run a
    assert table[1].rstrip(" |").endswith("*")  # ... and of run b


def test_leaderboard_cli_merges_runs_only_under_a_name(tmp_path):
    from typer.testing import CliRunner

    import bench.cli
    from seater.errors import ConfigError, DataError

    bench.cli._register()
    for folder in ("a", "b"):
        r = _row(tmp_path / folder, folder, 0, np.full(10, 0.5 if folder == "a" else 0.4))
        (tmp_path / folder / "results.jsonl").write_text(json.dumps(r) + "\n")
    runs = [str(tmp_path / "a"), str(tmp_path / "b")]
    res = CliRunner().invoke(bench.cli.app, ["leaderboard", *runs, "--results-dir", str(tmp_path / "res")])
    assert isinstance(res.exception, ConfigError) and "--name" in str(res.exception)
    res = CliRunner().invoke(bench.cli.app, ["leaderboard", *runs, "--results-dir", str(tmp_path / "res"), "--name", "both"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "res" / "both" / "leaderboard.md").read_text()
    assert "| a |" in md and "| b |" in md
    res = CliRunner().invoke(bench.cli.app, ["leaderboard", *runs, "--results-dir", str(tmp_path / "res"), "--name", "both",
                                             "--against", "b"])
    assert res.exit_code == 0, res.output
    assert "against the reference row `b`" in (tmp_path / "res" / "both" / "leaderboard.md").read_text()
    res = CliRunner().invoke(bench.cli.app, ["leaderboard", str(tmp_path / "missing"), "--runs-dir", str(tmp_path)])
    assert isinstance(res.exception, DataError) and "missing" in str(res.exception)
    for name in ("../../escape", "a/b", ".."):  # the table goes under --results-dir, never beside it
        res = CliRunner().invoke(bench.cli.app, ["leaderboard", *runs, "--results-dir", str(tmp_path / "res"), "--name", name])
        assert isinstance(res.exception, ConfigError) and "--name is a folder name" in str(res.exception)


def test_results_files_that_are_not_text_and_unusable_tracking_uris(tmp_path):
    from bench.tracking import import_runfile, read_rows
    from seater.errors import ConfigError, DataError

    (tmp_path / "bin.jsonl").write_bytes(b"\xff\xfe\n")
    with pytest.raises(DataError, match="not a results file written by seater-bench .not UTF-8 text"):
        read_rows(tmp_path / "bin.jsonl")
    r = _row(tmp_path, "a", 0, np.full(10, 0.5))
    (tmp_path / "results.jsonl").write_text(json.dumps(r) + "\n")
    with pytest.raises(ConfigError, match="--tracking-uri none leaves it nowhere to push"):
        import_runfile(tmp_path / "results.jsonl", "none")
    with pytest.raises(ConfigError, match="MLflow tracking URI 'bogus://x' cannot be used"):
        import_runfile(tmp_path / "results.jsonl", "bogus://x")


def test_import_rebuilds_a_store_from_the_run_folder_alone_and_quietly(tmp_path, capfd, monkeypatch):
    """The MLflow store is a copy of the run folder: a fresh one gets every row and its artifacts,
    the artifacts beside the database (not under the current folder), and no MLflow table-creation chatter."""
    from bench.tracking import import_runfile

    monkeypatch.chdir(tmp_path)
    r = _row(tmp_path, "a", 0, np.full(10, 0.5))
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text(json.dumps(r) + "\n")
    assert import_runfile(run / "results.jsonl") == (1, 0)
    assert import_runfile(run / "results.jsonl") == (0, 1)
    assert list((run / "mlartifacts").rglob("test_ndcg@10.npy")) and not (tmp_path / "mlruns").exists()
    assert "Creating initial MLflow database tables" not in "".join(capfd.readouterr())


@pytest.mark.parametrize("change,problem", [
    (lambda r: r.pop("metrics"), "'metrics' or 'params' missing or not an object"),
    (lambda r: r["metrics"].update({"test/ndcg@10": "abc"}), "metric 'test/ndcg@10' is 'abc', not a number"),
    (lambda r: r["cell"].update(seed="zero"), "'cell' missing or without an integer seed"),
    (lambda r: r.update(status="WEIRD"), "status must be one of FINISHED, FAILED, got 'WEIRD'"),
    (lambda r: r.pop("row_id"), "'row_id' missing or not a string"),
    (lambda r: r.clear(), "'row_id' missing or not a string"),
])
def test_rows_the_leaderboard_and_import_cannot_use_are_one_error_naming_the_line(tmp_path, change, problem):
    from bench.tracking import import_runfile
    from seater.errors import DataError

    good, bad = _row(tmp_path, "a", 0, np.full(10, 0.5)), _row(tmp_path, "b", 0, np.full(10, 0.5))
    change(bad)
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    message = f"{path}:2: not a results row written by seater-bench ({problem})"
    with pytest.raises(DataError) as lb:
        write_leaderboard(path, results_dir=tmp_path / "out")
    with pytest.raises(DataError) as imp:
        import_runfile(path, f"sqlite:///{tmp_path / 'm.db'}")
    assert str(lb.value) == str(imp.value) == message


def test_a_tracker_still_takes_every_run_status_while_rows_take_only_final_ones():
    from bench.tracking import RecordingTracker

    t = RecordingTracker()
    for status in ("FINISHED", "RUNNING", "FAILED"):  # a cell's tracker may go back to RUNNING (a resumed fit)
        t.set_status(status)
        assert t.status == status
    with pytest.raises(ValueError, match="status must be one of"):
        t.set_status("WEIRD")


def test_lower_is_better_for_costs_times_and_items_off_nearest():
    from bench.leaderboard import _lower_better

    for col in ("tree/total_cost", "tree/off_nearest", "time/train_s", "mem/peak_mb", "tree/gini", "test/invalid_rate", "machine/other_cores"):
        assert _lower_better(col), col
    for col in ("test/ndcg@10", "test/recall@5", "test_exact/overlap@10"):
        assert not _lower_better(col), col


def test_epoch_time_and_training_speed_columns_also_for_rows_written_before_they_were_recorded(tmp_path):
    rng = np.random.default_rng(0)
    old = _row(tmp_path, "old", 0, rng.random(50), extra={"fit/samples_per_second": 300.0})
    old["curves"] = [{"step": e, "metrics": {"train/loss": 1.0, "time/epoch_s": s}} for e, s in enumerate((2.0, 4.0))]
    new = _row(tmp_path, "new", 0, rng.random(50), extra={"time/epoch_s": 1.5, "fit/samples_per_second": 500.0, "machine/other_cores": 0.5})
    pop = _row(tmp_path, "pop", 0, rng.random(50))  # no epochs
    runfile = tmp_path / "results.jsonl"
    runfile.write_text("".join(json.dumps(r) + "\n" for r in (old, new, pop)))
    md = write_leaderboard(runfile, results_dir=tmp_path / "res").markdown_path.read_text()
    header = [ln for ln in md.splitlines() if ln.startswith("| config")][-1]  # the full table, after the headline one
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols.index("time/train_s") < cols.index("time/epoch_s") < cols.index("fit/samples_per_second") < cols.index("machine/other_cores")
    cells = {ln.split(" | ")[0][2:]: [c.strip() for c in ln.strip("|").split("|")] for ln in md.splitlines()
             if ln.startswith("| ") and not ln.startswith("| config")}
    at = cols.index("time/epoch_s")
    assert [cells[n][at].strip("*_") for n in ("old", "new", "pop")] == ["3", "1.5000", "–"]
    assert cells["new"][at + 1] == "**500**" and cells["old"][at + 1] == "_300_"  # higher is better


def test_torn_rows_are_skipped_wherever_the_cut_fell(tmp_path):
    from bench.tracking import read_rows
    from seater.errors import DataError

    a, b, c = (json.dumps(_row(tmp_path, name, 0, np.full(10, 0.5)), sort_keys=True) for name in "abc")
    cut = b[: b.index("}") + 1]  # the cut fell just after a closing brace of a nested object
    path = tmp_path / "results.jsonl"
    path.write_text(f"{a}\n{cut}\n{c}\n{cut}")  # torn mid-file (a later row was appended) and at the end
    with pytest.warns(UserWarning, match=r"skipped the torn part of 2 line\(s\) \(a writer killed mid-row\) at line\(s\) 2, 4"):
        assert [r["name"] for r in read_rows(path)] == [json.loads(a)["name"], json.loads(c)["name"]]
    path.write_text(f"{a}\n{cut}{c}\n")  # a torn file and another concatenated: the glued whole row is kept
    with pytest.warns(UserWarning, match=r"torn part of 1 line\(s\)"):
        assert [r["name"] for r in read_rows(path)] == [json.loads(a)["name"], json.loads(c)["name"]]
    path.write_text(f"{a}\nnot a row\n")
    with pytest.raises(DataError, match=r"results.jsonl:2: not a results row written by seater-bench \(not JSON\)"):
        read_rows(path)


def test_tied_best_rows_share_the_mark_and_other_splits_are_not_paired(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.random(100)
    rows = [_row(tmp_path, "a", 0, base + 0.2), _row(tmp_path, "b", 0, base + 0.2), _row(tmp_path, "c", 0, base)]
    other = _row(tmp_path, "d", 0, base + 0.1)
    np.save(Path(other["artifacts"]["per_user"]) / "test_users.npy", np.arange(100) + 1000)  # another split's users
    for r in rows[:3]:
        np.save(Path(r["artifacts"]["per_user"]) / "test_users.npy", np.arange(100))
    runfile = tmp_path / "results.jsonl"
    runfile.write_text("".join(json.dumps(r) + "\n" for r in [*rows, other]))
    md = write_leaderboard(runfile, results_dir=tmp_path / "res").markdown_path.read_text()
    lines = {ln.split(" | ")[0]: ln for ln in md.splitlines() if ln.startswith("| ") and "seeds" not in ln}
    assert "**" in lines["| a"].split(" | ")[2] and "**" in lines["| b"].split(" | ")[2]  # a tie for best: both bold
    assert "_" in lines["| d"].split(" | ")[2] and "_" not in lines["| c"].split(" | ")[2]  # the next value is second
    p = {name: lines[f"| {name}"].split(" | ")[-1].rstrip(" |") for name in "cd"}
    assert p["d"] == "–" and p["c"] == "0 *"  # d scored other users: no paired p against a


def test_the_primary_metric_comes_from_the_kept_suite_from_any_working_directory(tmp_path, monkeypatch):
    """The kept suite.toml was loaded whole: its relative data paths did not resolve from another
    folder, and the leaderboard silently sorted by NDCG instead of the suite's recall@10."""
    from bench.leaderboard import _suite_metric

    run = tmp_path / "run"
    run.mkdir()
    (run / "suite.toml").write_text('[suite]\nname = "s"\nks = [10]\nmetric = "recall@10"\n[[datasets]]\nsource = "data/beauty"\n')
    monkeypatch.chdir(tmp_path.parent)
    rows = [{"cell": {"ks": [10]}}]
    assert _suite_metric(run / "results.jsonl", rows) == "recall@10"
    (run / "suite.toml").write_text('[suite]\nmetric = "mrr@10"\n')
    with pytest.warns(UserWarning, match="is not a metric"):
        assert _suite_metric(run / "results.jsonl", rows) == "ndcg@10"
    (run / "suite.toml").write_text("not = [toml")
    with pytest.warns(UserWarning, match="does not read"):
        assert _suite_metric(run / "results.jsonl", rows) == "ndcg@10"


def test_protocol_card_counts_from_finished_rows_ranges_and_filtering(tmp_path):
    """A failed row first left the dataset's counts empty; a user_split's counts differ by seed and
    only one seed's were shown; seen-item filtering read 'off' whatever the retrievers did (audit)."""
    from bench.leaderboard import protocol_card

    failed = _row(tmp_path, "a", 0, np.ones(3))
    failed.update(status="FAILED", data={})
    r0, r1 = _row(tmp_path, "b", 0, np.ones(3), n_items=90), _row(tmp_path, "b", 1, np.ones(3), n_items=95)
    card = protocol_card([failed, r0, r1])
    assert "- **d**: synthetic {}; n_items 90..95 (varies across cells)" in card
    assert "seen-item filtering: off" in card
    r1["cell"]["retriever"]["params"] = {"exclude_history": True}
    card = protocol_card([r0, r1])
    assert "seen-item filtering: on in 1 of 2 cells (b with exclude_history), off in the others" in card
    assert "- **d**: synthetic {}; n_items 90..95" in card
    assert "no finished cell" in protocol_card([failed])
    runfile = tmp_path / "results.jsonl"  # the CSV's protocol line says the same (it said "off" whatever the cells did)
    runfile.write_text("".join(json.dumps(r) + "\n" for r in (r0, r1)))
    csv_text = write_leaderboard(runfile, results_dir=tmp_path / "res").csv_path.read_text()
    assert "seen-item filtering on in 1 of 2 cells (b with exclude_history)" in csv_text
