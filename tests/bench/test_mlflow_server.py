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


def test_a_server_that_does_not_answer_costs_one_warning_not_minutes(tmp_path):
    """MLflow's client retries a dead server with back-off for minutes; the grid must neither wait
    that out nor stop: its rows go to results.jsonl, and `import` fails with one line."""
    from bench.cli import _register, app
    from seater.errors import TrackingError

    dead = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    _register()
    suite = tmp_path / "served.toml"
    suite.write_text(SUITE)
    cli = CliRunner()
    t0 = time.monotonic()
    with pytest.warns(UserWarning, match=rf"MLflow failed for the store at {dead} \(cannot reach the MLflow server at {dead}"):
        res = cli.invoke(app, ["run", str(suite), "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
                               "--results-dir", str(tmp_path / "results"), "--tracking-uri", dead, "--quiet"])
    assert res.exit_code == 0, res.output
    assert time.monotonic() - t0 < 120  # minutes of retries before the first cell without the probe
    assert "MLflow missed rows of this run (1 error(s) above)" in res.output and f"MLflow: {dead}" not in res.output
    assert '"status": "FINISHED"' in (tmp_path / "run" / "results.jsonl").read_text()
    res = cli.invoke(app, ["import", str(tmp_path / "run"), "--tracking-uri", dead])  # a run folder is taken too
    assert isinstance(res.exception, TrackingError) and str(res.exception).startswith(f"cannot reach the MLflow server at {dead}")


@pytest.mark.parametrize("server_gone", [True, False])
def test_after_a_failed_push_the_grid_stops_pushing_only_if_the_server_is_gone(tmp_path, monkeypatch, server_gone):
    import bench.tracking
    from bench.config import load_suite
    from bench.runner import run_suite
    from bench.tracking import MLflowSink
    from seater.errors import TrackingError

    pushes = []

    def failing_push(self, row):
        pushes.append(row["name"])
        raise ConnectionError("server went away")

    def probe(uri):
        if server_gone and pushes:  # answered when the sink opened, gone by the first push
            raise TrackingError("cannot reach")

    monkeypatch.setattr(MLflowSink, "push", failing_push)
    monkeypatch.setattr(bench.tracking, "check_reachable", probe)
    suite = tmp_path / "two.toml"
    suite.write_text(SUITE.replace("seeds = [0]", "seeds = [0, 1]"))
    with pytest.warns(UserWarning, match="no more rows go to MLflow" if server_gone else "push it later with `seater-bench import"):
        s = run_suite(load_suite(suite), run_dir=tmp_path / "run", cache_dir=tmp_path / "cache", progress=False, show_output=False)
    assert len(s.ran) == 2 and len(pushes) == (1 if server_gone else 2)  # a passing error does not end the pushing
    assert s.tracking_errors[0] == "synth/popular/s0: server went away"


def test_a_proxy_answering_for_a_server_that_is_down_counts_as_gone():
    import http.server
    import threading

    from bench.tracking import check_reachable
    from seater.errors import TrackingError

    class Down(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Down)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(TrackingError, match="answers HTTP 503"):
            check_reachable(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
