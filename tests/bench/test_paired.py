"""`seater-bench compare`: two runs paired cell by cell, users matched per seed, against scipy on
hand-made per-user files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from bench.paired import compare_runs, paired_p
from seater.errors import ConfigError, DataError


def _run(folder, cells, users=None):
    """A run folder: `cells` maps (name, seed) -> per-user ndcg@10; every cell scores `users`."""
    rows = []
    for (name, seed), values in cells.items():
        cid = f"{name.replace('/', '-')}-{seed}"
        d = folder / "per_user" / cid
        d.mkdir(parents=True)
        np.save(d / "test_ndcg@10.npy", np.asarray(values, dtype=np.float64))
        np.save(d / "test_users.npy", np.arange(len(values)) if users is None else users)
        cell = {"seed": seed, "ks": [10], "dataset": {"name": name.split("/")[0], "protocol": "leave_one_out", "max_history": 20}}
        rows.append({"row_id": cid, "cell_id": cid, "name": f"{name}/s{seed}", "suite": folder.name, "status": "FINISHED",
                     "cell": cell, "metrics": {"test/ndcg@10": float(np.mean(values))}, "artifacts": {"per_user": str(d)}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "results.jsonl"


def test_cells_pair_per_seed_and_the_test_runs_over_users_averaged_over_seeds(tmp_path):
    rng = np.random.default_rng(0)
    a0, a1, b0, b1 = (rng.random(50) for _ in range(4))
    a = _run(tmp_path / "a", {("d/seater/balanced:k=16", 0): a0 + 0.1, ("d/seater/balanced:k=16", 1): a1,
                              ("d/seater/greedy:k=16", 0): a0})  # greedy only in A: not compared
    b = _run(tmp_path / "b", {("d/seater/balanced:k=16", 0): b0, ("d/seater/balanced:k=16", 1): b1,
                              ("d/seater/balanced:k=16", 2): b1})  # seed 2 only in B: not compared
    [c] = compare_runs(a, b, ["ndcg@10"])
    x, y = np.concatenate([a0 + 0.1, a1]), np.concatenate([b0, b1])
    assert (c.group, c.seeds, c.users) == ("d/seater/balanced:k=16", [0, 1], 50)  # the same 50 users in both seeds
    assert c.a == pytest.approx(x.mean()) and c.b == pytest.approx(y.mean())
    assert c.change == pytest.approx(x.mean() / y.mean() - 1)
    # a user is one pair, their mean over the seeds (joined end to end, each counted once per seed)
    assert c.p == pytest.approx(stats.ttest_rel((a0 + 0.1 + a1) / 2, (b0 + b1) / 2).pvalue)
    assert c.per_seed == pytest.approx([(a0 + 0.1).mean() / b0.mean() - 1, a1.mean() / b1.mean() - 1])


def test_a_seed_that_repeats_the_same_users_adds_no_evidence(tmp_path):
    """Three seeds with the same per-user values are one seed's evidence: p must not shrink (pooled, it
    fell from 0.14 to 0.01 here). Seeds over other users (a user split) add their users."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=40)
    u = rng.random(40)
    v = u - 0.1 - 0.42 * (z - z.mean()) / z.std(ddof=1)  # differences with t = 0.1 / (0.42 / sqrt(40)) = 1.51
    one = compare_runs(_run(tmp_path / "a1", {("d/m", 0): u}), _run(tmp_path / "b1", {("d/m", 0): v}), ["ndcg@10"])[0]
    three = compare_runs(_run(tmp_path / "a3", {("d/m", s): u for s in range(3)}),
                         _run(tmp_path / "b3", {("d/m", s): v for s in range(3)}), ["ndcg@10"])[0]
    assert three.users == one.users == 40 and three.p == pytest.approx(one.p) and one.p > 0.05
    assert stats.ttest_rel(np.tile(u, 3), np.tile(v, 3)).pvalue < 0.05  # what pooling said

    from bench.paired import user_means

    a, b = user_means([(np.arange(40), u, v), (np.arange(40, 80), v, u)])  # another 40 users
    assert len(a) == 80 and np.array_equal(a, np.concatenate([u, v])) and np.array_equal(b, np.concatenate([v, u]))
    a, b = user_means([(None, np.array([1.0, np.nan]), np.array([0.0, 1.0])), (None, np.array([3.0, 2.0]), np.array([2.0, 0.0]))])
    assert a.tolist() == [2.0, 2.0] and b.tolist() == [1.0, 0.0]  # rows without user ids: row i is one user; nan pairs dropped
    a, _ = user_means([(np.array([7, 9]), np.array([1.0, 2.0]), np.zeros(2)), (None, np.array([3.0, 4.0]), np.zeros(2))])
    assert a.tolist() == [2.0, 3.0]  # one seed without ids: all by row (ids 7, 9 were not mixed with rows 0, 1)


def test_match_by_seed_pairs_each_config_with_the_other_runs_one_cell(tmp_path):
    base = np.linspace(0, 1, 20)
    a = _run(tmp_path / "a", {("d/seater/balanced:k=16", 0): base + 0.2, ("d/seater/random:k=16", 0): base})
    b = _run(tmp_path / "b", {("d/sasrec", 0): base + 0.1})
    with pytest.raises(DataError, match="share no cell under --match cell"):
        compare_runs(a, b, ["ndcg@10"])
    rows = compare_runs(a, b, ["ndcg@10"], match="seed")
    assert [(r.group, round(r.a - r.b, 6)) for r in rows] == [("d/seater/balanced:k=16 vs d/sasrec", 0.1),
                                                              ("d/seater/random:k=16 vs d/sasrec", -0.1)]
    assert [r.p for r in rows] == [0.0, 0.0]  # a constant difference: no t statistic, p 0 by definition
    with pytest.raises(DataError, match="several finished cells for 'd' seed 0"):
        compare_runs(a, a, ["ndcg@10"], match="seed")


def test_what_cannot_be_paired_is_one_error_naming_it(tmp_path):
    a = _run(tmp_path / "a", {("d/sasrec", 0): np.ones(5)})
    other_users = _run(tmp_path / "b", {("d/sasrec", 0): np.ones(5)}, users=np.arange(1, 6))
    with pytest.raises(DataError, match="different test users"):
        compare_runs(a, other_users, ["ndcg@10"])
    with pytest.raises(DataError, match=r"d/sasrec/s0 has no per-user file test_recall@5.npy"):
        compare_runs(a, a, ["recall@5"])
    with pytest.raises(ConfigError, match="--match must be one of cell, seed"):
        compare_runs(a, a, ["ndcg@10"], match="tree")
    failed = tmp_path / "f" / "results.jsonl"
    failed.parent.mkdir()
    row = json.loads(a.read_text())
    failed.write_text(json.dumps({**row, "status": "FAILED", "error": "killed"}) + "\n")
    with pytest.raises(DataError, match="no finished cells"):
        compare_runs(failed, a, ["ndcg@10"])


def test_paired_p_drops_nan_pairs_and_handles_constant_differences():
    a, b = np.array([0.5, np.nan, 0.2, 0.9, 0.1]), np.array([0.4, 0.3, np.nan, 0.3, 0.2])
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel([0.5, 0.9, 0.1], [0.4, 0.3, 0.2]).pvalue)
    assert paired_p(np.ones(4), np.ones(4)) == 1.0
    assert np.isnan(paired_p(np.ones(1), np.zeros(1)))


def test_compare_cli_prints_the_table_and_writes_it_with_its_provenance(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import bench.cli

    bench.cli._register()
    a = _run(tmp_path / "a", {("d/sasrec", s): np.linspace(0, 1, 30) + 0.05 for s in (0, 1)})
    b = _run(tmp_path / "b", {("d/sasrec", s): np.linspace(0, 1, 30) for s in (0, 1)})
    out = tmp_path / "new" / "cmp.md"  # a folder that does not exist yet is made
    res = CliRunner().invoke(bench.cli.app, ["compare", str(a.parent), str(b.parent), "--metrics", "ndcg@10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "| d/sasrec | ndcg@10 | 0,1 | 30 | 0.5500 | 0.5000 | +10.0% | +10.0% +10.0% | 0 * |" in res.output
    text = out.read_text()
    assert "- commit:" in text and "| d/sasrec | ndcg@10 |" in text
    monkeypatch.chdir(tmp_path)  # run files under the working directory are named relative to it
    res = CliRunner().invoke(bench.cli.app, ["compare", str(a.parent), str(b.parent), "--metrics", "ndcg@10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "- A: `a/results.jsonl`\n- B: `b/results.jsonl`\n" in out.read_text()
    res = CliRunner().invoke(bench.cli.app, ["compare", str(a.parent), str(b.parent), "--out", str(tmp_path)])
    assert isinstance(res.exception, ConfigError) and "is a folder" in str(res.exception)


def test_a_per_user_file_of_the_wrong_length_is_named(tmp_path):
    a = _run(tmp_path / "a", {("d/sasrec", 0): np.ones(5)})
    b = _run(tmp_path / "b", {("d/sasrec", 0): np.ones(5)})
    np.save(tmp_path / "b" / "per_user" / "d-sasrec-0" / "test_ndcg@10.npy", np.ones(4))
    with pytest.raises(DataError, match="d/sasrec seed 0: test_ndcg@10.npy does not hold one value per test user"):
        compare_runs(a, b, ["ndcg@10"])


def test_default_metrics_are_those_at_the_cut_offs_both_runs_have():
    from bench.paired import _default_metrics

    def pairs(*ks_lists):
        return {"g": {s: ({"cell": {"ks": ks}}, {"cell": {"ks": [5, 10, 20]}}) for s, ks in enumerate(ks_lists)}}

    assert _default_metrics(pairs([5, 10])) == ["ndcg@10", "recall@10", "ndcg@5", "recall@5"]
    assert _default_metrics(pairs([10, 20], [5, 10])) == ["ndcg@10", "recall@10"]  # the quick suite has no @5
    assert _default_metrics(pairs([20, 50])) == ["ndcg@20", "recall@20"]
