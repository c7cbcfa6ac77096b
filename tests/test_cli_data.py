"""`seater-bench data stats|synth` through Typer's CliRunner."""

import re

import pytest
from typer.testing import CliRunner

import bench.cli
from seater.data.loaders import load_s3rec
from seater.errors import ConfigError, DataError

bench.cli._register()
runner = CliRunner()


def _field(output: str, key: str) -> str:
    m = re.search(rf"^{key}\s+(.+)$", output, flags=re.M)
    assert m, output
    return m.group(1).strip()


def test_stats_on_small_file(tmp_path):
    (tmp_path / "sequences.txt").write_text("1 1 2 3\n2 2 3\n3 4 1 2 3 4\n")
    r = runner.invoke(bench.cli.app, ["data", "stats", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert _field(r.output, "users") == "3"
    assert _field(r.output, "items") == "4"
    assert _field(r.output, "interactions") == "10"
    assert _field(r.output, "density") == f"{10 / 12:.6f}"
    assert _field(r.output, "length mean") == "3.33"
    assert _field(r.output, "length median") == "3"


def test_synth_writes_loadable_s3rec(tmp_path):
    out = tmp_path / "syn"
    args = ["data", "synth", "--users", "60", "--items", "30", "--out", str(out), "--seed", "4", "--clusters", "3"]
    r = runner.invoke(bench.cli.app, args)
    assert r.exit_code == 0, r.output
    inter = load_s3rec(out)
    assert inter.n_users == 60 and inter.n_items <= 30
    first = (out / "sequences.txt").read_text()
    r = runner.invoke(bench.cli.app, args)  # a dataset is there: not overwritten without --force
    assert isinstance(r.exception, ConfigError) and "already holds a dataset (sequences.txt); pass --force" in str(r.exception)
    assert runner.invoke(bench.cli.app, args + ["--force"]).exit_code == 0
    assert (out / "sequences.txt").read_text() == first  # same seed, same file
    r = runner.invoke(bench.cli.app, ["data", "stats", str(out), "--format", "s3rec"])
    assert _field(r.output, "users") == "60"


def test_synth_item_arrays_match_the_items_that_load(tmp_path):
    """Few users, many items: most items are never drawn and loading renumbers the rest; row i of
    item_latent.npy / item_cluster.npy is loaded item i+1 (all 500 rows were written before)."""
    import numpy as np

    from seater.data.synthetic import make_synthetic

    out = tmp_path / "syn"
    r = runner.invoke(bench.cli.app, ["data", "synth", "--users", "20", "--items", "500", "--out", str(out)])
    assert r.exit_code == 0, r.output
    inter = load_s3rec(out)
    latent, cluster = np.load(out / "item_latent.npy"), np.load(out / "item_cluster.npy")
    assert inter.n_items < 500 and len(latent) == len(cluster) == inter.n_items
    assert f"{inter.n_items} items" in r.output and "never drawn" in r.output
    full = make_synthetic(20, 500, seed=0)
    original = inter.item_ids[1:] - 1  # the generator's row of each loaded item
    assert np.array_equal(latent, full.extra["item_latent"][original])
    assert np.array_equal(cluster, full.extra["item_cluster"][original])


def test_synth_bad_arguments_name_the_option(tmp_path):
    base = ["data", "synth", "--out", str(tmp_path / "o")]
    r = runner.invoke(bench.cli.app, base + ["--users", "0", "--items", "5"])
    assert r.exit_code == 2 and "--users" in r.output
    r = runner.invoke(bench.cli.app, base + ["--users", "5", "--items", "10", "--clusters", "11"])
    assert isinstance(r.exception, ConfigError) and "--clusters 11: at most --items (10)" in str(r.exception)


def test_stats_errors_are_seater_errors(tmp_path):
    r = runner.invoke(bench.cli.app, ["data", "stats", str(tmp_path / "missing")])
    assert r.exit_code != 0 and isinstance(r.exception, DataError)  # main() prints it as one line, exit 2
    assert "missing: path not found" in str(r.exception)
    (tmp_path / "sequences.txt").write_text("1 2\n")
    r = runner.invoke(bench.cli.app, ["data", "stats", str(tmp_path), "--format", "parquet"])
    assert isinstance(r.exception, ConfigError) and "unknown dataset format 'parquet'" in str(r.exception)


@pytest.mark.slow
@pytest.mark.parametrize("name, expected", [("beauty", (22363, 12101, 198502)), ("sports", (35598, 18357, 296337))])
def test_stats_on_real_data(name, expected, request):
    path = request.getfixturevalue(f"{name}_path")
    r = runner.invoke(bench.cli.app, ["data", "stats", str(path)])
    assert r.exit_code == 0, r.output
    assert tuple(int(_field(r.output, k)) for k in ("users", "items", "interactions")) == expected
