"""`seater-bench trees build / compare` end to end on tiny data."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.cli import _register, app
from seater.errors import ConfigError, DataError, UnknownNameError
from seater.trees.tree import Tree

_register()
runner = CliRunner()


@pytest.fixture
def emb(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32))
    return path


def test_build_saves_a_valid_tree(emb, tmp_path):
    out = tmp_path / "t.npz"
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "greedy", "--k", "4",
                              "--param", "niter=5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "balanced: yes" in res.output and "total cost" in res.output and "off their nearest centroid" in res.output
    tree = Tree.load(out).validate()
    assert tree.build_info["params"]["niter"] == 5


def test_quality_of_a_saved_tree(emb, tmp_path):
    out, js = tmp_path / "t.npz", tmp_path / "q.json"
    built = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "random", "--k", "4", "--out", str(out)])
    assert built.exit_code == 0, built.output
    res = runner.invoke(app, ["trees", "quality", "--embeddings", str(emb), "--tree", str(out), "--json", str(js)])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    assert data["n_items"] == 300 and data["balanced"] and data["off_nearest"] > 0.3  # a random tree
    assert f"off their nearest centroid {data['off_nearest']:.2%}" in res.output
    # the same figures as the build printed
    assert built.output.splitlines()[:3] == res.output.splitlines()[:3]


def test_quality_errors_name_the_problem(emb, tmp_path):
    res = runner.invoke(app, ["trees", "quality", "--embeddings", str(emb), "--tree", str(tmp_path / "none.npz")])
    assert isinstance(res.exception, DataError) and "tree file not found" in str(res.exception)
    out = tmp_path / "t.npz"
    Tree(np.array([[0], [1]]), k=2).save(out)
    res = runner.invoke(app, ["trees", "quality", "--embeddings", str(emb), "--tree", str(out)])
    assert isinstance(res.exception, DataError) and "do not match a tree of 2 items" in str(res.exception)


def test_unknown_builder_lists_known_ones(emb, tmp_path):
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "nope", "--out", str(tmp_path / "t.npz")])
    assert isinstance(res.exception, UnknownNameError)
    assert "known:" in str(res.exception) and "greedy" in str(res.exception)


def test_bad_param_is_a_config_error(emb, tmp_path):
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "greedy", "--param", "niter",
                              "--out", str(tmp_path / "t.npz")])
    assert isinstance(res.exception, ConfigError)


@pytest.mark.parametrize("value", ["abc", "true", "null", "2.5"])
def test_param_of_the_wrong_kind_names_it(emb, tmp_path, value):
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "balanced", "--param", f"max_iter={value}",
                              "--out", str(tmp_path / "t.npz")])
    assert isinstance(res.exception, ConfigError)
    assert "parameter max_iter of tree builder 'balanced' must be an integer" in str(res.exception)


def test_compare_writes_json_and_markdown(emb, tmp_path):
    js, md = tmp_path / "c.json", tmp_path / "c.md"
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(emb), "--k", "4", "--builders", "random,greedy,constrained",
                              "--max-constrained", "100", "--json", str(js), "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    data = json.loads(js.read_text())
    rows = {r["builder"]: r for r in data["rows"]}
    assert set(rows) == {"random", "greedy"} and data["skipped"][0]["builder"] == "constrained"
    assert min(r["cost_ratio"] for r in rows.values()) == pytest.approx(1.0)
    assert rows["greedy"]["total_cost"] < rows["random"]["total_cost"]
    assert rows["greedy"]["off_nearest"] < rows["random"]["off_nearest"]
    assert all(r["balanced"] and r["seconds"] > 0 and r["depth"] == 5 for r in rows.values())
    text = md.read_text()
    assert "- commit:" in text and "| greedy |" in text and "max-constrained" in text and "off nearest" in text
    assert "incomplete" not in text and "incomplete" not in data["provenance"]


def test_compare_reports_every_build_as_it_finishes(emb):
    """`trees compare` writes its files after every build (a constrained build at 361K takes an hour):
    each report holds the builds so far, their cost ratio against the best so far."""
    from bench.speed.tree_compare import compare

    x = np.load(emb)
    seen = []
    final = compare(x, 4, ["random", "greedy"], seeds=[0, 1], log=lambda *_: None, on_rows=seen.append)
    assert [len(r["rows"]) for r in seen] == [1, 2, 3, 4]
    assert seen[-1] == final
    assert seen[0]["rows"][0]["cost_ratio"] == 1.0  # alone, the first build is the best so far
    assert [r["total_cost"] for r in seen[1]["rows"]] == [r["total_cost"] for r in final["rows"][:2]]


def test_compare_cost_ratio_when_the_best_tree_costs_nothing():
    """At most k items (one leaf level) every tree costs 0: the ratio is 1, as in `speed trees`, not nan;
    a tree that costs something where the best costs 0 is infinitely worse."""
    from bench.speed.tree_compare import _result, table

    x = np.zeros((3, 2), dtype=np.float32)
    base = {"params": {}, "seed": 0, "seconds": 0.1, "off_nearest": 0.0, "depth": 1, "balanced": True, "peak_mb": 1.0, "notes": []}
    res = _result(x, 4, [0], [{**base, "builder": "greedy", "total_cost": 0.0}, {**base, "builder": "random", "total_cost": 2.0}], [])
    assert [r["cost_ratio"] for r in res["rows"]] == [1.0, float("inf")]
    assert "| 1.0000 |" in table(res) and "| ∞ |" in table(res)


@pytest.mark.parametrize("flag,value", [("--seeds", "0,x"), ("--threshold-sweep", "100,,abc"), ("--seeds", ",")])
def test_compare_rejects_a_bad_integer_list(emb, flag, value):
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(emb), "--k", "4", "--builders", "random", flag, value])
    assert isinstance(res.exception, ConfigError)
    assert flag in str(res.exception) and value in str(res.exception)


@pytest.mark.parametrize("args,message", [
    (["--builders", "random,,greedy"], "--builders must be comma-separated builder names with none empty"),
    (["--builders", "random", "--threshold-sweep", "10"], "--threshold-sweep sweeps the hybrid builder's threshold"),
    (["--builders", "random", "--seeds", ""], "--seeds must list integers >= 0"),
    (["--builders", "greedy", "--param", "greedy:niter=3", "--param", "greedy:niter=5"], "--param greedy:niter is given twice"),
    (["--builders", "hybrid@t500", "--param", "hybrid@t500:threshold=500", "--threshold-sweep", "100"],
     "--threshold-sweep would replace the threshold hybrid@t500 is given"),  # the row labelled t500 ran 100
    (["--builders", "random", "--json", "x.out", "--markdown", "x.out"], "--json and --markdown both name x.out"),
])
def test_compare_rejects_options_it_would_otherwise_drop(emb, args, message):
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(emb), "--k", "4", *args])
    assert isinstance(res.exception, ConfigError) and message in str(res.exception)


def test_compare_runs_variants_of_one_builder(emb, tmp_path):
    js = tmp_path / "c.json"
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(emb), "--k", "4", "--builders", "greedy,greedy@exact",
                              "--param", "greedy@exact:exact_repair=true", "--json", str(js)])
    assert res.exit_code == 0, res.output
    rows = {r["builder"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["greedy"]["params"] == {} and rows["greedy@exact"]["params"] == {"exact_repair": True}
    assert rows["greedy@exact"]["balanced"] and rows["greedy@exact"]["total_cost"] != rows["greedy"]["total_cost"]
    assert "| greedy@exact | exact_repair=True |" in res.output


@pytest.mark.parametrize("builders,param,message", [
    ("greedy,greedy", None, "listed twice"),
    ("greedy@", None, "give a label"),
    ("nope@x", None, "known:"),
    ("greedy", "hybrid:threshold=5", "not among the builders"),
    ("greedy,greedy@r", "greedy@r:niter=0", "niter"),  # ranges too, before greedy is built
    ("@x", None, "give a name before @"),
    ("greedyy", None, "did you mean 'greedy'?"),
])
def test_compare_rejects_bad_variants(emb, builders, param, message):
    args = ["trees", "compare", "--embeddings", str(emb), "--k", "4", "--builders", builders]
    res = runner.invoke(app, args + (["--param", param] if param else []))
    assert res.exception is not None and message in str(res.exception)


def test_build_and_compare_know_every_registered_builder(emb, tmp_path):
    """`rqvae` registers from baselines/, which `seater.trees` alone does not import."""
    out = tmp_path / "t.npz"
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "rqvae", "--k", "4", "--out", str(out),
                              "--param", "epochs=2", "--param", "n_levels=2", "--param", "kmeans_iters=2", "--param", "hidden=[8]"])
    assert res.exit_code == 0, res.output
    assert Tree.load(out).n_items == 300
    from bench.speed.tree_compare import plan_runs

    assert plan_runs(["rqvae", "greedy"], 300, None, None)[0] == [("rqvae", {}), ("greedy", {})]
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(emb), "--k", "4", "--builders", "rqvae", "--param", "rqvae:epochs=2",
                              "--param", "rqvae:n_levels=2", "--param", "rqvae:kmeans_iters=2", "--param", "rqvae:hidden=[8]"])
    assert res.exit_code == 0, res.output  # its tree is checked as well formed, not as balanced


def test_compare_checks_the_embeddings_as_build_does(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((40, 3), dtype=np.complex64))
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(tmp_path / "c.npy"), "--k", "4", "--builders", "greedy"])
    assert isinstance(res.exception, DataError) and "embeddings must be real numbers, got dtype complex64" in str(res.exception)


def _bad_files(tmp_path):
    np.save(tmp_path / "array.npy", np.zeros((3, 2), dtype=np.float32))
    np.savez(tmp_path / "archive.npz", a=np.zeros(3))
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("1 2 3\n")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "archive.npz").read_bytes()[:40])
    return tmp_path


@pytest.mark.parametrize("name,message", [
    ("empty.npy", "the embeddings file is empty"),
    ("archive.npz", "must be a .npy array (np.save), but it is an .npz archive"),
    ("text.npy", "must be a .npy array (np.save), but it is not a NumPy file"),
])
def test_unreadable_embeddings_name_the_problem(tmp_path, name, message):
    path = _bad_files(tmp_path) / name
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(path), "--builder", "random", "--k", "2", "--out", str(tmp_path / "t.npz")])
    assert isinstance(res.exception, DataError) and message in str(res.exception) and str(path) in str(res.exception)


@pytest.mark.parametrize("name,message", [
    ("empty.npy", "the tree file is empty"),
    ("array.npy", "must be a .npz archive (np.savez), but it is a .npy array"),
    ("text.npy", "but it is not a NumPy file"),
    ("cut.npz", "unreadable tree file"),
    ("archive.npz", "not a tree file saved by Tree.save"),
])
def test_unreadable_tree_files_name_the_problem(tmp_path, name, message):
    with pytest.raises(DataError, match=re.escape(message)):
        Tree.load(_bad_files(tmp_path) / name)


@pytest.mark.parametrize("fields,message", [
    ({"k": np.array([4, 4])}, "k must be one integer"),
    ({"k": np.array(4.7)}, "k must be one integer"),
    ({"build_info": np.array("[1, 2]")}, "build_info must be a JSON object"),
    ({"k": np.array(1)}, "t.npz: invalid tree: branching factor k must be an integer in 2..65,536, got 1"),
    ({"k": np.array(10**12)}, "t.npz: invalid tree: branching factor k must be an integer in 2..65,536, got 1000000000000"),
    ({"codes": np.array([[0], [0]])}, "t.npz: invalid tree: identifiers collide"),
])
def test_tree_files_with_bad_fields(tmp_path, fields, message):
    path = tmp_path / "t.npz"
    np.savez(path, **{"codes": np.array([[0], [1]]), "k": np.array(2), "build_info": np.array("{}"), **fields})
    with pytest.raises(DataError, match=message):
        Tree.load(path)


def test_a_hand_edited_build_time_reads_as_unknown(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, codes=np.array([[0], [1]]), k=np.array(2), build_info=np.array('{"wall_seconds": "abc"}'))
    assert np.isnan(Tree.load(path).build_seconds())


def test_a_child_table_too_large_is_refused_with_the_reason():
    from seater.errors import TreeBuildError

    codes = np.stack([np.arange(40_000) % 40_000, np.zeros(40_000, dtype=np.int64)], axis=1)  # 40,001 nodes
    with pytest.raises(TreeBuildError, match=r"40,001 nodes with k = 40,000 would need a 12 GiB table of children"):
        Tree(codes, 40_000)


@pytest.mark.parametrize("args", [["--seed", "-1"], ["--param", "=3"]])
def test_build_rejects_a_negative_seed_or_a_nameless_param(emb, tmp_path, args):
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "random", "--k", "4", "--out", str(tmp_path / "t.npz"), *args])
    assert res.exit_code != 0 and not isinstance(res.exception, (ValueError, TypeError))


@pytest.mark.parametrize("command", [["trees", "build", "--builder", "random", "--out", "t.npz"], ["trees", "compare"]])
def test_k_below_two_is_refused_before_any_build(emb, tmp_path, command):
    res = runner.invoke(app, [*command, "--embeddings", str(emb), "--k", "1"])
    assert res.exit_code == 2 and "greater than or equal to 2" in " ".join(res.output.replace("│", " ").split())
    assert "building" not in res.output


def test_integer_lists_read_exponents_but_not_fractions_or_infinity():
    from bench.cli import int_list

    assert int_list("2e4,361245", "sizes") == (20000, 361245)
    assert int_list("99999999999999999999999", "sizes") == (99999999999999999999999,)
    for bad in ("1.7", "1e400", "nan", "inf"):
        with pytest.raises(ConfigError, match="comma-separated list of integers"):
            int_list(bad, "sizes")


def test_os_errors_on_given_paths_are_one_line(emb, tmp_path, monkeypatch, capsys):
    """A folder where the output file goes: one line naming it and exit code 2, no traceback."""
    import bench.cli

    monkeypatch.setattr("sys.argv", ["seater-bench", "trees", "build", "--embeddings", str(emb), "--builder", "random", "--k", "4",
                                     "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as stop:
        bench.cli.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: --out {tmp_path}: is a folder, expected a file path"


@pytest.mark.parametrize("command,option", [
    (["trees", "build", "--builder", "random", "--k", "4"], "--out"),
    (["trees", "compare", "--builders", "random", "--k", "4"], "--json"),
    (["trees", "compare", "--builders", "random", "--k", "4"], "--markdown"),
])
def test_output_paths_are_checked_before_any_work(emb, tmp_path, command, option):
    afile = tmp_path / "afile"
    afile.write_text("")
    for target, message in ((tmp_path, "is a folder, expected a file path"), (afile / "x.md", f"{afile} is a file, not a folder")):
        args = [*command, option, str(target)]
        if command[0] == "trees":
            args[2:2] = ["--embeddings", str(emb)]
        res = runner.invoke(app, args)
        assert isinstance(res.exception, ConfigError), res.output
        assert str(res.exception) == f"{option} {target}: {message}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "x.npy"]  # nothing built or written


def test_data_synth_refuses_a_file_as_its_output_folder(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    res = runner.invoke(app, ["data", "synth", "--users", "20", "--items", "10", "--out", str(afile)])
    assert isinstance(res.exception, ConfigError) and str(res.exception) == f"--out {afile}: is a file, expected a folder"


def test_device_reaches_the_builders_that_take_one(emb, tmp_path):
    out = tmp_path / "t.npz"
    res = runner.invoke(app, ["trees", "build", "--embeddings", str(emb), "--builder", "balanced", "--k", "4",
                              "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert Tree.load(out).build_info["params"]["device"] == "cpu"
    js = tmp_path / "c.json"
    res = runner.invoke(app, ["trees", "compare", "--embeddings", str(emb), "--k", "4", "--builders", "greedy,balanced",
                              "--device", "auto", "--json", str(js)])
    assert res.exit_code == 0, res.output
    rows = {r["builder"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["greedy"]["params"] == {} and rows["balanced"]["params"] == {"device": "auto"}


@pytest.mark.parametrize("command,args,message", [
    ("build", ["--builder", "greedy", "--device", "cuda:0"], "tree builder 'greedy' runs on CPU only; --device applies to: balanced, rqvae"),
    ("build", ["--builder", "balanced", "--device", "gpu"], "device must be"),
    ("build", ["--builder", "balanced", "--device", "cpu", "--param", "device=cpu"], "given twice"),
    ("compare", ["--builders", "balanced", "--device", "cpu", "--param", "balanced:device=cpu"], "given twice"),
])
def test_bad_device_options_name_the_problem(emb, tmp_path, command, args, message):
    res = runner.invoke(app, ["trees", command, "--embeddings", str(emb), "--k", "4", *args]
                        + (["--out", str(tmp_path / "t.npz")] if command == "build" else []))
    assert isinstance(res.exception, ConfigError) and message in str(res.exception)
    assert not (tmp_path / "t.npz").exists()
