"""Running cells' curves reach MLflow while they train (bench.tracking.LiveCurves, MLflowSink.stream),
and the cell's row completes that same run; runs a killed grid left RUNNING are marked FAILED."""

from __future__ import annotations

import json
import time

import pytest

from bench.tracking import LiveCurves, MLflowSink, RecordingTracker

pytest.importorskip("mlflow")


def _row(cell_id: str, curves: list[dict], status: str = "FINISHED") -> dict:
    return {"row_id": f"{cell_id}-r", "cell_id": cell_id, "name": f"cell {cell_id}", "suite": "live", "status": status,
            "error": None, "params": {"seed": 0}, "metrics": {"test/recall@10": 0.5}, "curves": curves, "artifacts": {},
            "provenance": {}, "started": time.time() - 5, "ended": time.time()}


def _history(sink: MLflowSink, run_id: str, key: str = "epoch/train/loss") -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in sink.client.get_metric_history(run_id, key)]


def test_streamed_points_then_the_row_make_one_run_without_repeats(tmp_path):
    sink = MLflowSink(f"sqlite:///{tmp_path / 'm.db'}", "live")
    live = LiveCurves(sink, {"c1": "cell c1"}, tmp_path)
    live.path("c1").parent.mkdir()
    rec = RecordingTracker(progress_path=live.path("c1"))
    rec.log_metrics({"train/loss": 2.0}, step=0)
    rec.log_metrics({"train/loss": 1.5}, step=1)
    live.poll()
    (run,) = sink.client.search_runs([sink.experiment_id])
    assert run.info.status == "RUNNING" and run.data.tags["seater.live"] == "1" and run.info.run_name == "cell c1"
    assert _history(sink, run.info.run_id) == [(0, 2.0), (1, 1.5)]

    rec.log_metrics({"train/loss": 1.0}, step=2)  # the last epoch: the cell ends before the next poll
    live.finish("c1")
    sink.push(_row("c1", rec.curves))
    (run,) = sink.client.search_runs([sink.experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["seater.row_id"] == "c1-r"
    assert _history(sink, run.info.run_id) == [(0, 2.0), (1, 1.5), (2, 1.0)]
    assert run.data.metrics["test/recall_at_10"] == 0.5
    rec.log_metrics({"train/loss": 0.5}, step=3)  # anything after the row is not followed
    live.poll()
    assert len(sink.client.search_runs([sink.experiment_id])) == 1


def test_a_cell_run_opens_as_the_cell_starts(tmp_path):
    """The progress file's first line is the cell's start time: the run appears before any epoch."""
    sink = MLflowSink(f"sqlite:///{tmp_path / 'm.db'}", "live")
    live = LiveCurves(sink, {"c1": "cell c1"}, tmp_path)
    live.path("c1").parent.mkdir()
    live.path("c1").write_text(json.dumps({"started": 1700000000.25}) + "\n")
    live.poll()
    (run,) = sink.client.search_runs([sink.experiment_id])
    assert run.info.status == "RUNNING" and run.info.start_time == 1700000000250 and not run.data.metrics


def test_only_whole_lines_are_streamed(tmp_path):
    sink = MLflowSink(f"sqlite:///{tmp_path / 'm.db'}", "live")
    live = LiveCurves(sink, {"c1": "cell c1"}, tmp_path)
    path = live.path("c1")
    path.parent.mkdir()
    live.poll()  # no file yet: nothing, no error
    assert not sink.client.search_runs([sink.experiment_id]) and not live.failed
    line = json.dumps({"step": 0, "metrics": {"train/loss": 3.0}})
    path.write_text(line[:10])  # the cell is writing this line
    live.poll()
    assert not sink.client.search_runs([sink.experiment_id])
    path.write_text(line + "\n")
    live.poll()
    (run,) = sink.client.search_runs([sink.experiment_id])
    assert _history(sink, run.info.run_id) == [(0, 3.0)]


def test_the_thread_streams_on_its_own(tmp_path):
    sink = MLflowSink(f"sqlite:///{tmp_path / 'm.db'}", "live")
    live = LiveCurves(sink, {"c1": "cell c1"}, tmp_path, interval_s=0.05).start()
    live.path("c1").parent.mkdir()
    try:
        RecordingTracker(progress_path=live.path("c1")).log_metrics({"train/loss": 3.0}, step=0)
        deadline = time.time() + 30
        while not sink.client.search_runs([sink.experiment_id]) and time.time() < deadline:
            time.sleep(0.05)
    finally:
        live.stop()
    (run,) = sink.client.search_runs([sink.experiment_id])
    assert _history(sink, run.info.run_id) == [(0, 3.0)]


def test_a_tracker_error_ends_the_streaming_once_not_the_caller(tmp_path):
    class Down:
        def stream(self, *args):
            raise ConnectionError("tracking server down")

    errors = []
    live = LiveCurves(Down(), {"c1": "a", "c2": "b"}, tmp_path, on_error=errors.append)
    live.path("c1").parent.mkdir()
    for cid in ("c1", "c2"):
        RecordingTracker(progress_path=live.path(cid)).log_metrics({"train/loss": 1.0}, step=0)
    live.poll()
    live.poll()
    assert live.failed and [str(e) for e in errors] == ["tracking server down"]


def test_runs_a_killed_grid_left_streaming_are_marked_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    killed = MLflowSink(uri, "live")
    killed.stream("c1", "cell c1", [{"step": 0, "metrics": {"train/loss": 1.0}}])
    killed.stream("c2", "cell c2", [{"step": 0, "metrics": {"train/loss": 1.0}}])
    again = MLflowSink(uri, "live")  # the next grid: it reruns c1 only
    assert again.fail_abandoned({"c1"}) == 1
    runs = {r.data.tags["seater.cell_id"]: r for r in again.client.search_runs([again.experiment_id])}
    assert runs["c1"].info.status == "FAILED" and "stopped before the cell finished" in runs["c1"].data.tags["seater.error"]
    assert runs["c2"].info.status == "RUNNING"


def test_a_push_cut_off_by_the_kill_of_its_grid_is_redone_once(tmp_path, monkeypatch):
    """The grid writes a cell's row to the file, then pushes it; a kill in between leaves no half-run
    standing: the cut-off run is removed (or, when it cannot be, closed by the next grid's sync) and
    the row pushed again as one finished run."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    first = MLflowSink(uri, "live")
    first.stream("c1", "cell c1", [{"step": 0, "metrics": {"train/loss": 1.0}}])
    monkeypatch.setattr(first.client, "log_text", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    monkeypatch.setattr(first.client, "delete_run", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        first.push(_row("c1", [{"step": 0, "metrics": {"train/loss": 1.0}}]))
    (cut,) = first.client.search_runs([first.experiment_id])
    assert cut.info.status == "RUNNING" and cut.data.tags["seater.row_id"] == "c1-r"

    again = MLflowSink(uri, "live")  # the next grid's sync: push the file's rows, close what is still open
    assert "c1-r" not in again.pushed_row_ids()  # a RUNNING run does not count as pushed
    again.push(_row("c1", [{"step": 0, "metrics": {"train/loss": 1.0}}]))
    assert again.fail_abandoned({"c1"}) == 1
    runs = sorted(again.client.search_runs([again.experiment_id]), key=lambda r: r.info.status)
    assert [r.info.status for r in runs] == ["FAILED", "FINISHED"]


def test_runs_started_after_a_cells_row_are_left_alone(tmp_path):
    """Another grid on the same store may be running the cell again: only runs older than the row are abandoned."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    sink = MLflowSink(uri, "live")
    sink.stream("c1", "cell c1", [{"step": 0, "metrics": {"train/loss": 1.0}}], started=1000.0)  # before the row ended
    other = MLflowSink(uri, "live")
    other.stream("c2", "cell c2", [{"step": 0, "metrics": {"train/loss": 1.0}}], started=time.time())
    again = MLflowSink(uri, "live")
    assert again.fail_abandoned({"c1", "c2"}, started_before={"c1": 2000.0, "c2": 2000.0}) == 1
    status = {r.data.tags["seater.cell_id"]: r.info.status for r in again.client.search_runs([again.experiment_id])}
    assert status == {"c1": "FAILED", "c2": "RUNNING"}


def test_the_runs_of_another_run_folder_are_never_abandoned(tmp_path):
    """Two grids in different folders share a store and a suite name (one experiment): each closes
    only its own folder's open runs, even those older than its rows (the other grid is still running
    them); runs of a store written before the tag existed count as its own."""
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    MLflowSink(uri, "live", tmp_path / "a").stream("c1", "cell c1", [{"step": 0, "metrics": {"train/loss": 1.0}}], started=1000.0)
    MLflowSink(uri, "live", tmp_path / "b").stream("c1", "cell c1", [{"step": 0, "metrics": {"train/loss": 1.0}}], started=1000.0)
    MLflowSink(uri, "live").stream("c2", "cell c2", [{"step": 0, "metrics": {"train/loss": 1.0}}], started=1000.0)  # untagged
    again = MLflowSink(uri, "live", tmp_path / "a" / ".." / "a")  # the same folder, named another way
    assert again.fail_abandoned({"c1", "c2"}, started_before={"c1": 2000.0, "c2": 2000.0}) == 2
    runs = again.client.search_runs([again.experiment_id])
    status = {(r.data.tags.get("seater.run_dir"), r.data.tags["seater.cell_id"]): r.info.status for r in runs}
    assert status == {(str(tmp_path / "a"), "c1"): "FAILED", (str(tmp_path / "b"), "c1"): "RUNNING", (None, "c2"): "FAILED"}
