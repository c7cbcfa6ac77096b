"""Run a suite: expand the grid, skip finished cells, hand the rest to an executor, record rows.

One cell (`execute_cell`, run inside its own process by `bench.executor.LocalExecutor` via
``python -m bench.runner CELL.json RESULT.json``):

    load -> split -> item embeddings (cached) -> tree (cached) -> fit -> evaluate valid + test

Caches under ``cache_dir``: embeddings as ``emb/<key>.npy`` (key = dataset, protocol, history
length, seed, source and its parameters; loaded with ``allow_pickle=False``) and trees as
``trees/<builder>-<key>.npz`` (key = builder, k, parameters, seed and the embeddings' hash).
A cached tree reports the build time measured when it was built.

Models that train with `seater.training.train_loop` checkpoint every epoch, the harness telling
them where (``<run dir>/checkpoints/<cell id>``, or next to the embedding cache file): a killed
cell's rerun resumes from its last finished epoch (its curves then start from the checkpoint's
epochs, and ``time/train_s`` adds their recorded time, ``fit/resumed_seconds``, to this attempt's);
the checkpoint is deleted once the cell has finished.

Timing is recorded separately: ``time/embeddings_s`` (0 when cached), ``time/tree_build_s``,
``time/train_s`` (fit only, tree build excluded), ``time/infer_ms_per_user`` (test split,
`recommend` calls only), ``mem/peak_mb`` (max RSS of the cell process) and on CUDA
``time/train_cuda_s`` (CUDA events) and ``mem/cuda_peak_mb`` (``torch.cuda.max_memory_allocated``).
Beside them, what else held the machine while the cell ran (other cells, other jobs; Linux):
``machine/other_cores`` and ``machine/steal_cores``, cores busy on average (`bench.provenance.MachineLoad`).

The grid (`run_suite`): rows are appended to ``<run dir>/results.jsonl`` as each cell ends,
then pushed to MLflow. Cells whose latest row is FINISHED are skipped, so rerunning a killed
grid only runs the missing (or failed) cells.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import resource
import shutil
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from bench.config import Cell, Suite, canonical, suite_record
from bench.locks import cache_lock, run_lock
from bench.provenance import MachineLoad
from seater.errors import ConfigError, DataError, SeaterError, TrackingError

# ---------------------------------------------------------------------------------- one cell


def _sha(obj: Any) -> str:
    return hashlib.sha1(canonical(obj).encode()).hexdigest()[:16]


def array_hash(x: np.ndarray) -> str:
    h = hashlib.sha1(np.ascontiguousarray(x).tobytes())
    h.update(str((x.shape, str(x.dtype))).encode())
    return h.hexdigest()[:16]


def _atomic_write(path: Path, write) -> None:
    """`write(tmp)`, then `tmp` renamed over `path`: parallel cells sharing the cache never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _atomic_save_npy(path: Path, x: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # np.save would append .npy to the temporary name
            np.save(fh, x, allow_pickle=False)

    _atomic_write(path, write)


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, sort_keys=True)))


def load_data(cell: Cell):
    """The cell's `Interactions`: generated (synthetic) or loaded from its path."""
    ds = cell.dataset
    if ds.source == "synthetic":
        from seater.data.synthetic import make_synthetic

        try:
            return make_synthetic(**{"name": ds.name, **ds.synthetic})
        except TypeError as e:
            raise ConfigError(f"datasets {ds.name!r}: bad synthetic parameters ({e})") from None
    from seater.data.loaders import load_dataset

    return load_dataset(ds.source, ds.format)


def _item_attribute_matrix(inter) -> np.ndarray:
    from seater.data.loaders import item_attribute_matrix

    try:
        x = item_attribute_matrix(inter)
    except DataError as e:
        raise DataError(f"embeddings.source = \"attributes\": {e}") from None
    if x.shape[1] == 0:
        raise DataError(f"embeddings.source = \"attributes\": no item of {inter.name} has an attribute")
    return x


class _Timer:
    """Wall clock, plus CUDA events and peak allocated memory when the device is CUDA."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.seconds = 0.0
        self.cuda_seconds: float | None = None
        self.cuda_peak_mb: float | None = None

    def __enter__(self) -> "_Timer":
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._start.record()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.cuda:
            import torch

            self._end.record()
            torch.cuda.synchronize()
            self.cuda_seconds = self._start.elapsed_time(self._end) / 1000.0
            self.cuda_peak_mb = torch.cuda.max_memory_allocated() / 2**20
        self.seconds = time.perf_counter() - self._t0


def _uses_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available() and (device == "auto" or device.startswith("cuda"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _emb_key(cell: Cell) -> dict[str, Any]:
    from dataclasses import asdict

    emb = cell.embeddings
    key: dict[str, Any] = {"dataset": asdict(cell.dataset), "source": emb.source, "params": emb.params}
    if emb.kind == "model":  # only a trained model depends on the split and the seed
        key["seed"] = cell.seed
    if emb.kind == "file":
        st = Path(emb.source).stat()
        key["file"] = [st.st_size, st.st_mtime_ns]
    return key


def item_embeddings(cell: Cell, inter, split, cache_dir: Path, out: dict[str, Any], progress: bool = False) -> np.ndarray:
    """float32 ``(n_items, d)`` from the cell's embedding source, through the cache (a model
    trained for them checkpoints next to the cache file, so a killed cell resumes its training)."""
    emb = cell.embeddings
    assert emb is not None
    path = cache_dir / "emb" / f"{emb.source if emb.kind != 'file' else 'file'}-{_sha(_emb_key(cell))}.npy"
    with cache_lock(path):
        return _item_embeddings(cell, inter, split, path, out, progress)


def _cached_inputs_match(path: Path, digests: dict[str, str]) -> bool:
    """Whether the cache file `path` was made from the input files as they are now.

    Its key names the inputs by path (`_emb_key`), so ``<path>.inputs.json`` beside it records the
    digests of their bytes (`bench.inputs`); a cache file from before these records is taken as
    current, and gets one."""
    record = _inputs_record(path)
    if not record.is_file():
        _atomic_write_json(record, digests)
        return True
    return json.loads(record.read_text()) == digests


def _inputs_record(path: Path) -> Path:
    return path.with_name(path.name + ".inputs.json")


def _fresh_checkpoint(ckpt: Path, digests: dict[str, str]) -> None:
    """The checkpoint folder of an embedding model about to train, for these input files: one a killed
    training left on other files (a dataset rewritten since) is removed, not resumed."""
    record = ckpt / "inputs.json"
    if record.is_file() and json.loads(record.read_text()) != digests:
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    _atomic_write_json(record, digests)


def _cached_table(path: Path, n_items: int) -> np.ndarray | None:
    """The cached table at `path`, or None (file and record removed, so it is computed again) when it
    does not load or is not one finite row per item: a damaged or replaced cache file was used as is."""
    from bench.tracking import first_line
    from seater.trees.checks import embedding_matrix

    try:
        x = np.load(path, allow_pickle=False)
        if not isinstance(x, np.ndarray):  # an .npz archive saved under the name
            raise TypeError(f"a {type(x).__name__}, not one array")
        x = embedding_matrix(x)  # real, within float32, finite
        if x.shape[0] == n_items:
            return x
        why = f"shape {x.shape}, expected ({n_items}, d)"
    except (OSError, ValueError, EOFError, TypeError, DataError) as e:
        why = f"{type(e).__name__}: {first_line(e)}"
    warnings.warn(f"cached embeddings {path} are not usable ({why}); computing them again")
    path.unlink(missing_ok=True)
    _inputs_record(path).unlink(missing_ok=True)
    return None


def _item_embeddings(cell: Cell, inter, split, path: Path, out: dict[str, Any], progress: bool) -> np.ndarray:
    from bench.inputs import input_digests
    from seater.trees.checks import embedding_matrix, load_embeddings

    emb = cell.embeddings
    digests = input_digests(cell)  # a dataset rewritten in place retrains the model
    x = _cached_table(path, inter.n_items) if path.is_file() and _cached_inputs_match(path, digests) else None
    if x is not None:
        out["metrics"]["time/embeddings_s"] = 0.0
        out["params"]["embeddings.cached"] = True
    else:
        t0, resumed = time.perf_counter(), 0.0
        if emb.kind == "file":
            x = load_embeddings(emb.source)
        elif emb.kind == "attributes":
            x = _item_attribute_matrix(inter)
        elif emb.source == "latent":
            if "item_latent" not in inter.extra:
                raise ConfigError(f"embeddings.source = \"latent\" needs synthetic data; dataset {cell.dataset.name!r} has no planted item vectors")
            x = np.asarray(inter.extra["item_latent"], dtype=np.float32)
        else:
            from bench.registry import retrievers

            ckpt = path.with_name(path.stem + ".ckpt")
            _fresh_checkpoint(ckpt, digests)
            entry = retrievers().get(emb.source)
            model = entry.factory(**_runtime_params(entry, emb.params, ckpt, progress), device=cell.device, seed=cell.seed)
            model.fit(split)
            x = model.item_embeddings()
            resumed = _resumed_seconds(model)
            shutil.rmtree(ckpt, ignore_errors=True)
        out["metrics"]["time/embeddings_s"] = time.perf_counter() - t0 + resumed
        out["params"]["embeddings.cached"] = False
        try:  # checked before the float32 cast and the cache: strings and complex values cast silently
            x = embedding_matrix(x)
        except DataError as e:
            raise DataError(f"embeddings from {emb.source}: {e}") from None
        if x.shape[0] != inter.n_items:
            raise DataError(f"embeddings from {emb.source}: expected shape ({inter.n_items}, d), one row per item "
                            f"(row i = item i+1, no padding row), got {x.shape}")
        _atomic_save_npy(path, x)
        _atomic_write_json(_inputs_record(path), digests)
    return x  # C-contiguous float32 either way (`embedding_matrix`)


def build_tree(cell: Cell, x: np.ndarray, emb_hash: str, cache_dir: Path, out: dict[str, Any]):
    spec = cell.tree
    assert spec is not None
    key = _sha({"builder": spec.builder, "k": spec.k, "params": spec.params, "seed": cell.seed, "embeddings": emb_hash})
    path = cache_dir / "trees" / f"{spec.builder}-{key}.npz"
    with cache_lock(path):
        tree, seconds = _cached_tree(cell, x, path, out)
    out["metrics"].update({
        "time/tree_build_s": seconds,
        "tree/depth": tree.depth,
        "tree/n_nodes": tree.n_nodes,
        "tree/balanced": float(tree.is_balanced()),
    })
    quality = _tree_quality(tree, x)
    out["metrics"].update({f"tree/{k}": v for k, v in quality.items()})
    out["lineage"]["tree_hash"] = tree.hash()
    out["artifacts"]["tree"] = str(path)
    return tree


def _cached_tree(cell: Cell, x: np.ndarray, path: Path, out: dict[str, Any]):
    """(tree, build seconds): loaded from `path`, or built and saved there (atomically)."""
    from bench.registry import builders
    from seater.trees.tree import Tree

    spec = cell.tree
    if path.is_file():
        tree = Tree.load(path)
        out["params"]["tree.cached"] = True
        return tree, tree.build_seconds()
    fn = builders().get(spec.builder).factory
    params = dict(spec.params)
    if params.get("device") == "auto" and cell.device != "auto":
        # a builder whose device is auto (rqvae's default, or a suite's explicit "auto": the two are one
        # value) runs where the suite puts the cell's model; another device (balanced's default cpu, or
        # one the suite names) stays. The tree cache key keeps "auto": the device is not part of identity
        params["device"] = cell.device
    t0 = time.perf_counter()
    tree = fn(x, spec.k, seed=cell.seed, **params)
    seconds = time.perf_counter() - t0
    if not isinstance(tree, Tree):
        raise SeaterError(f"builder {spec.builder!r} returned {type(tree).__name__}, not a Tree")
    tree.build_info["wall_seconds"] = seconds
    tree.build_info.setdefault("builder", spec.builder)
    out["params"]["tree.cached"] = False
    _atomic_write(path, tree.save)
    return tree, seconds


def _tree_quality(tree, x: np.ndarray) -> dict[str, float]:
    """Clustering cost, balance and the share of items off their nearest centroid, from
    `seater.trees.quality` (lower = tighter clusters).

    Empty when that module is not in this checkout yet (it belongs to the tree-builder work).
    """
    import importlib.util

    if importlib.util.find_spec("seater.trees.quality") is None:
        return {}
    from seater.trees.quality import off_nearest, tree_quality

    q = tree_quality(tree, x)
    out = {k: float(q[k]) for k in ("total_cost", "root_cost", "gini") if k in q}
    if out.get("root_cost"):
        out["cost_ratio"] = out["total_cost"] / out["root_cost"]
    for level, c in enumerate(q.get("cost_per_level", []), 1):
        out[f"cost_level{level}"] = float(c)
    off = off_nearest(tree, x)
    out["off_nearest"] = off["off_nearest"]
    for level, share in enumerate(off["off_nearest_per_level"], 1):
        out[f"off_nearest_level{level}"] = share
    return out


def execute_cell(cell: Cell, run_dir: Path, cache_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Run one cell in this process and return its row fields (status FINISHED); raises on failure."""
    from bench.inputs import input_digests
    from bench.registry import retrievers

    out: dict[str, Any] = {"params": {}, "metrics": {}, "curves": [], "lineage": {}, "artifacts": {}, "data": {}}
    cuda = _uses_cuda(cell.device)

    def say(msg: str) -> None:
        if progress:
            print(f"[{cell.name}] {msg}", file=sys.stderr, flush=True)

    say("load and split")
    need_split = cell.retriever is not None or (cell.tree is not None and cell.embeddings.kind == "model")

    t0 = time.perf_counter()
    out["lineage"].update(input_digests(cell))  # before loading: the row names the bytes it read (a changed file reruns the cell)
    inter = load_data(cell)
    split = None
    if need_split:
        from seater.data.splits import make_split

        split = make_split(inter, cell.dataset.protocol, seed=cell.seed, max_history=cell.dataset.max_history)
    out["metrics"]["time/data_s"] = time.perf_counter() - t0
    out["data"] = {"n_users": inter.n_users, "n_items": inter.n_items, "n_interactions": inter.n_interactions}
    if split is not None:
        out["data"].update({"n_train_samples": len(split.train), "n_valid_users": len(split.valid),
                            "n_test_users": len(split.test), "n_dropped_users": split.n_dropped_users})
    out["metrics"].update({f"data/{k}": float(v) for k, v in out["data"].items()})

    tree = None
    if cell.tree is not None:
        say(f"item embeddings ({cell.embeddings.source})")
        x = item_embeddings(cell, inter, split, cache_dir, out, progress)
        say(f"tree ({cell.tree.builder}, k={cell.tree.k})")
        emb_hash = array_hash(x)
        out["lineage"]["embeddings_hash"] = emb_hash
        tree = build_tree(cell, x, emb_hash, cache_dir, out)

    if cell.retriever is not None:
        from bench.tracking import RecordingTracker, epoch_seconds, progress_file
        from seater.evaluation import evaluate_retriever

        spec = cell.retriever
        entry = retrievers().get(spec.name)
        ckpt = run_dir / "checkpoints" / _cell_id(cell)
        model = entry.factory(**_runtime_params(entry, spec.params, ckpt, progress), device=cell.device, seed=cell.seed)
        rec = RecordingTracker(progress_path=progress_file(run_dir, cell.id))  # followed by the grid: live MLflow curves
        say(f"fit {spec.name}")
        extra = {"item_embeddings": x} if tree is not None and getattr(model, "uses_item_embeddings", False) else {}
        with _Timer(cuda) as t_fit:
            model.fit(split, tree=tree, tracker=rec, **extra)
        out["curves"] = rec.curves
        out["metrics"]["time/train_s"] = t_fit.seconds + _resumed_seconds(model)
        if (epoch_s := epoch_seconds(rec.curves)) is not None:
            out["metrics"]["time/epoch_s"] = epoch_s
        if t_fit.cuda_seconds is not None:
            out["metrics"]["time/train_cuda_s"] = t_fit.cuda_seconds
            out["metrics"]["mem/cuda_peak_train_mb"] = t_fit.cuda_peak_mb
        for k, v in (getattr(model, "fit_info_", None) or {}).items():
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                out["metrics"][f"fit/{k}"] = float(v)
        per_user_dir = run_dir / "per_user" / _cell_id(cell)
        for part, evalset in (("valid", split.valid), ("test", split.test)):
            say(f"evaluate {part} ({len(evalset)} users)")
            with _Timer(cuda) as t_ev:
                res = evaluate_retriever(model, evalset, ks=cell.ks, batch_size=cell.eval_batch_size,
                                         progress=progress, n_items=split.n_items)
            out["metrics"].update({f"{part}/{k}": float(v) for k, v in res.metrics.items()})
            out["metrics"].update({f"{part}/{k}": float(v) for k, v in res.prediction_checks.items()})
            if part == "test":
                out["metrics"]["time/infer_ms_per_user"] = 1000.0 * res.seconds / max(res.n_users, 1)
                out["metrics"]["time/users_per_s"] = _users_per_s(res)
                if t_ev.cuda_peak_mb is not None:
                    out["metrics"]["mem/cuda_peak_infer_mb"] = t_ev.cuda_peak_mb
                _atomic_save_npy(per_user_dir / "test_users.npy", np.asarray(evalset.users, dtype=np.int64))
                for k, arr in res.per_user.items():
                    _atomic_save_npy(per_user_dir / f"test_{k}.npy", np.asarray(arr, dtype=np.float64))
                out["artifacts"]["per_user"] = str(per_user_dir)
                if cell.exact_users > 0 and hasattr(model, "recommend_exact"):
                    from seater.evaluation import beam_vs_exact

                    say(f"beam vs exact scoring ({min(cell.exact_users, len(evalset))} test users)")
                    gap = beam_vs_exact(model, evalset, cell.ks, cell.exact_users, seed=cell.seed, beam_predictions=res.predictions)
                    out["metrics"].update({f"test_exact/{k}": float(v) for k, v in gap.items()})
                if cell.beam_sweep and hasattr(model, "beam_size"):
                    _beam_sweep(model, evalset, cell, out["metrics"], say, progress, split.n_items)
        peaks = [v for k, v in out["metrics"].items() if k.startswith("mem/cuda_peak")]
        if peaks:
            out["metrics"]["mem/cuda_peak_mb"] = max(peaks)
        shutil.rmtree(ckpt, ignore_errors=True)  # the cell is done: its rerun never resumes
    out["metrics"]["mem/peak_mb"] = _peak_rss_mb()
    out["params"]["torch_threads"] = _torch_threads()  # timings (and float sums) depend on it
    return out


def _resumed_seconds(model) -> float:
    """Training seconds of the epochs a killed attempt ran, restored from its checkpoint (0 without one)."""
    return float((getattr(model, "fit_info_", None) or {}).get("resumed_seconds", 0.0))


def _torch_threads() -> int:
    import torch  # imported by every cell already; the grid's own process stays without it

    return torch.get_num_threads()


def _beam_sweep(model, evalset, cell: Cell, metrics: dict[str, float], say, progress: bool, n_items: int) -> None:
    """The trained model decodes the test users again at each width of the suite's `beam_sweep`
    (cut-offs up to the width): what a narrower or wider beam costs in quality and buys in users/s."""
    from bench.config import beam_key
    from seater.evaluation import evaluate_retriever

    default = model.beam_size
    try:
        for width in cell.beam_sweep:
            ks = [k for k in cell.ks if k <= width]
            model.beam_size = width
            say(f"beam width {width} ({len(evalset)} test users)")
            res = evaluate_retriever(model, evalset, ks=ks, batch_size=cell.eval_batch_size, progress=progress, n_items=n_items)
            metrics.update({beam_key(width, k): float(v) for k, v in res.metrics.items()})
            metrics[beam_key(width, "users_per_s")] = _users_per_s(res)
    finally:
        model.beam_size = default


def _users_per_s(res) -> float:
    """An evaluation's decoding throughput as a loggable number (0 where no time was measurable)."""
    return float(res.users_per_second) if np.isfinite(res.users_per_second) else 0.0


def _cell_id(cell: Cell) -> str:
    return cell.id


def _runtime_params(entry, params: dict[str, Any], checkpoint_dir: Path, progress: bool) -> dict[str, Any]:
    """`params` plus what the harness sets at run time and leaves out of the cell's identity:
    a checkpoint folder (a killed cell's rerun resumes training from its last epoch) and
    per-epoch progress, for models that take them and were not given them by the suite."""
    extra: dict[str, Any] = {}
    if "checkpoint_dir" in entry.defaults and params.get("checkpoint_dir") is None:
        extra["checkpoint_dir"] = str(checkpoint_dir)
    if "progress" in entry.defaults and progress:
        extra["progress"] = True
    return {**params, **extra}


# ---------------------------------------------------------------------------------- rows


def cell_params(cell: Cell) -> dict[str, Any]:
    """Flat hyper-parameters of a cell, as logged to MLflow."""
    p: dict[str, Any] = {
        "cell_id": cell.id,
        "dataset": cell.dataset.name,
        "dataset.source": cell.dataset.source,
        "dataset.format": cell.dataset.format,
        "split.protocol": cell.dataset.protocol,
        "split.max_history": cell.dataset.max_history,
        "seed": cell.seed,
        "ks": ",".join(map(str, cell.ks)),
        "device": cell.device,
        "eval_batch_size": cell.eval_batch_size,
    }
    p.update({f"dataset.synthetic.{k}": v for k, v in cell.dataset.synthetic.items()})
    if cell.retriever:
        p["retriever"] = cell.retriever.name
        p.update({f"retriever.{k}": v for k, v in cell.retriever.params.items()})
    if cell.tree:
        p.update({"tree.label": cell.tree.label, "tree.builder": cell.tree.builder, "tree.k": cell.tree.k})
        p.update({f"tree.{k}": v for k, v in cell.tree.params.items()})
        if cell.embeddings:
            p["embeddings.source"] = cell.embeddings.source
            p.update({f"embeddings.{k}": v for k, v in cell.embeddings.params.items()})
    return p


def make_row(cell: Cell, status: str, started: float, ended: float, provenance: dict[str, Any],
             result: dict[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:
    result = result or {}
    params = cell_params(cell)
    params.update(result.get("params", {}))
    params.update({f"lineage.{k}": v for k, v in result.get("lineage", {}).items()})
    params.update({"commit": provenance.get("commit", ""), "hardware": provenance.get("hardware", "")})
    metrics = dict(result.get("metrics", {}))
    metrics["time/cell_s"] = ended - started
    return {
        "row_id": uuid.uuid4().hex,
        "cell_id": cell.id,
        "name": cell.name,
        "suite": cell.suite,
        "status": status,
        "error": error,
        "started": started,
        "ended": ended,
        "cell": cell.to_json(),
        "params": params,
        "metrics": metrics,
        "curves": result.get("curves", []),
        "lineage": result.get("lineage", {}),
        "artifacts": result.get("artifacts", {}),
        "data": result.get("data", {}),
        "provenance": {k: provenance.get(k) for k in ("commit", "hardware", "command", "python", "torch")}
                      | ({"patch": provenance["patch"]} if provenance.get("patch") else {}),
    }


def describe_error(e: BaseException) -> str:
    """One line for a user error; type, message and the innermost frame for a bug."""
    if isinstance(e, SeaterError):
        return f"{type(e).__name__}: {e}"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(e).__name__}: {e}{where}"


def cell_main(argv: list[str]) -> int:
    """``python -m bench.runner CELL.json RESULT.json``: run one cell, write its row, exit 0/1."""
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    cell = Cell.from_json(spec["cell"])
    started, load = time.time(), MachineLoad()
    _start_progress(Path(spec["run_dir"]), cell.id, started)
    try:
        result = execute_cell(cell, Path(spec["run_dir"]), Path(spec["cache_dir"]), progress=spec.get("progress", True))
        if (busy := load.summary()) is not None:  # other cells and jobs slow this cell's times: say how much
            result["metrics"].update({"machine/other_cores": busy["other_cores"], "machine/steal_cores": busy["steal_cores"]})
        row = make_row(cell, "FINISHED", started, time.time(), spec["provenance"], result)
        code = 0
    except Exception as e:  # noqa: BLE001 - any failure of a cell becomes a FAILED row
        error = describe_error(e)
        if isinstance(e, SeaterError):  # bad input or config: its message says what, a traceback only hides it
            print(f"error: {error}", file=sys.stderr)
        else:
            traceback.print_exc()
        row = make_row(cell, "FAILED", started, time.time(), spec["provenance"], None, error)
        code = 1
    tmp = result_path.with_name(result_path.name + ".tmp")
    tmp.write_text(json.dumps(row, default=_json_default))
    os.replace(tmp, result_path)
    return code


def _start_progress(run_dir: Path, cell_id: str, started: float) -> None:
    """Begin the cell's progress file with its start time: the grid opens the cell's MLflow run
    (`LiveCurves`) at once, with the right start, and the curve points follow."""
    from bench.tracking import progress_file

    path = progress_file(run_dir, cell_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"started": started}) + "\n")


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


# ---------------------------------------------------------------------------------- the grid


@dataclass
class RunSummary:
    suite: str
    run_dir: Path
    runfile: Path
    ran: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)  # cell ids whose rows were copied from other runs
    tracking_uri: str | None = None
    tracking_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.ran if r["status"] != "FINISHED"]


def reuse_file(src: str | Path) -> Path:
    """The results.jsonl of a ``--reuse`` source (a run folder or the file itself)."""
    srcfile = Path(src) / "results.jsonl" if Path(src).is_dir() else Path(src)
    if not srcfile.is_file():
        raise ConfigError(f"--reuse {src}: no results.jsonl there")
    return srcfile


def reuse_rows(cells: list[Cell], run_dir: Path, sources: Iterable[str | Path]) -> list[str]:
    """Append to ``run_dir/results.jsonl`` the FINISHED rows of `cells` found in other runs.

    A cell id is a hash of everything that defines the cell (data, embeddings, tree, retriever,
    seed), so equal ids are the same experiment. The per-user metric files travel too (the paired
    tests need them). Cells already finished here are left alone. Returns the reused cell ids.
    """
    from bench.inputs import changed_inputs
    from bench.tracking import JsonlTracker, iter_cells_done, latest_rows, per_user_dir, read_rows

    runfile = run_dir / "results.jsonl"
    have = set(iter_cells_done(read_rows(runfile))) if runfile.is_file() else set()
    by_id = {c.id: c for c in cells}
    wanted = set(by_id) - have
    jsonl = JsonlTracker(runfile)
    reused: list[str] = []
    for src in sources:
        srcfile = reuse_file(src)
        if srcfile.resolve() == runfile.resolve():
            continue
        for cid, row in latest_rows(read_rows(srcfile)).items():
            if cid not in wanted or row["status"] != "FINISHED" or changed_inputs(row, by_id[cid]):
                continue
            per_user = per_user_dir(row, srcfile)
            if per_user is not None:
                shutil.copytree(per_user, run_dir / "per_user" / cid, dirs_exist_ok=True)
                row.setdefault("artifacts", {})["per_user"] = str(run_dir / "per_user" / cid)
            jsonl.append(row)
            wanted.discard(cid)
            reused.append(cid)
    return reused


def select_cells(cells: list[Cell], patterns: Iterable[str]) -> list[Cell]:
    """The cells whose name matches any of the glob `patterns` (all cells when there are none).

    Names read ``dataset/retriever/tree/s<seed>``, e.g. ``beauty/seater/balanced:k=16/s0``: rerun one
    tree's cells or one seed of a grid without a trimmed copy of its suite file (whose cell ids are the
    same, so the rows still join the full grid's). A pattern that matches no cell is an error, not
    an empty run.
    """
    patterns = list(patterns)
    if not patterns:
        return cells
    for p in patterns:
        if not any(fnmatch.fnmatchcase(c.name, p) for c in cells):
            names = ", ".join(c.name for c in cells[:12]) + (", ..." if len(cells) > 12 else "")
            raise ConfigError(f"--only {p!r} matches no cell of this suite; its cells: {names}")
    return [c for c in cells if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def stale_cells(cells: list[Cell], rows: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """The cells whose latest row is FINISHED but whose input files changed since (`bench.inputs`),
    with the inputs that did: their results are not those of the files as they are now."""
    from bench.inputs import changed_inputs
    from bench.tracking import latest_rows

    latest = latest_rows(rows)
    out = {}
    for c in cells:
        row = latest.get(c.id)
        if row is not None and row["status"] == "FINISHED" and (changed := changed_inputs(row, c)):
            out[c.id] = changed
    return out


def cell_status(cells: list[Cell], run_dir: Path) -> dict[str, str]:
    """Each cell's latest recorded status in ``run_dir/results.jsonl`` ("FINISHED", "FAILED"), "TO RUN",
    or "STALE" (finished, but its input files changed since: `stale_cells`)."""
    from bench.tracking import latest_rows, read_rows

    runfile = run_dir / "results.jsonl"
    rows = read_rows(runfile) if runfile.is_file() else []
    latest, stale = latest_rows(rows), stale_cells(cells, rows)
    return {c.id: "STALE" if c.id in stale else latest[c.id]["status"] if c.id in latest else "TO RUN" for c in cells}


def default_run_dir(suite: Suite) -> Path:
    return Path("runs") / suite.name


def run_suite(
    suite: Suite,
    run_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    executor: Any = None,
    progress: bool = True,
    show_output: bool = True,
    command: str | None = None,
    retry_failed: bool = True,
    reuse: Iterable[str | Path] = (),
    only: Iterable[str] = (),
) -> RunSummary:
    """Run every cell of `suite` not yet FINISHED in ``run_dir/results.jsonl``.

    tracking_uri: an MLflow URI; None = sqlite under the run folder; "none" = JSON lines only.
    retry_failed: rerun cells whose latest row is FAILED (off: only cells never recorded run).
    reuse: other run folders (or their results.jsonl): their FINISHED rows of this suite's cells
        are copied in first (`reuse_rows`), so a grid that shares cells with an earlier one only
        runs the new ones.
    only: glob patterns over cell names (`select_cells`); empty = every cell.
    """
    from bench.executor import CellContext, LocalExecutor
    from bench.provenance import provenance
    from bench.tracking import JsonlTracker, LiveCurves, default_tracking_uri, iter_cells_done, progress_file, read_rows

    cells = select_cells(suite.cells(), only)  # before the run folder is touched
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(suite)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir = run_dir.resolve()
    with run_lock(run_dir):  # one grid per run folder at a time
        cache_dir = Path(cache_dir).resolve() if cache_dir is not None else Path("cache").resolve()
        runfile = run_dir / "results.jsonl"
        if Path(suite.path).is_file():
            kept, record = run_dir / "suite.toml", suite_record(suite.path)
            if kept.is_file() and runfile.is_file() and kept.read_bytes() != record:
                warnings.warn(f"{run_dir} holds rows of another version of this suite ({kept} differs from {suite.path}): "
                              "rows of cells no longer in it stay in results.jsonl and in the leaderboard; use a new --run-dir to start clean")
            kept.write_bytes(record)
        uri = None if tracking_uri == "none" else (tracking_uri or default_tracking_uri(run_dir))
        summary = RunSummary(suite.name, run_dir, runfile, tracking_uri=uri)

        summary.reused = reuse_rows(cells, run_dir, reuse)
        rows = read_rows(runfile) if runfile.is_file() else []
        done = set(iter_cells_done(rows, include_failed=not retry_failed))
        stale = stale_cells(cells, rows)
        if stale:
            inputs = sorted({i.replace("_", " ") for changed in stale.values() for i in changed})
            warnings.warn(f"{len(stale)} finished cell(s) of {run_dir} ran on {' and '.join(inputs)} that changed since; "
                          "running them again (their earlier rows stay in results.jsonl)")
            done -= set(stale)
        todo = [c for c in cells if c.id not in done]
        summary.skipped = [c.id for c in cells if c.id in done]

        for c in todo:  # curve points of an earlier, killed attempt
            progress_file(run_dir, c.id).unlink(missing_ok=True)
        sink = _open_sink(uri, suite.name, run_dir, summary)
        live = None
        if sink is not None:
            _sync(sink, rows, summary, {c.id for c in todo})  # the rows read above, --reuse copies included
            live = LiveCurves(sink, {c.id: c.name for c in todo}, run_dir, LIVE_INTERVAL_S,
                              on_error=lambda e: _tracking_error(summary, "live curves", e, "curves reach MLflow when each cell ends"))

        jsonl = JsonlTracker(runfile)
        prov = provenance(command)

        def on_result(row: dict[str, Any]) -> None:
            if (run_dir / "suite.toml").is_file():
                row["artifacts"]["config"] = str(run_dir / "suite.toml")
            jsonl.append(row)  # first the local file ...
            summary.ran.append(row)
            if sink is not None:  # ... then MLflow; an outage only costs a later `seater-bench import`
                live.finish(row["cell_id"])
                try:
                    sink.push(row)
                except Exception as e:  # noqa: BLE001
                    _push_failed(e, row)

        def _push_failed(e: Exception, row: dict[str, Any]) -> None:
            nonlocal sink
            from bench.tracking import check_reachable

            try:
                check_reachable(sink.uri)
            except TrackingError:  # the server is gone: each later push would wait out MLflow's retries
                _tracking_error(summary, row["name"], e, "the server does not answer, so no more rows go to MLflow in this "
                                f"run; push them later with `seater-bench import {runfile}`")
                live.stop()
                sink = None
                return
            _tracking_error(summary, row["name"], e, f"push it later with `seater-bench import {runfile}`")

        ctx = CellContext(run_dir=run_dir, cache_dir=cache_dir, provenance=prov)
        executor = executor or LocalExecutor(show_output=show_output, progress=progress)
        if todo:
            if live is not None:
                live.start()
            try:
                executor.submit(todo, ctx, on_result)
            finally:
                if live is not None:
                    live.stop()
        return summary


LIVE_INTERVAL_S = 30.0  # how often the grid streams running cells' new curve points to MLflow


def _tracking_error(summary: RunSummary, what: str, e: Exception, then: str) -> None:
    from bench.tracking import first_line

    summary.tracking_errors.append(f"{what}: {first_line(e)}")
    warnings.warn(f"MLflow failed for {what} ({first_line(e)}); {then}")


def _open_sink(uri: str | None, experiment: str, run_dir: Path, summary: RunSummary):
    if uri is None:
        return None
    from bench.tracking import MLflowSink

    try:
        return MLflowSink(uri, experiment, run_dir)
    except ConfigError:  # a URI MLflow cannot use at all: the user's to fix first
        raise
    except Exception as e:  # noqa: BLE001 - a tracker outage must not stop the grid
        _tracking_error(summary, f"the store at {uri}", e, "results go to the JSON-lines file only")
        summary.tracking_uri = None
        return None


def _sync(sink, rows: list[dict[str, Any]], summary: RunSummary, todo: set[str]) -> None:
    """Push the rows a killed grid wrote but never pushed, and fail the runs it left open: those of the
    cells about to run, and those of cells whose rows are in the file (killed after the row was written)."""
    try:
        for r in rows:
            sink.push(r)
        ended = {r["cell_id"]: r.get("ended", time.time()) for r in rows if r["cell_id"] not in todo}
        sink.fail_abandoned(todo | set(ended), started_before=ended)
    except Exception as e:  # noqa: BLE001
        _tracking_error(summary, "the rows of earlier runs", e, f"push them later with `seater-bench import {summary.runfile}`")


if __name__ == "__main__":
    sys.exit(cell_main(sys.argv[1:]))
