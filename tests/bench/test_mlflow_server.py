"""Against a real MLflow tracking server on loopback: `seater-bench run --tracking-uri` writes the
runs, the MLflow client reads them back, `seater-bench import` does not duplicate them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

SUITE = """
[suite]
name = "served"
seeds = [0]
ks = [10]

[[datasets]]
name = "synth"
source = "synthetic"
synthetic = { n_users = 40, n_items = 25 }

[[retrievers]]
name = "popular"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # minutes on a loaded 2-core machine
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()


def test_run_against_mlflow_server(tmp_path, mlflow_server):
    from bench.cli import _register, app

    _register()
    suite = tmp_path / "served.toml"
    suite.write_text(SUITE)
    cli = CliRunner()
    res = cli.invoke(app, ["run", str(suite), "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
                           "--results-dir", str(tmp_path / "results"), "--tracking-uri", mlflow_server, "--quiet"])
    assert res.exit_code == 0, res.output
    assert "| popular | 1 |" in res.output  # the leaderboard is printed at the end

    import mlflow

    mlflow.set_tracking_uri(mlflow_server)
    df = mlflow.search_runs(experiment_names=["served"])
    assert df["status"].tolist() == ["FINISHED"]
    assert df["tags.mlflow.runName"].tolist() == ["synth/popular/s0"]
    assert 0 < df["metrics.test/recall_at_10"].iloc[0] <= 1
    assert df["params.retriever"].iloc[0] == "popular" and df["params.commit"].iloc[0]

    res = cli.invoke(app, ["import", str(tmp_path / "run" / "results.jsonl"), "--tracking-uri", mlflow_server])
    assert res.exit_code == 0, res.output
    assert "pushed 0 runs, 1 already present" in res.output
    assert len(mlflow.search_runs(experiment_names=["served"])) == 1
