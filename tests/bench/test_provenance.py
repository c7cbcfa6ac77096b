"""Provenance of a result: the commit comes from git, or from $SEATER_BENCH_COMMIT where there is no git."""

from __future__ import annotations

import bench.provenance as prov


def test_commit_from_git_else_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEATER_BENCH_COMMIT", "abc1234567")
    assert prov.provenance()["commit"] != "abc1234567"  # this checkout has git: the variable is not used
    monkeypatch.setattr(prov, "_git", lambda *args: "")  # a copy of the tree without .git
    assert prov.provenance()["commit"] == "abc1234567"
    monkeypatch.delenv("SEATER_BENCH_COMMIT")
    assert prov.provenance()["commit"] == "unknown"
