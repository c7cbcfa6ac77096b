"""Trackers for the harness: a JSON-lines results file first, MLflow second.

Why two: a results row is appended (flushed and fsynced) to ``<run dir>/results.jsonl`` the
moment a cell ends, so nothing is lost when the MLflow store is down or the grid is killed;
MLflow is then fed from that row (`push_row`), and `import_runfile` replays a whole file later.
Each row carries a unique ``row_id`` stored as an MLflow tag, which makes pushing idempotent.
MLflow forbids '@' in names, so ``test/recall@10`` becomes ``test/recall_at_10`` there (the
JSON lines keep the library's spelling).

Inside a cell the retriever logs through a `RecordingTracker` (kept in memory and written into
the row: per-epoch curves become MLflow metrics ``epoch/<key>`` with their step).
MLflow is imported lazily: it takes seconds to import and the cells never need it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator

from seater.errors import ConfigError, DataError, SeaterError, TrackingError

STATUSES = ("RUNNING", "FINISHED", "FAILED")
_PARAM_MAX = 500  # MLflow params are strings of bounded length; longer values are cut with a mark


# ---------------------------------------------------------------------------------- in-cell
class RecordingTracker:
    """Keeps what a retriever logs, for the cell's results row.

    `progress_path`: each curve point is also appended there as a JSON line the moment it is
    logged, so the grid can show a cell's epochs in MLflow while it trains (`LiveCurves`)."""

    def __init__(self, progress_path: str | Path | None = None) -> None:
        self.params: dict[str, Any] = {}
        self.curves: list[dict[str, Any]] = []  # {"step": int | None, "metrics": {...}}
        self.artifacts: list[str] = []
        self.status = "RUNNING"
        self.progress_path = Path(progress_path) if progress_path is not None else None
        if self.progress_path is not None:
            self.progress_path.parent.mkdir(parents=True, exist_ok=True)

    def log_params(self, params: dict[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        point = {"step": step, "metrics": {k: float(v) for k, v in metrics.items()}}
        self.curves.append(point)
        if self.progress_path is not None:
            with open(self.progress_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(point) + "\n")

    def log_artifact(self, path: str | Path) -> None:
        self.artifacts.append(str(path))

    def set_status(self, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        self.status = status


def progress_file(run_dir: str | Path, cell_id: str) -> Path:
    """Where a running cell appends its curve points (`RecordingTracker`), for `LiveCurves`."""
    return Path(run_dir) / "cells" / f"{cell_id}.progress.jsonl"


class LiveCurves:
    """Follows the progress files of running cells and streams their new curve points to MLflow.

    A cell's run then appears in MLflow (RUNNING) as the cell starts (the file's first line holds
    its start time) and shows its curves as it trains; the cell's row later completes that same
    run (`MLflowSink.push`). `poll()` reads what the files hold now; `start()` polls every
    `interval_s` in a thread until `stop()`. A tracker error is reported once (`on_error`) and
    ends the streaming, never the grid."""

    def __init__(self, sink: "MLflowSink", cells: dict[str, str], run_dir: Path, interval_s: float = 30.0,
                 on_error: Any = None):
        self.sink, self.cells, self.run_dir, self.interval_s = sink, cells, Path(run_dir), interval_s
        self.on_error = on_error
        self._read: dict[str, int] = {}  # cell id -> bytes of its progress file already streamed
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="live-curves", daemon=True)
        self.failed = False

    def path(self, cell_id: str) -> Path:
        return progress_file(self.run_dir, cell_id)

    def poll(self, cell_id: str | None = None) -> None:
        with self._lock:
            for cid in [cell_id] if cell_id else list(self.cells):
                if self.failed:
                    return
                if cid not in self.cells:  # ended and finished already
                    continue
                try:
                    self._poll_one(cid)
                except Exception as e:  # noqa: BLE001 - a tracker outage must not stop the grid
                    self.failed = True
                    if self.on_error is not None:
                        self.on_error(e)

    def _poll_one(self, cell_id: str) -> None:
        try:
            with open(self.path(cell_id), "rb") as fh:
                fh.seek(self._read.get(cell_id, 0))
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # whole lines only: the cell may be writing the last one
        if end == 0:
            return
        lines = [json.loads(line) for line in chunk[:end].decode("utf-8").splitlines() if line.strip()]
        started = next((x["started"] for x in lines if "started" in x), None)
        self.sink.stream(cell_id, self.cells[cell_id], [x for x in lines if "metrics" in x], started)
        self._read[cell_id] = self._read.get(cell_id, 0) + end

    def finish(self, cell_id: str) -> None:
        """The cell has ended: stream what its file still holds, then stop following it."""
        self.poll(cell_id)
        with self._lock:
            self.cells.pop(cell_id, None)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def start(self) -> "LiveCurves":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)  # a daemon: a push stuck on an unreachable server does not hold the exit


class CompositeTracker:
    """Sends every call to each of several trackers."""

    def __init__(self, *trackers: Any):
        self.trackers = trackers

    def log_params(self, params: dict[str, Any]) -> None:
        for t in self.trackers:
            t.log_params(params)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for t in self.trackers:
            t.log_metrics(metrics, step=step)

    def log_artifact(self, path: str | Path) -> None:
        for t in self.trackers:
            t.log_artifact(path)

    def set_status(self, status: str) -> None:
        for t in self.trackers:
            t.set_status(status)


# ---------------------------------------------------------------------------------- JSON lines
class JsonlTracker:
    """Appends whole results rows to a JSON-lines file, flushed and fsynced one by one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, sort_keys=True, default=_jsonable)
        with open(self.path, "a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a writer was killed mid-line: end that torn line first
                    fh.write(b"\n")
            fh.write((line + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())


def _jsonable(x: Any) -> Any:
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(x)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a results file. Torn lines (a writer killed mid-write) are skipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"results file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a results file written by seater-bench (not UTF-8 text: {e.reason} at byte {e.start})") from None
    rows, torn = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        problem = "not JSON" if row is None else _row_problem(row)
        if problem is None:
            rows.append(row)
        elif row is None and line.lstrip().startswith("{"):
            # torn by a kill (`JsonlTracker.append` starts the next row on a new line); where the cut fell
            # can leave anything, a closing brace included, so any object that does not parse counts. A
            # whole row glued after the torn part (files concatenated by hand) is kept.
            torn.append(i)
            if (whole := _row_after_torn_part(line)) is not None:
                rows.append(whole)
        else:
            raise DataError(f"{path}:{i}: not a results row written by seater-bench ({problem})")
    if torn:
        warnings.warn(f"{path}: skipped the torn part of {len(torn)} line(s) (a writer killed mid-row) at line(s) "
                      f"{', '.join(map(str, torn))}; a cell with no other row counts as not run", stacklevel=2)
    return rows


def _row_after_torn_part(line: str) -> dict[str, Any] | None:
    """The whole results row that ends `line` after a torn one, if there is one."""
    decoder = json.JSONDecoder()
    start = line.find('{"', 1)
    while start != -1:
        try:
            row, end = decoder.raw_decode(line, start)
        except json.JSONDecodeError:
            row, end = None, -1
        if end == len(line.rstrip()) and _row_problem(row) is None:
            return row
        start = line.find('{"', start + 1)
    return None


ROW_STATUSES = ("FINISHED", "FAILED")  # a results row is written when its cell has ended


def _row_problem(row: Any) -> str | None:
    """What makes `row` unusable for the leaderboard and MLflow, or None: checked once, on reading,
    so that a hand-edited or foreign file is one error naming its line, not a KeyError later."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key in ("row_id", "cell_id", "name"):
        if not isinstance(row.get(key), str):
            return f"{key!r} missing or not a string"
    if row.get("status") not in ROW_STATUSES:
        return f"status must be one of {', '.join(ROW_STATUSES)}, got {row.get('status')!r}"
    cell, metrics = row.get("cell"), row.get("metrics")
    if not isinstance(cell, dict) or isinstance(cell.get("seed"), bool) or not isinstance(cell.get("seed"), int):
        return "'cell' missing or without an integer seed"
    if not isinstance(metrics, dict) or not isinstance(row.get("params", {}), dict):
        return "'metrics' or 'params' missing or not an object"
    bad = next((k for k, v in metrics.items() if isinstance(v, bool) or not isinstance(v, (int, float))), None)
    return None if bad is None else f"metric {bad!r} is {metrics[bad]!r}, not a number"


def per_user_dir(row: dict[str, Any], runfile: str | Path) -> Path | None:
    """A row's per-user metric folder: the recorded path, else ``<run folder>/per_user/<cell id>``
    (a run folder that was moved, or a row copied in from another run); None if neither exists."""
    recorded = row.get("artifacts", {}).get("per_user")
    for path in (Path(recorded) if recorded else None, Path(runfile).parent / "per_user" / str(row.get("cell_id"))):
        if path is not None and path.is_dir():
            return path
    return None


def epoch_seconds(curves: list[dict[str, Any]]) -> float | None:
    """Mean training seconds per epoch (validation apart) from a row's per-epoch curves; None
    for a retriever that does not train in epochs (most-popular)."""
    times = [c["metrics"]["time/epoch_s"] for c in curves if "time/epoch_s" in c.get("metrics", {})]
    return sum(times) / len(times) if times else None


def latest_rows(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last row of every cell id (a rerun supersedes an earlier failure)."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        out[r["cell_id"]] = r
    return out


# ---------------------------------------------------------------------------------- MLflow
def default_tracking_uri(run_dir: str | Path) -> str:
    return f"sqlite:///{Path(run_dir).resolve() / 'mlflow.db'}"


def local_artifact_root(tracking_uri: str) -> str | None:
    """Where a sqlite store's artifacts go: `mlartifacts/` beside the database file.

    MLflow's own default is ``./mlruns`` under whatever folder the command ran from, which
    scatters a run folder's trees and per-user arrays over the working directories it was run
    in (and loses them with a removed worktree). None (MLflow decides) for a server or other URI.
    """
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    db = Path(tracking_uri[len(prefix):].split("?", 1)[0]).resolve()
    return (db.parent / "mlartifacts").as_uri()


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"retriever.lr": 0.001, ...}`` (what MLflow params need)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _param_str(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= _PARAM_MAX else s[: _PARAM_MAX - 3] + "..."


class MLflowTracker:
    """A `seater.tracking.Tracker` writing to one MLflow run (created on construction)."""

    def __init__(self, client: Any, experiment_id: str, run_name: str, tags: dict[str, str] | None = None,
                 start_time_ms: int | None = None):
        self.client = client
        run = client.create_run(experiment_id, start_time=start_time_ms, tags=dict(tags or {}), run_name=run_name)
        self.run_id = run.info.run_id

    @classmethod
    def attach(cls, client: Any, run_id: str) -> "MLflowTracker":
        """A tracker for a run that exists already."""
        t = cls.__new__(cls)
        t.client, t.run_id = client, run_id
        return t

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(mlflow_key(k), _param_str(v)) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None, timestamp_ms: int | None = None) -> None:
        from mlflow.entities import Metric

        ts = timestamp_ms or int(time.time() * 1000)
        items = [Metric(mlflow_key(k), float(v), ts, int(step or 0)) for k, v in metrics.items() if v is not None and _finite(v)]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_curves(self, points: list[dict[str, Any]], timestamp_ms: int | None = None) -> None:
        """Per-epoch points (``{"step", "metrics"}``, as `RecordingTracker.curves`) as ``epoch/<key>`` metrics."""
        for c in points:
            self.log_metrics({f"epoch/{k}": v for k, v in c["metrics"].items()}, step=c.get("step"), timestamp_ms=timestamp_ms)

    def log_artifact(self, path: str | Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def set_status(self, status: str, end_time_ms: int | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        if status == "RUNNING":
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.client.set_terminated(self.run_id, status=status, end_time=end_time_ms)


def mlflow_key(key: str) -> str:
    """MLflow names may not hold '@': ``test/recall@10`` is logged as ``test/recall_at_10``."""
    return key.replace("@", "_at_")


def _finite(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and f not in (float("inf"), float("-inf"))


PROBE_TIMEOUT_S = 5.0


def check_reachable(tracking_uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise `TrackingError` at once when an http(s) tracking server does not answer.

    MLflow's own client retries a dead server with back-off for about four minutes per call, so
    the grid would sit silent before its first cell (and `import` before its traceback). The probe
    goes through MLflow's own request code with the same credentials and TLS settings as the client
    (certificate bundles, insecure TLS, tokens), once and without retries; any HTTP answer counts as
    reachable (a proxy may not serve MLflow's /health) except a server error (5xx)."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    from mlflow.exceptions import MlflowException
    from mlflow.tracking._tracking_service.utils import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        resp = http_request(get_default_host_creds(tracking_uri), "/health", "GET", max_retries=0, timeout=timeout, raise_on_status=False)
    except MlflowException as e:  # connection refused, name not resolved, TLS failure, timeout
        raise TrackingError(f"cannot reach the MLflow server at {tracking_uri} ({first_line(e)[:300]})") from None
    if resp.status_code >= 500:  # a proxy answering for a server that is down: each call would wait out the retries
        raise TrackingError(f"the MLflow server at {tracking_uri} answers HTTP {resp.status_code}")


def first_line(e: BaseException) -> str:
    """An exception's message, first line only (MLflow's errors carry pages of server output), or its type."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


class MLflowSink:
    """Pushes results rows into an MLflow experiment named after the suite, once per row id."""

    def __init__(self, tracking_uri: str, experiment: str, run_dir: str | Path | None = None):
        """`run_dir`: the run folder whose rows this sink pushes; its runs carry it as tag
        ``seater.run_dir``, so that `fail_abandoned` never closes the runs of a grid in another
        folder that shares the store and the suite name (hence the experiment)."""
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as e:  # pragma: no cover
            raise ConfigError(f"mlflow is not installed ({e}); use --tracking-uri none") from None
        from mlflow.exceptions import MlflowException

        self.uri = tracking_uri
        self.run_dir = str(Path(run_dir).resolve()) if run_dir is not None else None
        check_reachable(tracking_uri)
        if tracking_uri.startswith(("http://", "https://")):
            # a server that dies mid-grid: a few retries, not MLflow's default seven with back-off (minutes
            # per row); read per request, so it also holds for `import` (a user's own setting stays)
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
        # a new sqlite store announces its table creation at INFO, twice, in the middle of our progress output
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        try:
            self.client = MlflowClient(tracking_uri=tracking_uri)
        except MlflowException as e:  # a URI MLflow cannot use at all (an unknown scheme); an outage raises below
            raise ConfigError(f"MLflow tracking URI {tracking_uri!r} cannot be used: {first_line(e)}") from None
        exp = self.client.get_experiment_by_name(experiment)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(
            experiment, artifact_location=local_artifact_root(tracking_uri))
        self._pushed: set[str] | None = None
        self._live: dict[str, tuple[str, int]] = {}  # cell id -> (run id, curve points streamed)
        self._lock = threading.RLock()  # the grid's thread and `LiveCurves` share the client

    def pushed_row_ids(self) -> set[str]:
        if self._pushed is None:
            ids: set[str] = set()
            token = None
            while True:
                page = self.client.search_runs([self.experiment_id], max_results=1000, page_token=token)
                # a RUNNING run with a row id was cut off mid-push (the grid killed): not pushed, push again
                ids.update(r.data.tags["seater.row_id"] for r in page if "seater.row_id" in r.data.tags and r.info.status != "RUNNING")
                token = page.token
                if not token:
                    break
            self._pushed = ids
        return self._pushed

    def stream(self, cell_id: str, name: str, points: list[dict[str, Any]], started: float | None = None) -> None:
        """Curve points of a cell still running: its MLflow run is created (RUNNING, tag
        ``seater.live``, starting at `started`, unix seconds) at the first call and later completed
        by `push` of the cell's row."""
        with self._lock:
            if cell_id not in self._live:
                t = MLflowTracker(self.client, self.experiment_id, name, {"seater.cell_id": cell_id, "seater.live": "1", **self._origin()},
                                  start_time_ms=int(started * 1000) if started is not None else None)
                self._live[cell_id] = (t.run_id, 0)
            run_id, n = self._live[cell_id]
            MLflowTracker.attach(self.client, run_id).log_curves(points)
            self._live[cell_id] = (run_id, n + len(points))

    def fail_abandoned(self, cell_ids: set[str], why: str = "the grid stopped before the cell finished",
                       started_before: dict[str, float] | None = None) -> int:
        """Mark FAILED the runs of these cells left RUNNING: streamed by a killed grid (the cells never
        wrote a row, or wrote it just before the kill; they run again, or their rows are pushed, into new
        runs), cut off mid-push, or streamed by a grid that lost the server (`import` then pushes their
        rows as new runs). Runs this sink streams now are left alone, as are those of another run folder
        (tag ``seater.run_dir``; runs without the tag count as this folder's), and so is a run of a cell in
        `started_before` (cell id -> unix seconds: its row's end) that started after that time: another grid
        on the same store may be running the cell again. Returns how many."""
        with self._lock:
            runs = self.client.search_runs([self.experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
            limits = started_before or {}
            mine = {run_id for run_id, _ in self._live.values()}

            def abandoned(r) -> bool:
                cid = r.data.tags.get("seater.cell_id")
                return (cid in cell_ids and r.info.run_id not in mine
                        and r.data.tags.get("seater.run_dir", self.run_dir) == self.run_dir  # this folder's, or untagged
                        and (cid not in limits or r.info.start_time <= limits[cid] * 1000))

            stale = [r.info.run_id for r in runs if abandoned(r)]
            for run_id in stale:
                self.client.set_tag(run_id, "seater.error", why)
                self.client.set_terminated(run_id, status="FAILED")
            return len(stale)

    def _origin(self) -> dict[str, str]:
        return {"seater.run_dir": self.run_dir} if self.run_dir is not None else {}

    def push(self, row: dict[str, Any]) -> str | None:
        """Create the MLflow run for `row` (or complete the one its cell streamed to) unless a run
        with its row id exists; return the run id."""
        with self._lock:
            return self._push(row)

    def _push(self, row: dict[str, Any]) -> str | None:
        if row["row_id"] in self.pushed_row_ids():
            return None
        tags = {
            "seater.row_id": row["row_id"],
            "seater.cell_id": row["cell_id"],
            "seater.suite": row.get("suite", ""),
            "mlflow.source.git.commit": str(row.get("provenance", {}).get("commit", "")),
            **self._origin(),
        }
        if row.get("error"):
            tags["seater.error"] = row["error"][:5000]
        start = int(row.get("started", time.time()) * 1000)
        end = int(row.get("ended", time.time()) * 1000)
        live = self._live.pop(row["cell_id"], None)
        if live is None:
            t, streamed = MLflowTracker(self.client, self.experiment_id, row["name"], tags, start_time_ms=start), 0
        else:  # the run its curves went to while it trained
            t, streamed = MLflowTracker.attach(self.client, live[0]), live[1]
            for key, value in tags.items():
                self.client.set_tag(t.run_id, key, value)
        try:
            t.log_params(row.get("params", {}))
            t.log_metrics(row.get("metrics", {}), step=0, timestamp_ms=end)
            t.log_curves(row.get("curves", [])[streamed:], timestamp_ms=start)
            for name, path in row.get("artifacts", {}).items():
                if path and Path(path).is_dir():
                    self.client.log_artifacts(t.run_id, str(path), artifact_path=name)
                elif path and Path(path).is_file():
                    self.client.log_artifact(t.run_id, str(path), artifact_path=name)
            self.client.log_text(t.run_id, json.dumps(row, indent=1, sort_keys=True, default=_jsonable), "row.json")
            t.set_status(row["status"] if row["status"] in ROW_STATUSES else "FAILED", end_time_ms=end)
        except BaseException:  # an error, or the grid interrupted between the row's file write and here
            try:
                self.client.delete_run(t.run_id)  # half-written: let a later push (import) redo it
            except Exception:  # noqa: BLE001 - the next grid's `fail_abandoned` closes it instead
                pass
            raise
        self.pushed_row_ids().add(row["row_id"])
        return t.run_id


def import_runfile(runfile: str | Path, tracking_uri: str | None = None, experiment: str | None = None) -> tuple[int, int]:
    """Push every row of a results file into MLflow; rows already there are skipped.

    Returns ``(pushed, skipped)``. The experiment defaults to the rows' suite name and the
    store to the sqlite file beside the results file.
    """
    runfile = Path(runfile)
    if runfile.is_dir():  # a run folder, as `leaderboard` and `compare` take
        runfile = runfile / "results.jsonl"
    if tracking_uri == "none":
        raise ConfigError("import pushes rows into MLflow, so --tracking-uri none leaves it nowhere to push: leave the option out (sqlite beside the file) or name a store")
    rows = read_rows(runfile)
    if not rows:
        return 0, 0
    uri = tracking_uri or default_tracking_uri(runfile.parent)
    if runfile.name != "results.jsonl":  # not a run folder's: nothing else writes it
        return _import_rows(rows, uri, experiment)
    from bench.locks import run_lock

    with run_lock(runfile.parent, "import"):  # not beside a grid that pushes the same rows
        return _import_rows(rows, uri, experiment, runfile.parent)


def _import_rows(rows: list[dict[str, Any]], uri: str, experiment: str | None, run_dir: Path | None = None) -> tuple[int, int]:
    by_suite: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_suite.setdefault(experiment or r.get("suite") or "seater-bench", []).append(r)
    pushed = skipped = 0
    for exp, rs in by_suite.items():
        try:
            sink = MLflowSink(uri, exp, run_dir)
            for r in rs:
                if sink.push(r) is None:
                    skipped += 1
                else:
                    pushed += 1
            # runs the grid left open (it lost the server, or was killed mid-push): their rows are now runs of their own
            sink.fail_abandoned({r["cell_id"] for r in rs}, why="left open by its grid; the cell's row was imported as another run",
                                started_before={r["cell_id"]: r.get("ended", time.time()) for r in rs})
        except SeaterError:
            raise
        except Exception as e:  # noqa: BLE001 - a server error mid-way: one line, and rerunning resumes
            raise TrackingError(f"MLflow at {uri} failed after {pushed} pushed runs ({type(e).__name__}: {first_line(e)}); "
                                "rerun to push the rest") from None
    return pushed, skipped


def iter_cells_done(rows: Iterable[dict[str, Any]], include_failed: bool = False) -> Iterator[str]:
    """Cell ids whose latest row is FINISHED (or, with `include_failed`, any recorded status)."""
    for cid, r in latest_rows(rows).items():
        if r.get("status") == "FINISHED" or include_failed:
            yield cid
