"""`seater-bench` lets OpenMP threads wait passively on a busy machine, and only then (bench.cli.openmp_wait_policy).

Each case runs in a fresh interpreter: the policy must be chosen before torch is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_PROBE = """
import os, sys
import bench.provenance as prov
if sys.argv[1] == "idle":  # a machine nobody else uses, whatever this one is doing now
    class Idle(prov.MachineLoad):
        def summary(self):
            return {"seconds": 0.1, "cores": 2, "other_cores": 0.0, "steal_cores": 0.0, "busy": False}
    prov.MachineLoad = Idle
from bench.cli import openmp_wait_policy
print(openmp_wait_policy(), os.environ.get("OMP_WAIT_POLICY"))
import torch
print(prov.provenance().get("omp_wait_policy"))
"""


def _probe(mode: str, env: dict[str, str], loops: int = 0) -> subprocess.CompletedProcess:
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(loops)]
    try:
        clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        return subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
                              env={**clean, **env}, timeout=120)
    finally:
        for p in spin:
            p.kill()
            p.wait()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the load is read from /proc/stat (Linux)")
def test_passive_on_a_busy_machine_with_a_note_and_in_the_result_header():
    cores = os.cpu_count() or 1
    out = _probe("busy", {}, loops=cores)  # every core held by another process
    assert out.stdout.splitlines() == ["PASSIVE PASSIVE", "PASSIVE"]
    assert "OpenMP threads wait passively" in out.stderr


def test_untouched_on_an_idle_machine_and_when_the_user_chose():
    assert _probe("idle", {}).stdout.splitlines() == ["None None", "None"]
    chosen = _probe("busy", {"OMP_WAIT_POLICY": "ACTIVE"}, loops=os.cpu_count() or 1)
    assert chosen.stdout.splitlines() == ["None ACTIVE", "ACTIVE"] and chosen.stderr == ""


_MAIN = """
import os, sys
import bench.provenance as prov
class Busy(prov.MachineLoad):
    def summary(self):
        return {"seconds": 0.1, "cores": 2, "other_cores": 2.0, "steal_cores": 0.0, "busy": True}
prov.MachineLoad = Busy
import bench.cli
bench.cli.MachineLoad = Busy
sys.argv = ["seater-bench", *sys.argv[1:]]
try:
    bench.cli.main()
except SystemExit:
    pass
print(os.environ.get("OMP_WAIT_POLICY"))
"""


@pytest.mark.parametrize("argv, policy", [(["trees", "--help"], "PASSIVE"), (["list"], "None"), (["leaderboard", "--help"], "None")])
def test_only_the_commands_that_compute_with_torch_choose_a_policy(argv, policy):
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", _MAIN, *argv], capture_output=True, text=True, check=True, env=clean, timeout=120)
    assert out.stdout.splitlines()[-1] == policy
    assert ("OpenMP threads wait passively" in out.stderr) == (policy == "PASSIVE")
