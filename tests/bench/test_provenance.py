"""Provenance of a result: the commit comes from $SEATER_BENCH_COMMIT when set, else from git."""

from __future__ import annotations

import bench.provenance as prov


def test_commit_from_the_environment_else_from_git(monkeypatch):
    monkeypatch.delenv("SEATER_BENCH_COMMIT", raising=False)
    from_git = prov.provenance()["commit"]
    assert from_git not in ("", "unknown")  # this checkout has git
    # the copy sent to a GPU machine may carry a stale .git: the variable wins
    monkeypatch.setenv("SEATER_BENCH_COMMIT", "abc1234567")
    assert prov.provenance()["commit"] == "abc1234567"
    monkeypatch.delenv("SEATER_BENCH_COMMIT")
    monkeypatch.setattr(prov, "_git", lambda *args: "")  # a copy of the tree without .git
    assert prov.provenance()["commit"] == "unknown"


def test_probe_header_quotes_json_arguments_and_markdown_goes_to_the_file(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SEATER_BENCH_COMMIT", "abc1234567")
    lines = prov.probe_header("results/trees/x_probe.py", ["--seeds", "0-3", "--variants", '[{"a": 1}]'])
    assert lines[0] == """- command: `python results/trees/x_probe.py --seeds 0-3 --variants '[{"a": 1}]'`"""
    assert lines[1] == "- commit: `abc1234567`"
    out = tmp_path / "x.md"
    prov.write_markdown(["# x", *lines], str(out))
    assert out.read_text().splitlines() == ["# x", *lines]
    assert f"wrote {out}" in capsys.readouterr().out
    prov.write_markdown(["# y"], None)
    assert capsys.readouterr().out == "# y\n"
