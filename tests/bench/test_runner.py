"""The grid end to end on tiny synthetic data (the `random` balanced builder): cells in their own processes, failures recorded,
resume after a kill, caches, MLflow runs and the leaderboard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bench.config import load_suite
from bench.runner import execute_cell, run_suite
from bench.tracking import read_rows
from seater.data.splits import make_split
from seater.data.synthetic import make_synthetic
from seater.errors import ConfigError, DataError

SUITE = """
[suite]
name = "tiny"
seeds = [0]
ks = [5, 10]
metric = "recall@10"

[[datasets]]
name = "synth"
source = "synthetic"
protocol = "leave_one_out"
max_history = 8
synthetic = { n_users = 60, n_items = 40, seed = 3 }

[embeddings]
source = "latent"

[[trees]]
builder = "random"
k = 4

[[retrievers]]
name = "tree_popular"

[[retrievers]]
name = "crash"
sweep = { mode = ["raise", "exit"] }
"""


def _popular_recall(n_users=60, n_items=40, seed=3, k=10) -> float:
    """Independent reference: most-popular recall@k on the leave-one-out test items."""
    split = make_split(make_synthetic(n_users=n_users, n_items=n_items, seed=seed), "leave_one_out", max_history=8)
    counts = np.bincount(np.concatenate(split.train_sequences), minlength=n_items + 1)[1:]
    top = set((np.argsort(-counts, kind="stable") + 1)[:k].tolist())
    return float(np.mean([len(top & set(t.tolist())) / len(t) for t in split.test.truth]))


def test_grid_failures_resume_and_mlflow(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"  # the folder the command runs from: MLflow must leave nothing here
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    run_dir = tmp_path / "run"
    s = run_suite(suite, run_dir=run_dir, cache_dir=tmp_path / "cache", progress=False, show_output=False)
    assert not s.tracking_errors
    rows = {r["name"]: r for r in read_rows(run_dir / "results.jsonl")}
    assert set(rows) == {"synth/tree_popular/random:k=4/s0", "synth/crash(mode=raise)/s0", "synth/crash(mode=exit)/s0"}
    tp = rows["synth/tree_popular/random:k=4/s0"]
    raised, exited = rows["synth/crash(mode=raise)/s0"], rows["synth/crash(mode=exit)/s0"]
    assert tp["status"] == "FINISHED"
    assert raised["status"] == exited["status"] == "FAILED"
    assert "RuntimeError: planned failure in fit" in raised["error"]
    assert "exited with code 3" in exited["error"]
    assert tp["metrics"]["test/recall@10"] == pytest.approx(_popular_recall())  # tree_popular answers most-popular
    assert {"time/tree_build_s", "time/train_s", "time/infer_ms_per_user", "mem/peak_mb"} <= set(tp["metrics"])
    assert tp["metrics"]["mem/peak_mb"] > 10
    if Path("/proc/stat").exists():  # what else held the CPUs during the cell, in cores
        assert 0 <= tp["metrics"]["machine/other_cores"] <= 2 * (os.cpu_count() or 1)
        assert tp["metrics"]["machine/steal_cores"] >= 0
    assert tp["lineage"].keys() == {"embeddings_hash", "tree_hash"}
    assert [c["step"] for c in tp["curves"]] == [0, 1]
    assert tp["metrics"]["time/epoch_s"] == pytest.approx(0.75)  # the mean of the curve's 0.5 and 1.0
    per_user = np.load(run_dir / "per_user" / tp["cell_id"] / "test_recall@10.npy", allow_pickle=False)
    assert per_user.shape == (60,) and per_user.mean() == pytest.approx(tp["metrics"]["test/recall@10"])

    # MLflow (default sqlite store under the run folder): one run per cell, failures FAILED
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    by_name = {r.info.run_name: r for r in runs}
    assert len(runs) == len(by_name) == 3  # the curves streamed while a cell trained went to its one run
    assert {n: r.info.status for n, r in by_name.items()} == {n: r["status"] for n, r in rows.items()}
    mtp = by_name["synth/tree_popular/random:k=4/s0"]
    assert mtp.data.metrics["test/recall_at_10"] == pytest.approx(tp["metrics"]["test/recall@10"])
    assert mtp.data.params["lineage.tree_hash"] == tp["lineage"]["tree_hash"]
    assert [m.step for m in client.get_metric_history(mtp.info.run_id, "epoch/train/loss")] == [0, 1]
    assert mtp.data.tags["seater.live"] == "1" and mtp.data.tags["seater.row_id"] == tp["row_id"]
    assert {r.data.tags["seater.run_dir"] for r in runs} == {str(run_dir.resolve())}  # whose grid each run is
    assert mtp.info.start_time == int(tp["started"] * 1000)  # opened as the cell started, not at its first epoch
    assert {a.path for a in client.list_artifacts(mtp.info.run_id)} == {"tree", "config", "per_user", "row.json"}
    assert (run_dir / "mlartifacts").is_dir() and not any(elsewhere.iterdir())  # artifacts stay in the run folder
    assert "planned failure" in by_name["synth/crash(mode=raise)/s0"].data.tags["seater.error"]

    # a grid killed while the tree cell ran, after the failures were written, mid-way through
    # writing a row: drop the tree cell's row and leave a torn line; the rerun runs that cell only
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    keep = [ln for ln in lines if json.loads(ln)["cell_id"] != tp["cell_id"]]
    (run_dir / "results.jsonl").write_text("\n".join(keep) + "\n" + lines[0][:40])
    s2 = run_suite(suite, run_dir=run_dir, cache_dir=tmp_path / "cache", tracking_uri="none", progress=False,
                   show_output=False, retry_failed=False)
    assert sorted(s2.skipped) == sorted([raised["cell_id"], exited["cell_id"]])
    assert [r["name"] for r in s2.ran] == ["synth/tree_popular/random:k=4/s0"]
    assert s2.ran[0]["params"]["tree.cached"] is True  # the tree came from the cache
    assert s2.ran[0]["lineage"] == tp["lineage"]

    # the leaderboard reads the (repaired) file: finished configs ranked, failures listed
    from bench.leaderboard import write_leaderboard

    out = write_leaderboard(run_dir / "results.jsonl", results_dir=tmp_path / "results")
    md = out.markdown_path.read_text()
    assert "## Protocol card" in md and "leave_one_out" in md and "- commit:" in md
    assert "| tree_popular + random:k=4 | 1 |" in md and "## Failed cells" in md and "planned failure" in md
    assert out.csv_path.read_text().startswith("# command:")


def test_cell_caches_embeddings_and_tree(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    cell = next(c for c in load_suite(path).cells() if c.tree is not None)
    first = execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)
    second = execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)
    assert first["params"]["tree.cached"] is False and second["params"]["tree.cached"] is True
    assert second["params"]["embeddings.cached"] is True
    assert first["lineage"] == second["lineage"]
    # a retriever with recommend_exact gets the beam-vs-exact accounting on min(256, users) test users
    m = first["metrics"]
    assert 0 <= m["tree/off_nearest"] <= 1 and "tree/off_nearest_level1" in m
    assert m["test_exact/n_users"] == 60 and m["test_exact/overlap@10"] == 1.0
    assert m["test_exact/recall@10"] == m["test_exact/beam_recall@10"] == pytest.approx(m["test/recall@10"])
    # the cached embeddings are the planted vectors, stored without pickle
    (emb_file,) = (tmp_path / "cache" / "emb").glob("*.npy")
    x = np.load(emb_file, allow_pickle=False)
    np.testing.assert_array_equal(x, make_synthetic(n_users=60, n_items=40, seed=3).extra["item_latent"])




@pytest.mark.parametrize("suite_device,param,built_on", [("cpu", None, "cpu"), ("auto", None, "auto"), ("cpu", "cuda", "cuda")])
def test_a_builder_left_on_auto_builds_on_the_suites_device(tmp_path, monkeypatch, suite_device, param, built_on):
    """rqvae's device defaults to auto: a suite on device cpu must not train it on a GPU (the device
    did not reach builders); a device the suite gives the tree itself stays."""
    import baselines.rqvae as rqvae
    from bench.runner import _cached_tree

    def fake_training(x, cfg, seed=0):  # the device the builder was handed, no training
        i = np.arange(len(x))
        return rqvae.SemanticIDResult(np.stack([i % 4, i // 4 % 4, i // 16 % 4], 1), [1.0], [1.0], 0.0, cfg.device)

    monkeypatch.setattr(rqvae, "train_rqvae", fake_training)
    text = SUITE.replace('builder = "random"', 'builder = "rqvae"' + (f'\nparams = {{ device = "{param}" }}' if param else ""))
    path = tmp_path / "tiny.toml"
    path.write_text(text.replace("seeds = [0]", f'seeds = [0]\ndevice = "{suite_device}"'))
    cell = next(c for c in load_suite(path).cells() if c.tree is not None)
    tree, _ = _cached_tree(cell, np.zeros((40, 4), np.float32), tmp_path / "t.npz", {"params": {}})
    assert tree.build_info["device"] == built_on


PARALLEL = """
[suite]
name = "parallel"
seeds = [0]
ks = [10]

[[datasets]]
name = "synth"
source = "synthetic"
synthetic = { n_users = 60, n_items = 40, seed = 3 }

[embeddings]
source = "latent"

[[trees]]
builder = "split_tree"
k = 4
params = { delay = 4.0 }

[[retrievers]]
name = "rendezvous"
params = { folder = "FOLDER", n = 2 }
sweep = { tag = ["a", "b"] }
"""


def test_parallel_workers_run_cells_at_once_and_share_the_cache(tmp_path):
    from bench.executor import LocalExecutor
    from seater.errors import ConfigError

    path = tmp_path / "parallel.toml"
    path.write_text(PARALLEL.replace("FOLDER", str(tmp_path / "meet")))
    suite = load_suite(path)
    # the two cells wait for each other in fit: they can only finish side by side
    s = run_suite(suite, run_dir=tmp_path / "run", cache_dir=tmp_path / "cache", tracking_uri="none",
                  executor=LocalExecutor(show_output=False, progress=False, workers=2))
    rows = read_rows(tmp_path / "run" / "results.jsonl")
    assert len(s.ran) == 2 and all(r["status"] == "FINISHED" for r in rows), [r.get("error") for r in rows]
    assert len(list((tmp_path / "meet").iterdir())) == 2
    # both needed the same tree at the same moment: the cache lock let one build it, the other read it
    assert sorted(r["params"]["tree.cached"] for r in rows) == [False, True]
    assert rows[0]["metrics"]["test/recall@10"] == rows[1]["metrics"]["test/recall@10"]
    with pytest.raises(ConfigError, match="workers"):
        LocalExecutor(workers=0)


def test_parallel_cells_share_the_cores_and_a_lone_cell_gets_them_all(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from bench.executor import LocalExecutor

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))  # the cores this process may use
    ex = LocalExecutor(show_output=False, progress=False, workers=4)
    seen = []

    def run_one(cell, context):  # what a cell's subprocess would be given
        seen.append(ex._cell_env().get("OMP_NUM_THREADS"))
        return {"status": "FINISHED", "name": cell.name}

    monkeypatch.setattr(ex, "run_one", run_one)
    for n_cells, threads in ((6, "2"), (4, "2"), (2, "4"), (1, None)):  # None: torch's own default, as with workers=1
        seen.clear()
        ex.submit([SimpleNamespace(name=f"c{i}") for i in range(n_cells)], SimpleNamespace(run_dir=tmp_path))
        assert seen == [threads] * n_cells, n_cells


def test_killed_cell_resumes_from_its_checkpoint(tmp_path):
    path = tmp_path / "die.toml"
    path.write_text(PARALLEL.split("[embeddings]")[0].replace('"parallel"', '"die"') + '[[retrievers]]\nname = "die_once"\n')
    suite = load_suite(path)
    kw = dict(run_dir=tmp_path / "run", cache_dir=tmp_path / "cache", tracking_uri="none", progress=False, show_output=False)
    first = run_suite(suite, **kw)
    assert [r["status"] for r in first.ran] == ["FAILED"]
    (ckpt,) = (tmp_path / "run" / "checkpoints").iterdir()
    assert ckpt.name == suite.cells()[0].id and (ckpt / "last.pt").is_file()
    second = run_suite(suite, **kw)
    assert [r["status"] for r in second.ran] == ["FINISHED"] and second.ran[0]["metrics"]["fit/resumed"] == 1.0
    assert not ckpt.exists()  # removed once the cell finished
    log = (tmp_path / "run" / "logs" / f"{suite.cells()[0].id}.log").read_text()
    assert log.count("=== attempt started") == 2  # the first attempt's output, which its FAILED row points to, stays
    assert second.ran[0]["params"]["torch_threads"] >= 1


def test_reuse_copies_finished_cells_of_another_run_instead_of_rerunning_them(tmp_path):
    from seater.errors import ConfigError

    first_suite = SUITE.split('[[retrievers]]\nname = "crash"')[0]
    (tmp_path / "a.toml").write_text(first_suite)
    (tmp_path / "b.toml").write_text(first_suite.replace('"tiny"', '"bigger"') + '[[retrievers]]\nname = "popular"\n')
    kw = dict(cache_dir=tmp_path / "cache", tracking_uri="none", progress=False, show_output=False)
    a = run_suite(load_suite(tmp_path / "a.toml"), run_dir=tmp_path / "a", **kw)
    (shared,) = [r["cell_id"] for r in a.ran]
    b = run_suite(load_suite(tmp_path / "b.toml"), run_dir=tmp_path / "b", reuse=[tmp_path / "a"], **kw)
    assert b.reused == [shared] and [r["name"].split("/")[1] for r in b.ran] == ["popular"]
    rows = {r["cell_id"]: r for r in read_rows(tmp_path / "b" / "results.jsonl")}
    assert rows[shared]["metrics"] == a.ran[0]["metrics"] and len(rows) == 2
    assert rows[shared]["artifacts"]["per_user"] == str(tmp_path / "b" / "per_user" / shared)
    assert any((tmp_path / "b" / "per_user" / shared).iterdir())
    again = run_suite(load_suite(tmp_path / "b.toml"), run_dir=tmp_path / "b", reuse=[tmp_path / "a"], **kw)
    assert again.reused == [] and again.ran == []  # nothing copied twice, nothing rerun
    with pytest.raises(ConfigError, match="no results.jsonl"):
        run_suite(load_suite(tmp_path / "b.toml"), run_dir=tmp_path / "c", reuse=[tmp_path / "nowhere"], **kw)


def test_retrievers_that_ask_get_the_trees_item_embeddings(tmp_path):
    path = tmp_path / "emb.toml"
    path.write_text(SUITE.split("[[retrievers]]")[0] + '[[retrievers]]\nname = "emb_popular"\n')
    (cell,) = load_suite(path).cells()
    m = execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)["metrics"]
    x = make_synthetic(n_users=60, n_items=40, seed=3).extra["item_latent"]  # the `latent` embeddings the tree was built from
    assert (m["fit/emb_rows"], m["fit/emb_cols"]) == x.shape
    assert m["fit/emb_sum"] == pytest.approx(float(x.sum()), rel=1e-6)


def test_run_rejects_a_timeout_that_is_not_positive(tmp_path):
    from typer.testing import CliRunner

    import bench.cli

    bench.cli._register()
    res = CliRunner().invoke(bench.cli.app, ["run", "quick", "--run-dir", str(tmp_path / "r"), "--timeout", "-5"])
    assert isinstance(res.exception, ConfigError) and "--timeout must be a number of seconds > 0" in str(res.exception)
    assert not (tmp_path / "r").exists()  # before any work


def test_only_runs_the_matching_cells_and_dry_run_lists_every_cells_status(tmp_path):
    from typer.testing import CliRunner

    import bench.cli

    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    kw = dict(cache_dir=tmp_path / "cache", tracking_uri="none", progress=False, show_output=False)
    s = run_suite(load_suite(path), run_dir=tmp_path / "r", only=["*/tree_popular/*", "*(mode=exit)*"], **kw)
    assert sorted(r["name"] for r in s.ran) == ["synth/crash(mode=exit)/s0", "synth/tree_popular/random:k=4/s0"]
    path.write_text(SUITE.replace("seeds = [0]", "seeds = [0, 1]"))  # the suite changed under the run folder
    with pytest.warns(UserWarning, match="holds rows of another version of this suite"):
        run_suite(load_suite(path), run_dir=tmp_path / "r", only=["*/tree_popular/*/s1"], **kw)
    path.write_text(SUITE)
    with pytest.raises(ConfigError, match=r"--only '\*/s9' matches no cell of this suite; its cells: synth/"):
        run_suite(load_suite(path), run_dir=tmp_path / "r", only=["*/s9"], **kw)

    bench.cli._register()
    res = CliRunner().invoke(bench.cli.app, ["run", str(path), "--run-dir", str(tmp_path / "r"), "--dry-run"])
    assert res.exit_code == 0, res.output
    status = {line.split()[-1]: line.split()[0] for line in res.stdout.splitlines()}
    assert status == {
        "synth/tree_popular/random:k=4/s0": "FINISHED",
        "synth/crash(mode=raise)/s0": "TO",  # "TO RUN"
        "synth/crash(mode=exit)/s0": "FAILED",
    }
    assert len(read_rows(tmp_path / "r" / "results.jsonl")) == 3  # the dry run ran nothing (3: the s1 cell above)
    for bad, message in ((["--workers", "0"], "workers must be a positive integer"), (["--reuse", str(tmp_path / "no")], "no results.jsonl")):
        res = CliRunner().invoke(bench.cli.app, ["run", str(path), "--run-dir", str(tmp_path / "r"), "--dry-run", *bad])
        assert isinstance(res.exception, ConfigError) and message in str(res.exception)  # checked as a real run would


def test_a_cell_failing_on_bad_input_logs_one_error_line_not_a_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SUITE.split('[[retrievers]]\nname = "tree_popular"')[0]
                    + '[[retrievers]]\nname = "crash"\nparams = { mode = "data_error" }\n[[retrievers]]\nname = "crash"\n')
    s = run_suite(load_suite(path), run_dir=tmp_path / "r", cache_dir=tmp_path / "cache", tracking_uri="none",
                  progress=False, show_output=False)
    rows = {r["cell"]["retriever"]["params"]["mode"]: r for r in s.failed}
    assert rows["data_error"]["error"] == "DataError: planned bad input"
    user_log = (tmp_path / "r" / "logs" / f"{rows['data_error']['cell_id']}.log").read_text()
    bug_log = (tmp_path / "r" / "logs" / f"{rows['raise']['cell_id']}.log").read_text()
    assert "error: DataError: planned bad input" in user_log and "Traceback" not in user_log
    assert "Traceback" in bug_log and "RuntimeError: planned failure in fit" in bug_log  # a bug keeps its traceback


def test_beam_sweep_decodes_the_test_users_again_at_each_width(tmp_path):
    from bench.leaderboard import write_leaderboard

    path = tmp_path / "beam.toml"
    text = SUITE.split("[[retrievers]]")[0] + '[[retrievers]]\nname = "beam_popular"\n'
    path.write_text(text.replace('metric = "recall@10"', 'metric = "recall@10"\nbeam_sweep = [5, 50]'))
    (cell,) = load_suite(path).cells()
    path.write_text(text)
    assert load_suite(path).cells()[0].id == cell.id  # an extra measurement: the cell is the same
    out = execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)
    m = out["metrics"]
    assert m["test/recall@10"] == m["test_beam50/recall@10"] == pytest.approx(_popular_recall())
    assert m["test_beam5/recall@5"] < m["test/recall@5"]  # width 5 < 20: the model's worse answer
    assert "test_beam5/recall@10" not in m  # a width-5 beam returns 5 items: no cut-off beyond it
    assert m["test_beam5/users_per_s"] > 0 and m["test_beam50/users_per_s"] > 0
    row = {**out, "row_id": "r", "cell_id": cell.id, "name": cell.name, "suite": "tiny", "status": "FINISHED", "error": None,
           "cell": cell.to_json()}
    (tmp_path / "run" / "results.jsonl").write_text(json.dumps(row) + "\n")
    lb = write_leaderboard(tmp_path / "run" / "results.jsonl", results_dir=tmp_path / "res", metric="recall@10")
    assert lb.plots[-1].name == "quality_vs_beam.png"
    table = lb.markdown_path.read_text().split("### Beam width")[1]
    rows = [ln.split(" | ") for ln in table.splitlines() if ln.startswith("| beam_popular")]
    assert [r[1] for r in rows] == ["5", "20", "50"]  # the sweep and the main evaluation's max(beam_size, max ks) = 20
    assert "test/recall@5 | test/ndcg@10 | test/recall@10" in table  # the smallest cut-off, which width 5 reaches, and the primary's
    assert rows[0][4] == f"{m['test_beam5/recall@5']:.4f}" and rows[0][6] == "–"


def test_beam_sweep_widths_must_reach_the_smallest_cut_off(tmp_path):
    path = tmp_path / "beam.toml"
    path.write_text(SUITE.replace('metric = "recall@10"', 'metric = "recall@10"\nbeam_sweep = [4, 10]'))
    with pytest.raises(ConfigError, match=r"suite.beam_sweep widths must be >= the smallest cut-off in ks \(5\)"):
        load_suite(path)


def test_run_folder_keeps_a_variants_merged_suite_which_loads_alone(tmp_path):
    (tmp_path / "tiny.toml").write_text(SUITE.split('[[retrievers]]\nname = "crash"')[0])
    (tmp_path / "var.toml").write_text('base = "tiny"\n[suite]\nks = [10]\n')
    suite = load_suite(tmp_path / "var.toml")
    s = run_suite(suite, run_dir=tmp_path / "run", cache_dir=tmp_path / "cache", tracking_uri="none", progress=False, show_output=False)
    assert [r["status"] for r in s.ran] == ["FINISHED"]
    kept = load_suite(tmp_path / "run" / "suite.toml")
    assert (kept.name, kept.ks, kept.metric) == ("var", (10,), "recall@10")
    assert [c.id for c in kept.cells()] == [c.id for c in suite.cells()] == [r["cell_id"] for r in s.ran]


def test_cells_whose_input_files_changed_run_again(tmp_path):
    """A cell id names its inputs by path: rewriting the data (or an embeddings file) in place must not
    leave the old rows standing as this data's results, nor feed the old cached embeddings to new cells."""
    from typer.testing import CliRunner

    import bench.cli
    from seater.data.loaders import write_s3rec

    def write_data(n_users, seed):
        inter = make_synthetic(n_users=n_users, n_items=40, seed=seed)
        write_s3rec(inter, tmp_path / "data")
        np.save(tmp_path / "emb.npy", np.random.default_rng(seed).normal(size=(inter.n_items, 4)).astype(np.float32))

    write_data(60, 3)
    path = tmp_path / "files.toml"
    path.write_text(SUITE.split("[[datasets]]")[0] + f"""
[[datasets]]
name = "files"
source = "{tmp_path / 'data'}"
max_history = 8

[embeddings]
source = "{tmp_path / 'emb.npy'}"

[[trees]]
builder = "random"
k = 4

[[retrievers]]
name = "tree_popular"
""")
    kw = dict(cache_dir=tmp_path / "cache", tracking_uri="none", progress=False, show_output=False)
    first = run_suite(load_suite(path), run_dir=tmp_path / "r", **kw).ran[0]
    assert set(first["lineage"]) >= {"dataset_files", "embeddings_file"}

    bench.cli._register()
    dry = ["run", str(path), "--run-dir", str(tmp_path / "r"), "--dry-run"]
    assert CliRunner().invoke(bench.cli.app, dry).stdout.split()[0] == "FINISHED"
    assert run_suite(load_suite(path), run_dir=tmp_path / "r", **kw).ran == []  # same files: nothing to do

    write_data(80, 4)  # same paths, other contents
    assert CliRunner().invoke(bench.cli.app, dry).stdout.split()[0] == "STALE"
    (tmp_path / "b.toml").write_text(path.read_text().replace('"tiny"', '"other"'))
    b = run_suite(load_suite(tmp_path / "b.toml"), run_dir=tmp_path / "b", reuse=[tmp_path / "r"], **kw)
    assert b.reused == [] and len(b.ran) == 1  # a stale row is not copied either
    with pytest.warns(UserWarning, match=r"1 finished cell\(s\) of .* ran on dataset files and embeddings file that changed since"):
        again = run_suite(load_suite(path), run_dir=tmp_path / "r", **kw)
    assert [r["cell_id"] for r in again.ran] == [first["cell_id"]]
    assert again.ran[0]["data"]["n_users"] == 80 and first["data"]["n_users"] == 60
    # the first cell on the new files made its embeddings again (not the old files' cached table); the rerun took those
    assert b.ran[0]["params"]["embeddings.cached"] is False and again.ran[0]["params"]["embeddings.cached"] is True
    assert len(read_rows(tmp_path / "r" / "results.jsonl")) == 2  # the earlier row stays
    assert CliRunner().invoke(bench.cli.app, dry).stdout.split()[0] == "FINISHED"


def test_run_checks_its_folders_and_the_device_before_any_cell(tmp_path):
    import torch
    from typer.testing import CliRunner

    import bench.cli

    bench.cli._register()
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    (tmp_path / "afile").write_text("")
    base = ["run", str(path), "--run-dir", str(tmp_path / "r"), "--tracking-uri", "none", "--quiet"]
    for option in ("--cache-dir", "--results-dir"):
        res = CliRunner().invoke(bench.cli.app, [*base, option, str(tmp_path / "afile")])
        assert isinstance(res.exception, ConfigError) and f"{option} {tmp_path / 'afile'}: is a file, expected a folder" in str(res.exception)
    if not torch.cuda.is_available():
        res = CliRunner().invoke(bench.cli.app, [*base, "--device", "cuda"])
        assert isinstance(res.exception, ConfigError) and "CUDA is not available here" in str(res.exception)
    assert not (tmp_path / "r").exists()  # no cell ran


def test_a_second_grid_on_the_same_run_folder_is_refused(tmp_path):
    from bench.locks import run_lock as _run_lock

    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    (tmp_path / "r").mkdir()
    kw = dict(cache_dir=tmp_path / "cache", tracking_uri="none", progress=False, show_output=False)
    with _run_lock(tmp_path / "r"):  # as a first `run` holds it
        with pytest.raises(ConfigError, match=rf"{tmp_path / 'r'} is in use by another seater-bench command \(`run`, pid {os.getpid()} on "):
            run_suite(load_suite(path), run_dir=tmp_path / "r", only=["*/tree_popular/*"], **kw)
    assert not (tmp_path / "r" / "results.jsonl").exists()
    assert len(run_suite(load_suite(path), run_dir=tmp_path / "r", only=["*/tree_popular/*"], **kw).ran) == 1  # released
    from bench.tracking import import_runfile

    with _run_lock(tmp_path / "r"):  # an import beside a running grid would push the rows the grid pushes
        with pytest.raises(ConfigError, match=r"in use by another seater-bench command \(`run`, pid \d+ on .*\): wait for it to end$"):
            import_runfile(tmp_path / "r", f"sqlite:///{tmp_path / 'm.db'}")
    assert import_runfile(tmp_path / "r", f"sqlite:///{tmp_path / 'm.db'}") == (1, 0)


def test_cached_embeddings_of_a_rewritten_dataset_are_made_again(tmp_path):
    """The embedding cache key names the dataset by path; the digests recorded beside the cached table
    catch a dataset rewritten in place (here only the dataset changes, the embeddings come from it)."""
    from seater.data.loaders import write_s3rec

    path = tmp_path / "attr.toml"
    path.write_text(SUITE.split("[[datasets]]")[0] + f"""
[[datasets]]
name = "files"
source = "{tmp_path / 'data'}"

[embeddings]
source = "attributes"

[[trees]]
builder = "random"
k = 4

[[retrievers]]
name = "tree_popular"
""")
    write_s3rec(make_synthetic(n_users=60, n_items=40, seed=3), tmp_path / "data")
    (cell,) = load_suite(path).cells()
    runs = []
    for seed in (3, 3, 4):  # made, then cached, then the same path with other contents
        write_s3rec(make_synthetic(n_users=60, n_items=40, seed=seed), tmp_path / "data")
        runs.append(execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False))
    assert [r["params"]["embeddings.cached"] for r in runs] == [False, True, False]
    assert runs[0]["lineage"]["dataset_files"] == runs[1]["lineage"]["dataset_files"] != runs[2]["lineage"]["dataset_files"]
    (record,) = (tmp_path / "cache" / "emb").glob("*.inputs.json")
    assert json.loads(record.read_text()) == {"dataset_files": runs[2]["lineage"]["dataset_files"]}


def test_a_run_folder_that_cannot_be_locked_still_runs(tmp_path, monkeypatch):
    import errno
    import fcntl

    from bench.locks import run_lock as _run_lock

    def no_locks(fh, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match="cannot lock .* \\(No locks available\\): nothing stops a second command"):
        with _run_lock(tmp_path):
            pass


def test_a_checkpoint_left_on_other_input_files_is_not_resumed(tmp_path):
    from bench.runner import _fresh_checkpoint

    ckpt = tmp_path / "sasrec-x.ckpt"
    _fresh_checkpoint(ckpt, {"dataset_files": "old"})
    (ckpt / "last.pt").write_text("epoch 3 on the old data")
    _fresh_checkpoint(ckpt, {"dataset_files": "old"})  # the same files: resumed
    assert (ckpt / "last.pt").is_file()
    _fresh_checkpoint(ckpt, {"dataset_files": "new"})  # the data was rewritten since: start over
    assert not (ckpt / "last.pt").exists() and json.loads((ckpt / "inputs.json").read_text()) == {"dataset_files": "new"}


def test_a_failed_cell_row_quotes_its_latest_attempt_only(tmp_path):
    from bench.executor import ATTEMPT, _tail

    log = tmp_path / "c.log"
    log.write_text(f"{ATTEMPT} 1 ===\nTraceback of the first attempt\n{ATTEMPT} 2 ===\nkilled early\n")
    assert _tail(log) == "killed early"
    log.write_text("a log from before attempt headers\nlast line\n")
    assert _tail(log) == "a log from before attempt headers | last line"


def _emb_cell(tmp_path, source: str, dataset_seed: int = 3):
    text = SUITE.replace('source = "latent"', f'source = "{source}"').replace("seed = 3 }", f"seed = {dataset_seed} }}")
    path = tmp_path / "emb.toml"
    path.write_text(text)
    return next(c for c in load_suite(path).cells() if c.tree is not None)


def test_a_damaged_cached_table_is_computed_again(tmp_path):
    """A cache hit was used as is: a replaced (41-row) table built a tree over 41 items, and a truncated
    one failed every rerun with numpy's EOF error, never recomputed."""
    cell = _emb_cell(tmp_path, "latent")
    first = execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)
    (emb_file,) = (tmp_path / "cache" / "emb").glob("*.npy")
    def npz():
        with open(emb_file, "wb") as fh:
            np.savez(fh, a=np.zeros((40, 4), np.float32))

    for damage in (lambda: np.save(emb_file, np.zeros((41, 4), np.float32)), lambda: emb_file.write_bytes(emb_file.read_bytes()[:60]),
                   lambda: np.save(emb_file, np.array([["1.5", "2"]] * 40)), lambda: np.save(emb_file, np.full((40, 4), 1e300)), npz):
        damage()
        with pytest.warns(UserWarning, match="are not usable"):
            row = execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)
        assert row["params"]["embeddings.cached"] is False and row["lineage"] == first["lineage"]


@pytest.mark.parametrize("table,message", [
    (np.array([["1.5", "2"]] * 40), "must be real numbers"),
    (np.ones((40, 2), np.complex64), "must be real numbers"),
    (np.full((40, 2), 1e300), "beyond float32's range"),
])
def test_an_embedding_file_is_checked_before_the_float32_cast(tmp_path, table, message):
    """Numeric strings and complex values cast silently to float32 (the cells FINISHED), and 1e300
    became inf ("NaN or inf in 40 rows") before the builder's check saw it."""
    np.save(tmp_path / "t.npy", table)
    cell = _emb_cell(tmp_path, str(tmp_path / "t.npy"))
    with pytest.raises(DataError, match=message):
        execute_cell(cell, tmp_path / "run", tmp_path / "cache", progress=False)
    assert not list((tmp_path / "cache").rglob("*.npy"))  # nothing cached


def test_attribute_embeddings_name_the_suite_key(tmp_path, monkeypatch):
    import bench.runner as runner

    inter = make_synthetic(n_users=60, n_items=40, seed=3, attributes=False)
    with pytest.raises(DataError, match='embeddings.source = "attributes": .*no item attributes'):
        runner._item_attribute_matrix(inter)
    inter.item_attributes = [np.zeros(0, np.int64)] * 41
    with pytest.raises(DataError, match="no item of .* has an attribute"):
        runner._item_attribute_matrix(inter)
