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


def test_machine_load_counts_other_processes_and_steal_not_this_one(monkeypatch, capsys):
    clock = iter([100.0, 110.0])  # 10 s of wall time
    machine = iter([(1000.0, 5.0), (1025.0, 7.0)])  # 25 CPU s busy, 2 s stolen, machine-wide
    own = iter([3.0, 13.0])  # 10 of them this process's (with its children)
    monkeypatch.setattr(prov.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(prov, "_cpu_seconds", lambda: next(machine))
    monkeypatch.setattr(prov, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(prov.os, "cpu_count", lambda: 2)
    load = prov.MachineLoad()
    info = {"command": "x", "commit": "c", "hardware": "h", "python": "3", "date": "d"}
    prov.record_load(info, load)
    assert info["machine_load"] == {"seconds": 10.0, "cores": 2, "other_cores": 1.5, "steal_cores": 0.2, "busy": True}
    line = "- other work on the machine: 1.50 of 2 cores used by other processes and 0.20 stolen by the hypervisor, on average over the 10 s run (busy: times are slower than on an idle machine)"
    assert line in prov.markdown_header(info).splitlines()
    assert "warning: 1.50 of 2 cores" in capsys.readouterr().err


def test_machine_load_is_quiet_below_the_busy_share_and_absent_without_proc_stat(monkeypatch, capsys):
    clock, machine, own = iter([0.0, 4.0]), iter([(10.0, 0.0), (14.4, 0.0)]), iter([0.0, 4.0])
    monkeypatch.setattr(prov.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(prov, "_cpu_seconds", lambda: next(machine))
    monkeypatch.setattr(prov, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(prov.os, "cpu_count", lambda: 2)
    info: dict = {}
    prov.record_load(info, prov.MachineLoad())
    assert info["machine_load"]["other_cores"] == 0.1 and not info["machine_load"]["busy"]  # 0.1 <= 0.25 x 2 cores
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(prov, "_cpu_seconds", lambda: None)  # not Linux: nothing to say
    monkeypatch.setattr(prov.time, "perf_counter", iter([0.0, 4.0]).__next__)
    monkeypatch.setattr(prov, "_own_cpu_seconds", iter([0.0, 4.0]).__next__)
    prov.record_load(info, prov.MachineLoad())
    assert info["machine_load"] is None


def test_machine_cpu_seconds_and_own_cpu_seconds_are_in_the_same_unit():
    # /proc/stat counts clock ticks, getrusage seconds: if the tick conversion were wrong, this
    # process's own busy second would not fit inside the machine-wide busy time
    start = prov._cpu_seconds()
    if start is None:
        import pytest

        pytest.skip("no /proc/stat")
    own0 = prov._own_cpu_seconds()
    end = prov.time.perf_counter() + 0.5
    while prov.time.perf_counter() < end:
        pass
    own = prov._own_cpu_seconds() - own0
    machine = prov._cpu_seconds()[0] - start[0]
    assert own > 0.05  # the loop ran on a CPU for part of the half second at least
    assert 0.8 * own <= machine + 0.05  # 10 ms ticks; the machine's busy time includes ours
    assert machine < 2 * (prov.os.cpu_count() or 1)  # and no more than every core for the ~0.5 s


def test_the_builders_library_versions_are_recorded():
    """faiss, k-means-constrained and OR-Tools decide the baseline trees and their timings: a result says
    which versions made it (from package metadata, the same strings pip reports)."""
    from importlib.metadata import version

    info = prov.provenance("x")
    assert info["libraries"]["numpy"] == version("numpy") and info["libraries"]["k-means-constrained"] == version("k-means-constrained")
    assert f"- libraries: numpy {version('numpy')}, " in prov.markdown_header(info)


def test_a_start_up_patch_marks_the_provenance(monkeypatch):
    """Rows of a patched run (results/baselines/scripts/torch_dropout) share cell ids with the code's own:
    the patch's name in the provenance is what tells them apart."""
    from bench.provenance import PATCH_ENV, markdown_header, provenance

    monkeypatch.delenv(PATCH_ENV, raising=False)
    assert "patch" not in provenance("x")
    monkeypatch.setenv(PATCH_ENV, "torch_dropout")
    info = provenance("x")
    assert info["patch"] == "torch_dropout" and "- **patched**: torch_dropout" in markdown_header(info)
