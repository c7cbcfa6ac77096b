"""Speed and quality of the `balanced` tree builder, against `constrained` in the same run.

* speed: build time of `balanced` at several catalog sizes (synthetic clustered embeddings),
  each timed `repeats` times (best and median reported), and `constrained` on the same data
  at one size for the speed-up.
* quality: total clustering cost (`seater.trees.quality.tree_quality`) of `balanced` over
  `constrained` on the same embeddings, median over seeds, on synthetic data and on real item
  embeddings (truncated SVD of Amazon Beauty's item co-occurrence matrix).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.speed import ReportedRows
from seater.errors import DataError


# --------------------------------------------------------------------------- data
def cooccurrence_embeddings(dataset: Path, dim: int = 64, seed: int = 0) -> np.ndarray:
    """Item embeddings ``(n_items, dim)`` (row i = item i+1) from a truncated SVD of the
    item co-occurrence matrix (items seen by the same user), scaled by sqrt(singular value).

    A training-free stand-in for learned item embeddings: items bought together land close.
    Read with the project's S3-Rec loader (a bad line is reported with file and line); items
    are numbered as it numbers them (unchanged for contiguous ids 1..N, as in Beauty).
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    from seater.data.loaders import load_s3rec

    path = Path(dataset) / "sequences.txt"
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    loaded = load_s3rec(path)
    n_items = loaded.n_items
    seqs = [np.unique(s) for s in loaded.sequences]  # each user's distinct items, ids 1..n_items
    rows = np.repeat(np.arange(len(seqs)), [len(s) for s in seqs])
    cols = np.concatenate(seqs)
    b = sp.csr_matrix((np.ones(len(rows), np.float64), (rows, cols - 1)), shape=(len(seqs), n_items))
    c = (b.T @ b).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    c.data = np.log1p(c.data)  # dampen very popular pairs
    v0 = np.random.default_rng(seed).normal(size=n_items)
    u, s, _ = svds(c.asfptype(), k=dim, v0=v0)
    order = np.argsort(-s)
    emb = u[:, order] * np.sqrt(s[order])[None, :]
    return np.ascontiguousarray(emb, dtype=np.float32)


def synthetic(n: int, dim: int, seed: int) -> np.ndarray:
    from seater.data.synthetic import synthetic_embeddings

    return synthetic_embeddings(n, dim=dim, seed=seed)


def _builders():
    import importlib
    import pkgutil

    import seater.trees as trees
    from seater.trees import BUILDERS

    for mod in pkgutil.iter_modules(trees.__path__):  # register every builder module present
        importlib.import_module(f"seater.trees.{mod.name}")
    return BUILDERS


def total_cost(tree, x: np.ndarray, device: str = "cpu") -> float:
    try:
        from seater.trees.quality import tree_quality

        return float(tree_quality(tree, x, device)["total_cost"])
    except ImportError:  # pragma: no cover - quality module not present
        raise DataError("seater.trees.quality is required for the quality comparison") from None


# --------------------------------------------------------------------------- speed
@dataclass
class TreeSpeedConfig:
    sizes: tuple[int, ...] = (20000, 361245, 1000000)
    k: int = 16
    dim: int = 64
    seed: int = 0
    repeats: int = 3
    compare_constrained_at: int = 20000  # 0 = skip constrained
    constrained_repeats: int = 1
    device: str = "cpu"
    threads: int = 0
    max_iter: int = 10
    params: dict[str, Any] = field(default_factory=dict)  # other balanced builder parameters
    notes: list[str] = field(default_factory=list)


def _time_build(builders, name, x, k, seed, params) -> tuple[float, Any]:
    t0 = time.perf_counter()
    tree = builders.get(name).factory(x, k, seed=seed, **params)
    return time.perf_counter() - t0, tree


def run_tree_speed(
    cfg: TreeSpeedConfig, log: Callable[[str], None] = print, on_rows: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Time the builds; `on_rows(partial_result)` after every row (a balanced row before its constrained
    build, which may take an hour) so a long run leaves its table so far."""
    builders = _builders()
    rows = ReportedRows({"config": asdict(cfg)}, on_rows)
    params = {**cfg.params, "device": cfg.device, "threads": cfg.threads, "max_iter": cfg.max_iter}
    for n in cfg.sizes:
        x = synthetic(n, cfg.dim, cfg.seed)
        times, tree = [], None
        for _ in range(cfg.repeats):
            sec, tree = _time_build(builders, "balanced", x, cfg.k, cfg.seed, params)
            times.append(sec)
            log(f"balanced n={n}: {sec:.2f} s")
        t0 = time.perf_counter()
        tree.validate(balanced=True)
        t1 = time.perf_counter()
        row = {
            "n_items": n, "builder": "balanced", "best_s": min(times), "median_s": statistics.median(times), "runs_s": times,
            "level_seconds": tree.build_info["level_seconds"], "depth": tree.depth, "balanced": tree.is_balanced(),
            "total_cost": total_cost(tree, x, cfg.device),
        }
        log(f"balanced n={n}: validated in {t1 - t0:.1f} s; total cost {row['total_cost']:.4f} in {time.perf_counter() - t1:.1f} s")
        rows.append(row)
        if n == cfg.compare_constrained_at:
            # untimed: the first build imports k-means-constrained and OR-Tools (~0.3 s), which the
            # balanced rows' best-of-repeats leaves out of theirs
            builders.get("constrained").factory(x[: 4 * cfg.k], cfg.k, seed=cfg.seed)
            ctimes, ctree = [], None
            for _ in range(cfg.constrained_repeats):
                sec, ctree = _time_build(builders, "constrained", x, cfg.k, cfg.seed, {})
                ctimes.append(sec)
                log(f"constrained n={n}: {sec:.2f} s")
            crow = {
                "n_items": n, "builder": "constrained", "best_s": min(ctimes), "median_s": statistics.median(ctimes), "runs_s": ctimes,
                "level_seconds": ctree.build_info.get("level_seconds", []), "depth": ctree.depth, "balanced": ctree.is_balanced(),
                "total_cost": total_cost(ctree, x),
            }
            row["speedup_vs_constrained"] = crow["best_s"] / row["best_s"]
            row["cost_ratio_vs_constrained"] = cost_ratio(row["total_cost"], crow["total_cost"])
            rows.append(crow)
    return rows.result()


# --------------------------------------------------------------------------- quality
@dataclass
class TreeQualityConfig:
    sizes: tuple[int, ...] = (5000, 20000)
    seeds: tuple[int, ...] = (0, 1, 2)
    data: tuple[str, ...] = ("synthetic", "beauty")
    k: int = 16
    dim: int = 64
    beauty_path: str = "../shared/data/amazon-beauty"
    threads: int = 0
    params: dict[str, Any] = field(default_factory=dict)  # balanced builder parameters (defaults otherwise)
    # a JSON written by an earlier trees-quality run: its constrained costs are reused for the same
    # (data, size, seed, k, dim) instead of rebuilding (constrained takes minutes to an hour per row)
    reuse_constrained: str | None = None
    notes: list[str] = field(default_factory=list)


def _recorded_constrained(path: str | None, cfg: TreeQualityConfig) -> dict[tuple, dict[str, Any]]:
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--reuse-constrained: {p} does not exist")
    try:
        old = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"--reuse-constrained: {p} is not valid JSON ({e})") from None
    conf, rows = (old.get("config"), old.get("rows")) if isinstance(old, dict) else (None, None)
    if not isinstance(conf, dict) or not isinstance(rows, list):
        raise DataError(f"--reuse-constrained: {p} is not the JSON of a trees-quality run (it needs 'config' and 'rows')")
    if conf.get("k") != cfg.k or conf.get("dim") != cfg.dim:
        raise DataError(f"--reuse-constrained: {p} was made with k={conf.get('k')}, dim={conf.get('dim')}; "
                        f"this run has k={cfg.k}, dim={cfg.dim}")
    need = ("data", "n_items", "seed", "constrained_cost", "constrained_s")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or (r.get("seed") != "median" and any(key not in r for key in need)):
            raise DataError(f"--reuse-constrained: {p}: row {i} is not a trees-quality row (it needs {', '.join(need)})")
    return {(r["data"], r["n_items"], r["seed"]): r for r in rows if r.get("seed") != "median"}


def run_tree_quality(
    cfg: TreeQualityConfig, log: Callable[[str], None] = print, on_rows: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Cost ratio balanced / constrained per (data, size, seed): the seed drives both the data
    (synthetic draw, or the subsample of real items) and both builders."""
    from bench.runner import array_hash

    builders = _builders()
    recorded = _recorded_constrained(cfg.reuse_constrained, cfg)
    rows = ReportedRows({"config": asdict(cfg)}, on_rows)
    real = None
    files: dict[str, np.ndarray] = {}
    for data in cfg.data:  # every source checked before the first (maybe hour-long) constrained build
        if data.endswith(".npy"):
            files[data] = _load_embeddings(Path(data))
        elif data == "beauty":
            from seater.data.loaders import dataset_files

            dataset_files(cfg.beauty_path, "s3rec")  # sequences.txt there, or one error naming it
        elif data not in ("synthetic", "beauty"):
            raise DataError(f"unknown data {data!r}; known: synthetic, beauty, or a path to an .npy file of item embeddings")
    for data in cfg.data:
        for n in cfg.sizes:
            ratios = []
            for seed in cfg.seeds:
                if data == "synthetic":
                    x = synthetic(n, cfg.dim, seed)
                elif data == "beauty":
                    if real is None:
                        real = cooccurrence_embeddings(Path(cfg.beauty_path), cfg.dim)
                    x = _subsample(real, n, seed)
                else:
                    x = _subsample(files[data], n, seed)
                tb, b = _time_build(builders, "balanced", x, cfg.k, seed, {**cfg.params, "threads": cfg.threads})
                cb, digest = total_cost(b, x), array_hash(x)
                old = recorded.get((data, len(x), seed))
                if old is not None and old.get("data_hash", digest) == digest:
                    cc, tc, reused = old["constrained_cost"], old["constrained_s"], True
                else:
                    tc, c = _time_build(builders, "constrained", x, cfg.k, seed, {})
                    cc, reused = total_cost(c, x), False
                ratios.append(cost_ratio(cb, cc))
                rows.append({"data": data, "n_items": len(x), "seed": seed, "balanced_cost": cb, "constrained_cost": cc,
                             "ratio": ratios[-1], "balanced_s": tb, "constrained_s": tc, "constrained_reused": reused,
                             "data_hash": digest})
                log(f"{data} n={len(x)} seed={seed}: ratio {ratios[-1]:.4f} (balanced {tb:.1f} s, constrained {tc:.1f} s"
                    + (", recorded)" if reused else ")"))
            rows.append({"data": data, "n_items": len(x), "seed": "median", "ratio": statistics.median(ratios)})
    return rows.result()


def cost_ratio(cost: float, reference: float) -> float:
    """cost / reference; 1 when both are 0 (at most k items, or all of them equal: every split is exact)."""
    if reference > 0:
        return cost / reference
    return 1.0 if cost == 0 else float("inf")


def _subsample(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n random rows of x in their original order (all of x when n >= len(x))."""
    if n >= len(x):
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))]


def _load_embeddings(path: Path) -> np.ndarray:
    """An ``(N, d)`` .npy (no pickles), e.g. a cached SASRec item table, checked as `trees build` checks it."""
    from seater.trees.checks import check_embeddings, load_embeddings

    if not path.exists():  # this command's own wording, kept for its users
        raise DataError(f"embeddings file {path} does not exist")
    try:
        return check_embeddings(load_embeddings(path), 2)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None


# --------------------------------------------------------------------------- output
def _opt(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if key in row else "–"


def write_results(result: dict[str, Any], out: Path, info: dict[str, Any], kind: str) -> list[Path]:
    from bench.provenance import markdown_header

    out = Path(out)
    md_path = out if out.suffix == ".md" else out / f"balanced_{kind}.md"
    md_path.parent.mkdir(parents=True, exist_ok=True)
    json_path = md_path.with_suffix(".json")
    cfg = result["config"]
    data = (
        f"synthetic clustered embeddings (seater.data.synthetic.synthetic_embeddings, d={cfg['dim']}, seed {cfg.get('seed')})"
        if kind == "speed" else f"{', '.join(cfg['data'])}; d={cfg['dim']}, k={cfg['k']}"
    )
    lines = [f"# balanced builder: {kind}", "", markdown_header(info, data), ""]
    lines.append(f"- device: {cfg.get('device', 'cpu')}; torch CPU threads of the balanced builds: {cfg.get('threads') or 'torch default'}"
                 + ("; constrained (k-means-constrained, OR-Tools) uses its libraries' own threads, one build per size" if kind == "speed" else ""))
    given = ", ".join(f"{k}={v}" for k, v in cfg.get("params", {}).items())
    lines.append(f"- balanced builder parameters: {given or 'defaults'}" + (f" (k = {cfg['k']})" if kind == "speed" else ""))
    for note in cfg.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    if kind == "speed":
        lines.append("| items | builder | best s | median s | runs | depth | balanced | total cost | speed-up | cost ratio |")
        lines.append("|---:|---|---:|---:|---|---:|---|---:|---:|---:|")
        for r in result["rows"]:
            lines.append(
                f"| {r['n_items']:,} | {r['builder']} | {r['best_s']:.2f} | {r['median_s']:.2f} | "
                f"{', '.join(f'{t:.1f}' for t in r['runs_s'])} | {r['depth']} | {'yes' if r['balanced'] else 'no'} | "
                f"{r['total_cost']:.4f} | {_opt(r, 'speedup_vs_constrained', '.1f')} | {_opt(r, 'cost_ratio_vs_constrained', '.4f')} |"
            )
    else:
        lines.append("| data | items | seed | balanced cost | constrained cost | ratio | balanced s | constrained s |")
        lines.append("|---|---:|---|---:|---:|---:|---:|---:|")
        for r in result["rows"]:
            if r["seed"] == "median":
                lines.append(f"| **{r['data']}** | {r['n_items']:,} | **median** | | | **{r['ratio']:.4f}** | | |")
            else:
                lines.append(
                    f"| {r['data']} | {r['n_items']:,} | {r['seed']} | {r['balanced_cost']:.4f} | {r['constrained_cost']:.4f} | "
                    f"{r['ratio']:.4f} | {r['balanced_s']:.1f} | {r['constrained_s']:.1f}{' (recorded)' if r.get('constrained_reused') else ''} |"
                )
    md_path.write_text("\n".join(lines) + "\n")
    json_path.write_text(json.dumps({"provenance": info, **result}, indent=2, default=str) + "\n")
    return [md_path, json_path]
