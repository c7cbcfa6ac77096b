"""Experiment suites: a TOML file describing a grid, validated on load, expanded into cells.

A suite file (see ``bench/suites/quick.toml``)::

    [suite]
    name = "quick"                 # experiment name in MLflow and folder name under runs/ and results/
    seeds = [0, 1]                 # one cell per seed
    ks = [10, 20]                  # cut-offs for Recall/HitRate/NDCG
    metric = "ndcg@10"             # the leaderboard's primary metric (test split)
    device = "auto"                # auto | cpu | cuda | cuda:N
    eval_batch_size = 1024
    exact_users = 256              # generative retrievers: beam vs exact scoring on this many test users (0 = off)
    beam_sweep = [10, 20, 100]     # generative retrievers: the test users decoded again at each beam width
                                   # (same trained model; cut-offs up to the width), quality and users/s

    [[datasets]]
    name = "synth"                 # label (default: folder name or "synthetic")
    source = "synthetic"           # "synthetic" or a path to a dataset folder / file
    format = "s3rec"               # loader format when source is a path
    protocol = "leave_one_out"     # leave_one_out | user_split
    max_history = 20
    synthetic = { n_users = 500, n_items = 200 }   # make_synthetic keyword arguments

    [embeddings]                   # item embeddings the tree builders cluster
    source = "sasrec"              # a registered EmbeddingModel (trained per dataset/split/seed),
                                   # "attributes" (multi-hot item attributes), "latent" (the planted
                                   # item vectors of synthetic data) or a .npy path
    params = { epochs = 3 }

    [[trees]]
    builder = "hybrid"
    label = "hybrid"               # what retrievers refer to (default: the builder name)
    k = [8, 16]                    # int or list: one tree per value
    params = { }                   # fixed builder parameters
    sweep = { threshold = [100, 2000] }   # cartesian product of these lists

    [[retrievers]]
    name = "seater"
    params = { epochs = 5 }
    sweep = { align_weight = [0.0, 0.05] }
    trees = ["hybrid"]             # labels; default: every tree when the retriever needs one

A suite that varies another names it as ``base`` (top level, before any table) and states only
what changes: ``base = "sports_seater_init_ce_align"`` (a suite in the same folder). Tables merge
key by key, anything else replaces the base's value, arrays of tables (``[[retrievers]]``) whole;
``suite.name`` and ``suite.description`` are never inherited. A run folder keeps the merged
tables as its ``suite.toml``, which loads on its own. Editing a suite that others extend changes
their cells too: add a new suite instead.

Precedence: registered defaults < ``params`` < one point of ``sweep``. Validation runs before
any work: an unknown key (with a did-you-mean), a wrong type, an unknown builder or retriever
name, or an unknown parameter raises `ConfigError` naming the key path (``retrievers[1].sweep.lr``);
so do values out of range, found by constructing each retriever point and by each tree builder's
own ``check`` on each tree point (`Registry.check`).
Names are checked against the registries as `bench.registry` fills them: a suite that names a
builder or retriever whose module is not in this checkout fails on load with the known names
listed (never half-way through a grid).

Cells: datasets x seeds x (retriever points x their trees); a suite without retrievers builds
trees only (datasets x seeds x tree points), which is what the builder comparisons need.
A cell's id is a hash of everything that determines its numbers (not the device or batch size).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from seater.data.loaders import FORMATS
from seater.device import DEVICE_NAMES, check_device_name
from seater.errors import ConfigError, UnknownNameError
from seater.registry import Registry

PROTOCOLS = ("leave_one_out", "user_split")
SUITES_DIR = Path(__file__).resolve().parent / "suites"


# ---------------------------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: str  # "synthetic" or a path
    format: str = "s3rec"
    protocol: str = "leave_one_out"
    max_history: int = 20
    synthetic: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EmbeddingSpec:
    source: str = "sasrec"  # registered EmbeddingModel, "attributes", "latent" (synthetic data only) or a .npy path
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        if self.source in ("attributes", "latent"):
            return self.source
        if self.source.endswith(".npy"):
            return "file"
        return "model"


def _dataset_format(r, source: str, fmt: str | None) -> str:
    """The suite's format, ``auto`` resolved from the files (so a cell id names the format itself).
    Left out, it is s3rec, as before ``auto`` existed: then files that look like another format
    are an error here rather than a parse error on their first line when the cell runs."""
    from seater.data.loaders import dataset_files, detect_format, format_from_names
    from seater.errors import DataError

    try:  # left out, only what the file names say counts: a lone s3rec file may hold tabs
        found = detect_format(source) if fmt == "auto" else format_from_names(source)
    except DataError as e:
        if fmt == "auto":
            raise r.err("format", f"auto: {e}") from None
        found = None
    if fmt is None and found not in (None, "s3rec"):
        raise r.err("format", f"not given, so s3rec, but {source} looks like {found} data; "
                              f"set format = \"{found}\" (or \"auto\")")
    fmt = found if fmt == "auto" else fmt or "s3rec"
    try:
        dataset_files(source, fmt)  # the files the cells will read are there
    except DataError as e:
        raise r.err("source", f"is not {fmt} data: {e}") from None
    return fmt


def tree_name(label: str, k: int, params: dict[str, Any], swept) -> str:
    """``label:k=K[,swept=value...]``: a tree point's readable name (cells, leaderboards, plots)."""
    extra = ",".join(f"{p}={params[p]}" for p in swept)
    return f"{label}:k={k}" + (f",{extra}" if extra else "")


def retriever_name(name: str, params: dict[str, Any], swept) -> str:
    """``name[(swept=value,...)]``: a retriever point's readable name."""
    extra = ",".join(f"{p}={params[p]}" for p in swept)
    return name + (f"({extra})" if extra else "")


@dataclass(frozen=True)
class TreeSpec:
    """One point of a tree sweep: builder, branching factor and resolved parameters."""

    label: str
    builder: str
    k: int
    params: dict[str, Any]
    swept: tuple[str, ...] = ()  # swept parameter names, shown in the cell's readable name
    neutral: tuple[str, ...] = ()  # parameters left out of the identity (`Registry.identity_params`)

    def key(self) -> dict[str, Any]:
        return {"builder": self.builder, "k": self.k, "params": _drop(self.params, self.neutral)}

    def short(self) -> str:
        return tree_name(self.label, self.k, self.params, self.swept)


@dataclass(frozen=True)
class RetrieverSpec:
    """One point of a retriever sweep with its resolved parameters."""

    name: str
    params: dict[str, Any]
    needs_tree: bool = False
    swept: tuple[str, ...] = ()
    neutral: tuple[str, ...] = ()  # parameters left out of the identity (`Registry.identity_params`)

    def short(self) -> str:
        return retriever_name(self.name, self.params, self.swept)


# test users on which a generative retriever's beam is compared with exact scoring (suite `exact_users`)
EXACT_USERS = 256


def beam_key(width: int, metric: str) -> str:
    """The metric key of a `beam_sweep` evaluation: ``test_beam20/ndcg@10``."""
    return f"test_beam{width}/{metric}"


@dataclass(frozen=True)
class Cell:
    """One independent unit of work: a dataset, a seed, at most one tree and at most one retriever."""

    suite: str
    dataset: DatasetSpec
    seed: int
    ks: tuple[int, ...]
    embeddings: EmbeddingSpec | None
    tree: TreeSpec | None
    retriever: RetrieverSpec | None
    device: str = "auto"
    eval_batch_size: int = 1024
    exact_users: int = EXACT_USERS
    beam_sweep: tuple[int, ...] = ()

    def identity(self) -> dict[str, Any]:
        """Everything that determines the cell's numbers (device, batch size and the extra beam-vs-exact
        and beam-width measurements excluded on purpose)."""
        r = self.retriever
        return {
            "dataset": asdict(self.dataset),
            "seed": self.seed,
            "ks": list(self.ks),
            "embeddings": asdict(self.embeddings) if self.embeddings and self.tree else None,
            "tree": self.tree.key() if self.tree else None,
            "retriever": {"name": r.name, "params": _drop(r.params, r.neutral)} if r else None,
        }

    @property
    def id(self) -> str:
        return hashlib.sha1(canonical(self.identity()).encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        parts = [self.dataset.name]
        if self.retriever:
            parts.append(self.retriever.short())
        if self.tree:
            parts.append(self.tree.short())
        parts.append(f"s{self.seed}")
        return "/".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "dataset": asdict(self.dataset),
            "seed": self.seed,
            "ks": list(self.ks),
            "embeddings": asdict(self.embeddings) if self.embeddings else None,
            "tree": asdict(self.tree) if self.tree else None,
            "retriever": {**asdict(self.retriever), "swept": list(self.retriever.swept)} if self.retriever else None,
            "device": self.device,
            "eval_batch_size": self.eval_batch_size,
            "exact_users": self.exact_users,
            "beam_sweep": list(self.beam_sweep),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Cell":
        tree = None
        if d["tree"]:
            t = d["tree"]
            tree = TreeSpec(**{**t, "swept": tuple(t.get("swept", ())), "neutral": tuple(t.get("neutral", ()))})
        ret = None
        if d["retriever"]:
            r = dict(d["retriever"])
            r["swept"] = tuple(r.get("swept", ()))
            r["neutral"] = tuple(r.get("neutral", ()))
            ret = RetrieverSpec(**r)
        return cls(
            suite=d["suite"],
            dataset=DatasetSpec(**d["dataset"]),
            seed=int(d["seed"]),
            ks=tuple(d["ks"]),
            embeddings=EmbeddingSpec(**d["embeddings"]) if d["embeddings"] else None,
            tree=tree,
            retriever=ret,
            device=d["device"],
            eval_batch_size=int(d["eval_batch_size"]),
            exact_users=int(d.get("exact_users", EXACT_USERS)),
            beam_sweep=tuple(int(b) for b in d.get("beam_sweep") or ()),
        )


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    description: str
    seeds: tuple[int, ...]
    ks: tuple[int, ...]
    metric: str
    device: str
    eval_batch_size: int
    datasets: tuple[DatasetSpec, ...]
    embeddings: EmbeddingSpec | None
    trees: tuple[TreeSpec, ...]
    retrievers: tuple[tuple[RetrieverSpec, tuple[str, ...] | None], ...]  # (point, tree labels or None = all)
    exact_users: int = EXACT_USERS
    beam_sweep: tuple[int, ...] = ()

    def cells(self) -> list[Cell]:
        """The cartesian product, in a stable order (datasets, then seeds, then retrievers/trees)."""
        out: list[Cell] = []
        for ds, seed in itertools.product(self.datasets, self.seeds):
            common = dict(suite=self.name, dataset=ds, seed=seed, ks=self.ks, embeddings=self.embeddings,
                          device=self.device, eval_batch_size=self.eval_batch_size, exact_users=self.exact_users,
                          beam_sweep=self.beam_sweep)
            if not self.retrievers:
                out.extend(Cell(tree=t, retriever=None, **common) for t in self.trees)
                continue
            for ret, labels in self.retrievers:
                if not ret.needs_tree:
                    out.append(Cell(tree=None, retriever=ret, **common))
                    continue
                for t in self.trees:
                    if labels is None or t.label in labels:
                        out.append(Cell(tree=t, retriever=ret, **common))
        return out


# ---------------------------------------------------------------------------------- helpers
def _drop(params: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


def _neutral(registry: Registry | None, name: str, params: dict[str, Any]) -> tuple[str, ...]:
    """Keys of `params` that `registry` leaves out of a result's identity (added later, at their defaults)."""
    if registry is None:
        return ()
    kept = registry.identity_params(name, params)
    return tuple(sorted(set(params) - set(kept)))


_SET_BY_SUITE = "is set by the suite (suite.seeds / suite.device)"
# model parameters the harness sets per cell at run time; a suite value would be shared by every
# dataset and seed (one checkpoint folder: a second dataset with as many items resumed the first's
# finished training and got its embeddings) or split the cache over a display setting
_HARNESS_PARAMS = {
    "checkpoint_dir": "is set by the harness (a checkpoint folder per cell and per cached table, so a killed run resumes)",
    "progress": "is set by the harness (per-epoch progress in the cell's log)",
}


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


class _Reader:
    """Typed access to one table, raising `ConfigError` with the full key path."""

    def __init__(self, file: str, table: dict[str, Any], path: str, allowed: tuple[str, ...]):
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: {path or 'top level'} must be a table")
        self.file, self.table, self.path = file, table, path
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                raise ConfigError(f"{file}: unknown key {self.key(key)!r}; {hint}")

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def err(self, k: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.key(k)} {msg}")

    def get(self, k: str, types: type | tuple[type, ...], default: Any = ..., required: bool = False) -> Any:
        if k not in self.table:
            if required or default is ...:
                raise self.err(k, "is required")
            return default
        v = self.table[k]
        if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
            raise self.err(k, f"must be {_tname(types)}, got a boolean")
        if not isinstance(v, types):
            raise self.err(k, f"must be {_tname(types)}, got {type(v).__name__} {v!r}")
        return v

    def int_list(self, k: str, default: Any, minimum: int | None = None) -> tuple[int, ...]:
        v = self.get(k, (int, list), default)
        vals = [v] if isinstance(v, int) else v
        if not vals:
            raise self.err(k, "must not be empty")
        for x in vals:
            if isinstance(x, bool) or not isinstance(x, int):
                raise self.err(k, f"must hold integers, got {x!r}")
            if minimum is not None and x < minimum:
                raise self.err(k, f"values must be >= {minimum}, got {x}")
        if len(set(vals)) != len(vals):
            raise self.err(k, f"has duplicates: {vals}")
        return tuple(vals)


def _tname(types: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table", bool: "a boolean"}
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join(names.get(t, t.__name__) for t in ts)


def _check_points(file: str, where: str, registry: Registry, name: str, points: list[dict[str, Any]]) -> None:
    """Every sweep point's values are known parameters of the kind their defaults are (`Registry.params`)."""
    for point in points:
        try:
            registry.params(name, point)
        except ConfigError as e:
            raise ConfigError(f"{file}: {where}: {e}") from None


def _check_constructs(file: str, where: str, entry, params: dict[str, Any]) -> None:
    """Build the model once from `params` (cheap: no weights before `fit`), so that its own value
    checks (ranges, choices, d_model vs n_heads) fail while the suite loads, not cell by cell later."""
    try:
        entry.factory(**params, device="cpu", seed=0)
    except ConfigError as e:
        raise ConfigError(f"{file}: {where}.params: {e}") from None


def _sweep_points(file: str, where: str, sweep: dict[str, Any]) -> list[dict[str, Any]]:
    for k, v in sweep.items():
        if not isinstance(v, list) or not v:
            raise ConfigError(f"{file}: {where}.{k} must be a non-empty list of values to sweep, got {v!r}")
    keys = list(sweep)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(sweep[k] for k in keys))] or [{}]


# ---------------------------------------------------------------------------------- loading
def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A path to a TOML file, or the name of a suite under bench/suites/."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = SUITES_DIR / f"{name_or_path}.toml"
    if cand.is_file():
        return cand
    known = sorted(q.stem for q in SUITES_DIR.glob("*.toml"))
    close = difflib.get_close_matches(p.stem, known, n=5, cutoff=0.5)
    hint = f"closest bundled suites: {', '.join(close)}" if close else f"bundled suites: {', '.join(known[:10])}, ..."
    raise ConfigError(f"suite file not found: {name_or_path} ({hint}; all {len(known)} are in {SUITES_DIR})")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a leading byte-order mark is allowed
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a TOML file (not UTF-8 text: {e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: tables merge key by key; values, lists and arrays of tables replace."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_suite(path: str | Path) -> tuple[dict[str, Any], tuple[Path, ...]]:
    """A suite file's tables with its chain of `base` suites merged under them, and the files read (this one first)."""
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    p = Path(path)
    while True:
        chain.append(p)
        data = _read_toml(p)
        base = data.pop("base", None)
        if isinstance(data.get("suite"), dict) and "base" in data["suite"]:
            raise ConfigError(f"{p}: suite.base: base goes at the top of the file, before [suite]")
        layers.append(data)
        if base is None:
            break
        if not isinstance(base, str) or not base or "/" in base or "\\" in base:
            raise ConfigError(f"{p}: base must name another suite in the same folder (a file name), got {base!r}")
        p = p.parent / (base if base.endswith(".toml") else f"{base}.toml")
        if not p.is_file():
            raise ConfigError(f"{chain[-1]}: base suite not found: {p}")
        if any(p.resolve() == q.resolve() for q in chain):
            raise ConfigError(f"{path}: base suites form a cycle: {' -> '.join(q.name for q in chain + [p])}")
    merged: dict[str, Any] = {}
    for layer in reversed(layers[1:]):
        merged = _merge(merged, layer)
    if isinstance(merged.get("suite"), dict):  # a variant is its own experiment
        merged["suite"] = {k: v for k, v in merged["suite"].items() if k not in ("name", "description")}
    return _merge(merged, layers[0]), tuple(chain)


def suite_record(path: str | Path) -> bytes:
    """What a run folder keeps as suite.toml: the file as written, or, when it has a base, the merged tables."""
    data, chain = read_suite(path)
    if len(chain) == 1:
        return Path(path).read_bytes()
    data.setdefault("suite", {}).setdefault("name", chain[0].stem)  # not the record's file name
    header = f"# {chain[0]} merged over its base suite(s) {', '.join(str(p) for p in chain[1:])}\n"
    return (header + tomli_w.dumps(data)).encode()


def load_suite(path: str | Path, check_names: bool = True) -> Suite:
    """Read and validate a suite file (and its bases). Raises `ConfigError` naming the key before any work starts.

    check_names: resolve builder/retriever names and parameters against the registries (imports
    every registered module); tests of pure syntax can turn it off.
    """
    path = resolve_suite_path(path)
    data, _ = read_suite(path)
    return parse_suite(data, str(path), default_name=path.stem, check_names=check_names)


def parse_suite(data: dict[str, Any], file: str = "<suite>", default_name: str = "suite", check_names: bool = True) -> Suite:
    top = _Reader(file, data, "", ("suite", "datasets", "embeddings", "trees", "retrievers"))
    s = _Reader(file, top.get("suite", dict, {}), "suite",
                ("name", "description", "seeds", "ks", "metric", "device", "eval_batch_size", "exact_users", "beam_sweep"))
    name = s.get("name", str, default_name)
    if not name or "/" in name or name in (".", ".."):  # it names folders under runs/ and results/
        raise s.err("name", f"must be a non-empty name without '/' (and not '.' or '..'), got {name!r}")
    seeds = s.int_list("seeds", [0], minimum=0)
    ks = s.int_list("ks", [10, 20], minimum=1)
    metric = s.get("metric", str, f"ndcg@{ks[0]}")
    mname, _, mk = metric.partition("@")
    if mname not in ("recall", "hit", "ndcg") or not mk.isdigit() or int(mk) not in ks:
        raise s.err("metric", f"must be recall|hit|ndcg @ one of ks {list(ks)}, got {metric!r}")
    device = s.get("device", str, "auto")
    try:
        check_device_name(device)
    except ConfigError:
        raise s.err("device", f"must be {DEVICE_NAMES}, got {device!r}") from None
    batch = s.get("eval_batch_size", int, 1024)
    if batch < 1:
        raise s.err("eval_batch_size", "must be >= 1")
    exact_users = s.get("exact_users", int, EXACT_USERS)
    if exact_users < 0:
        raise s.err("exact_users", "must be >= 0 (0 = no beam-vs-exact measurement)")
    beam_sweep = tuple(sorted(s.int_list("beam_sweep", [], minimum=1))) if "beam_sweep" in s.table else ()
    if beam_sweep and min(beam_sweep) < min(ks):
        raise s.err("beam_sweep", f"widths must be >= the smallest cut-off in ks ({min(ks)}): a beam of width B "
                                  f"returns at most B items, got {list(beam_sweep)}")

    if check_names:
        from bench.registry import load_all

        builders, retrievers = load_all()
    else:
        builders = retrievers = None

    # datasets
    ds_list = top.get("datasets", list, required=True)
    if not ds_list:
        raise top.err("datasets", "must list at least one dataset")
    datasets = []
    for i, raw in enumerate(ds_list):
        r = _Reader(file, raw, f"datasets[{i}]", ("name", "source", "format", "protocol", "max_history", "synthetic"))
        source = r.get("source", str, required=True)
        fmt = r.get("format", str, None)
        if fmt is not None and fmt not in ("auto", *FORMATS):
            raise r.err("format", f"must be auto or one of {', '.join(FORMATS)}, got {fmt!r}")
        protocol = r.get("protocol", str, "leave_one_out")
        if protocol not in PROTOCOLS:
            close = difflib.get_close_matches(protocol, PROTOCOLS, n=1)
            raise r.err("protocol", f"must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
                        + (f"; did you mean {close[0]!r}?" if close else ""))
        max_history = r.get("max_history", int, 20)
        if max_history < 1:
            raise r.err("max_history", "must be >= 1")
        synth = r.get("synthetic", dict, {})
        if source == "synthetic":
            for k, v in synth.items():
                if not isinstance(v, (int, float, str, bool)):
                    raise ConfigError(f"{file}: datasets[{i}].synthetic.{k} must be a scalar, got {v!r}")
            if check_names:  # parameters checked as the generator will, like the models' below
                from seater.data.synthetic import check_synthetic_params

                try:
                    check_synthetic_params(synth)
                except ConfigError as e:
                    raise ConfigError(f"{file}: datasets[{i}].synthetic: {e}") from None
        elif synth:
            raise r.err("synthetic", "is only allowed with source = \"synthetic\"")
        else:
            p = Path(source).expanduser()
            if not p.is_absolute():
                p = (Path(file).resolve().parent / p) if not p.exists() else p.resolve()
            if not p.exists():
                raise r.err("source", f"dataset not found: {source} (relative paths: from the working directory or the suite file)")
            source = str(p.resolve())
            fmt = _dataset_format(r, source, fmt)
        label = r.get("name", str, "synthetic" if source == "synthetic" else Path(source).name)
        if not label.strip() or "/" in label:  # the first part of every cell name
            raise r.err("name", f"must be a non-empty name without '/', got {label!r}")
        datasets.append(DatasetSpec(label, source, fmt or "s3rec", protocol, max_history, dict(synth)))
    labels = [d.name for d in datasets]
    if len(set(labels)) != len(labels):
        raise top.err("datasets", f"need unique names, got {labels}")

    # embeddings
    emb = None
    if "embeddings" in data:
        r = _Reader(file, top.get("embeddings", dict), "embeddings", ("source", "params"))
        emb = EmbeddingSpec(r.get("source", str, "sasrec"), dict(r.get("params", dict, {})))
        if emb.kind == "file":
            p = Path(emb.source).expanduser()
            if not p.is_absolute() and not p.exists():
                p = Path(file).resolve().parent / p
            if not p.is_file():
                raise r.err("source", f"embedding file not found: {emb.source}")
            if emb.params:
                raise r.err("params", "is not allowed with a .npy source")
            emb = EmbeddingSpec(str(p.resolve()), {})
        elif emb.kind in ("attributes", "latent"):
            if emb.params:
                raise r.err("params", f"is not allowed with source = {emb.source!r}")
            if emb.kind == "latent" and any(d.source != "synthetic" for d in datasets):
                raise r.err("source", "= \"latent\" (planted item vectors) needs every dataset to be synthetic")
        elif retrievers is not None:
            for key in _HARNESS_PARAMS:
                if key in emb.params:
                    raise r.err(f"params.{key}", _HARNESS_PARAMS[key])
            try:
                entry = retrievers.get(emb.source)
            except UnknownNameError as e:
                if "/" in emb.source or Path(emb.source).suffix.lower() in (".npy", ".npz", ".csv", ".txt", ".pt"):
                    raise r.err("source", f"{emb.source!r} is read as a file only when it ends in .npy (one row per item, "
                                          "row i = item i+1, no padding row); a name otherwise, of an embedding model") from None
                raise ConfigError(f"{file}: embeddings.source: {e} (or \"attributes\", or a .npy path)") from None
            from seater.retriever import EmbeddingModel

            if not (isinstance(entry.factory, type) and issubclass(entry.factory, EmbeddingModel)):
                raise r.err("source", f"{emb.source!r} does not export item embeddings (not an EmbeddingModel)")
            try:
                params = retrievers.params(emb.source, emb.params)
            except ConfigError as e:
                raise ConfigError(f"{file}: embeddings.params: {e}") from None
            _check_constructs(file, "embeddings", entry, params)
            # parameters added after results existed, at their defaults, stay out of the identity and cache key
            emb = EmbeddingSpec(emb.source, retrievers.identity_params(emb.source, params))

    # trees
    trees: list[TreeSpec] = []
    named: dict[str, tuple[int, TreeSpec]] = {}  # a tree's readable name is in its cells' names: one tree each
    for i, raw in enumerate(top.get("trees", list, [])):
        r = _Reader(file, raw, f"trees[{i}]", ("builder", "label", "k", "params", "sweep"))
        builder = r.get("builder", str, required=True)
        label = r.get("label", str, builder)
        ks_tree = r.int_list("k", [8], minimum=2)
        fixed = dict(r.get("params", dict, {}))
        sweep = dict(r.get("sweep", dict, {}))
        for k in ("k", "seed"):
            if k in fixed or k in sweep:
                raise ConfigError(f"{file}: trees[{i}].params.{k} is not a builder parameter; use trees[{i}].k or suite.seeds")
        both = set(fixed) & set(sweep)
        if both:
            raise ConfigError(f"{file}: trees[{i}].sweep.{sorted(both)[0]} is also set in trees[{i}].params")
        defaults: dict[str, Any] = {}
        if builders is not None:
            try:
                entry = builders.get(builder)
            except UnknownNameError as e:
                raise ConfigError(f"{file}: trees[{i}].builder: {e}") from None
            defaults = entry.defaults
            try:
                builders.params(builder, fixed)
            except ConfigError as e:
                raise ConfigError(f"{file}: trees[{i}].params: {e}") from None
        points = _sweep_points(file, f"trees[{i}].sweep", sweep)
        if builders is not None:
            _check_points(file, f"trees[{i}].sweep", builders, builder, points)
        for point in points:
            # through the registry when there is one: it reads 2e3 as 2000 for an integer parameter
            params = {**defaults, **fixed, **point} if builders is None else builders.params(builder, {**fixed, **point})
            if builders is not None:
                try:
                    builders.check(builder, params)
                except ConfigError as e:
                    where = f"trees[{i}].sweep point {point}" if point else f"trees[{i}].params"
                    raise ConfigError(f"{file}: {where}: {e}") from None
            neutral = _neutral(builders, builder, params)
            for k in ks_tree:
                tree = TreeSpec(label, builder, k, params, tuple(sorted(sweep)), neutral)
                if (other := named.setdefault(tree.short(), (i, tree))) != (i, tree) and other[1] != tree:
                    raise ConfigError(f"{file}: trees[{other[0]}] and trees[{i}] both make a tree named {tree.short()!r}; "
                                      f"give one of them another label (trees[{i}].label)")
                trees.append(tree)
    tree_labels = {t.label for t in trees}

    # retrievers
    rets: list[tuple[RetrieverSpec, tuple[str, ...] | None]] = []
    for i, raw in enumerate(top.get("retrievers", list, [])):
        r = _Reader(file, raw, f"retrievers[{i}]", ("name", "params", "sweep", "trees"))
        rname = r.get("name", str, required=True)
        fixed = dict(r.get("params", dict, {}))
        sweep = dict(r.get("sweep", dict, {}))
        for k, why in {"seed": _SET_BY_SUITE, "device": _SET_BY_SUITE, **_HARNESS_PARAMS}.items():
            if k in fixed or k in sweep:
                raise ConfigError(f"{file}: retrievers[{i}].params.{k} {why}")
        both = set(fixed) & set(sweep)
        if both:
            raise ConfigError(f"{file}: retrievers[{i}].sweep.{sorted(both)[0]} is also set in retrievers[{i}].params")
        tl = r.get("trees", (str, list), None)
        labels_sel = None if tl is None else tuple([tl] if isinstance(tl, str) else tl)
        if labels_sel is not None:
            for lab in labels_sel:
                if lab not in tree_labels:
                    close = difflib.get_close_matches(str(lab), sorted(tree_labels), n=1)
                    raise ConfigError(f"{file}: retrievers[{i}].trees: no tree labelled {lab!r}"
                                      + (f"; did you mean {close[0]!r}?" if close else f"; labels: {', '.join(sorted(tree_labels)) or '(no trees)'}"))
        defaults = {}
        needs_tree = False
        if retrievers is not None:
            try:
                entry = retrievers.get(rname)
            except UnknownNameError as e:
                raise ConfigError(f"{file}: retrievers[{i}].name: {e}") from None
            defaults = entry.defaults
            needs_tree = bool(getattr(entry.factory, "needs_tree", False))
            try:
                retrievers.params(rname, fixed)
            except ConfigError as e:
                raise ConfigError(f"{file}: retrievers[{i}].params: {e}") from None
            if needs_tree and not trees:
                raise ConfigError(f"{file}: retrievers[{i}] ({rname}) needs a tree but the suite has no [[trees]]")
            if needs_tree and emb is None:
                raise ConfigError(f"{file}: retrievers[{i}] ({rname}) needs a tree; add an [embeddings] table")
            if not needs_tree and labels_sel is not None:
                raise r.err("trees", f"is set but {rname!r} does not use a tree")
        points = _sweep_points(file, f"retrievers[{i}].sweep", sweep)
        if retrievers is not None:
            _check_points(file, f"retrievers[{i}].sweep", retrievers, rname, points)
        for point in points:
            params = {**defaults, **fixed, **point} if retrievers is None else retrievers.params(rname, {**fixed, **point})
            if retrievers is not None:
                _check_constructs(file, f"retrievers[{i}]", retrievers.get(rname), params)
            spec = RetrieverSpec(rname, params, needs_tree, tuple(sorted(sweep)), _neutral(retrievers, rname, params))
            rets.append((spec, labels_sel))
    if not rets and not trees:
        raise ConfigError(f"{file}: the suite has neither [[retrievers]] nor [[trees]]: nothing to run")
    if not rets and emb is None:
        raise ConfigError(f"{file}: a tree-only suite needs an [embeddings] table")

    suite = Suite(name, file, s.get("description", str, ""), seeds, ks, metric, device, batch,
                  tuple(datasets), emb, tuple(trees), tuple(rets), exact_users, beam_sweep)
    cells = suite.cells()
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{file}: two cells resolve to the same parameters (duplicate entries in the grid)")
    return suite
