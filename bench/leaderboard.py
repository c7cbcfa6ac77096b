"""Leaderboards: rows of a run aggregated over seeds, with confidence and significance.

One leaderboard row = one configuration (a cell without its seed) on one dataset. For every
metric: mean ± std over seeds and a 95% confidence interval (Student t over seeds). The best
row per dataset (by the suite's primary metric, test split), or the row named by ``against``, is
compared with each other row by a paired t-test over the per-user values of that metric, users
matched within each seed and each user's values averaged over the seeds (the per-user arrays a
cell saved next to the results file). Best and
second best of each metric column are marked (bold / italic).

Outputs in ``<results dir>/<suite>/``: ``leaderboard.md`` (provenance header + protocol card +
one table per dataset), ``leaderboard.csv`` and, when the grid has the axis, plots:
``build_time_vs_items.png`` (log-log, per builder), ``quality_vs_threshold.png``,
``quality_vs_k.png``, ``quality_vs_build_time.png`` (one point per tree, grids with several trees).
"""

from __future__ import annotations

import csv
import fnmatch
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import retriever_name, tree_name
from seater.errors import ConfigError, DataError

# metrics shown in the table, in order (those present in the rows)
TIME_COLS = ("time/tree_build_s", "time/train_s", "time/epoch_s", "fit/samples_per_second", "time/infer_ms_per_user",
             "mem/peak_mb", "mem/cuda_peak_mb", "machine/other_cores")  # the last: how shared the machine was
TREE_COLS = ("tree/depth", "tree/n_nodes", "tree/balanced")
LOWER_IS_BETTER_PREFIXES = ("time/", "mem/", "machine/")


@dataclass
class Group:
    """One configuration on one dataset, over its seeds."""

    dataset: str
    label: str
    config: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return [int(r["cell"]["seed"]) for r in self.rows]

    def by_seed(self) -> dict[int, dict[str, Any]]:
        """Rows keyed by seed: how two rows' cells pair (p-values, changes)."""
        return {int(r["cell"]["seed"]): r for r in self.rows}

    def values(self, key: str) -> np.ndarray:
        return np.array([r["metrics"][key] for r in self.rows if key in r["metrics"]], dtype=np.float64)


@dataclass
class LeaderboardFiles:
    markdown_path: Path
    csv_path: Path
    plots: list[Path]

    @property
    def files(self) -> list[Path]:
        return [self.markdown_path, self.csv_path, *self.plots]


def find_runfile(suite_or_runfile: str | Path, runs_dir: str | Path = "runs") -> Path:
    """A results.jsonl, a run folder holding one, or a suite (file or name) run under `runs_dir`."""
    p = Path(suite_or_runfile)
    if p.is_file() and p.suffix == ".jsonl":
        return p
    if p.is_dir() and (p / "results.jsonl").is_file():
        return p / "results.jsonl"
    name = p.stem if p.suffix == ".toml" else str(suite_or_runfile)
    if p.suffix == ".toml" and p.is_file():
        from bench.config import load_suite

        name = load_suite(p, check_names=False).name
    cand = Path(runs_dir) / name / "results.jsonl"
    if cand.is_file():
        return cand
    raise DataError(f"no results for {suite_or_runfile!r}: expected a results.jsonl, a run folder, or {cand}")


def tree_label(tree: dict[str, Any]) -> str:
    """A row's tree by the name its `bench.config.TreeSpec` had (from the row's JSON form)."""
    return tree_name(tree["label"], tree["k"], tree["params"], tree.get("swept") or [])


def _config_key(row: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    cell = row["cell"]
    ret, tree = cell.get("retriever"), cell.get("tree")
    parts = []
    if ret:
        parts.append(retriever_name(ret["name"], ret["params"], ret.get("swept") or []))
    if tree:
        parts.append(tree_label(tree))
    config = {"retriever": ret and {"name": ret["name"], "params": ret["params"]},
              "tree": tree and {"builder": tree["builder"], "k": tree["k"], "params": tree["params"]},
              "embeddings": cell.get("embeddings") if tree else None}
    return cell["dataset"]["name"], " + ".join(parts) or "(empty)", config


def group_rows(rows: list[dict[str, Any]]) -> list[Group]:
    from bench.tracking import latest_rows

    groups: dict[str, Group] = {}
    for r in latest_rows(rows).values():
        if r.get("status") != "FINISHED":
            continue
        ds, label, config = _config_key(r)
        key = json.dumps([ds, config], sort_keys=True, default=str)
        g = groups.setdefault(key, Group(ds, label, config))
        g.rows.append(r)
    for g in groups.values():
        g.rows.sort(key=lambda r: r["cell"]["seed"])
    out = list(groups.values())
    _disambiguate(out)
    return out


def _disambiguate(groups: list[Group]) -> None:
    """Groups of one dataset with the same label (e.g. a suite edited between runs) get the
    retriever parameters that tell them apart appended: ``bert4rec [patience=10]``."""
    by_label: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        by_label.setdefault((g.dataset, g.label), []).append(g)
    for same in by_label.values():
        if len(same) < 2:
            continue
        params = [_flat_settings(g.config) for g in same]
        keys = sorted({k for p in params for k in p if len({json.dumps(q.get(k), default=str) for q in params}) > 1})
        for i, (g, p) in enumerate(zip(same, params)):
            diff = ",".join(f"{k}={p.get(k, '–')}" for k in keys) or f"#{i + 1}"
            g.label = f"{g.label} [{diff}]"


def _flat_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Retriever params, then ``tree.*`` and ``embeddings.*`` settings, as one flat dict."""
    out = dict((config.get("retriever") or {}).get("params") or {})
    tree = config.get("tree") or {}
    out.update({f"tree.{k}": v for k, v in (tree.get("params") or {}).items()})
    emb = config.get("embeddings") or {}
    out.update({f"embeddings.{k}": v for k, v in emb.items()})
    return out


def mean_std_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean, sample std (0 for one seed) and the half-width of a 95% t interval (nan for one seed)."""
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1:
        return mean, 0.0, math.nan
    from scipy import stats

    std = float(x.std(ddof=1))
    return mean, std, float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))


def per_user_values(row: dict[str, Any], metric: str) -> np.ndarray | None:
    """The row's per-user ``test_<metric>.npy`` (``users`` = the test user ids), None if not saved."""
    d = row.get("artifacts", {}).get("per_user")
    if not d:
        return None
    p = Path(d) / f"test_{metric}.npy"
    return np.load(p, allow_pickle=False) if p.is_file() else None


def paired_test(ref: Group, other: Group, metric: str) -> tuple[float, int]:
    """Two-sided paired t-test p-value over users (matched within seeds, each user's values averaged
    over the seeds: `bench.paired.user_means`) and the number of users."""
    from bench.paired import paired_p, user_means

    parts = []
    other_by_seed = other.by_seed()
    for seed, r in ref.by_seed().items():
        o = other_by_seed.get(seed)
        if o is None:
            continue
        a, b = per_user_values(r, metric), per_user_values(o, metric)
        if a is None or b is None or len(a) != len(b):
            continue
        ua, ub = per_user_values(r, "users"), per_user_values(o, "users")
        if ua is not None and ub is not None and not np.array_equal(ua, ub):  # another split: nothing to pair
            continue
        parts.append((ua if ua is not None else ub, a, b))
    if not parts:
        return math.nan, 0
    a, b = user_means(parts)
    return paired_p(a, b), len(a)


def _columns(groups: list[Group], ks: list[int], primary: str) -> list[str]:
    present = set().union(*(set(r["metrics"]) for g in groups for r in g.rows)) if groups else set()
    quality = [f"test/{m}@{k}" for k in ks for m in ("recall", "ndcg", "hit") if f"test/{m}@{k}" in present]
    if f"test/{primary}" in quality:
        quality.remove(f"test/{primary}")
        quality.insert(0, f"test/{primary}")
    if f"valid/{primary}" in present:  # what tuning selects on (the test columns are for reporting)
        quality.insert(1, f"valid/{primary}")
    tree_quality = sorted(k for k in present if k.startswith("tree/") and k not in TREE_COLS and "_level" not in k)
    # decoding accounting of generative retrievers: invalid / duplicate ids, and what the beam
    # loses against exact scoring of every identifier (on a sample of test users)
    pk = primary.partition("@")[2]
    decoding = [c for c in ("test/invalid_rate", "test/duplicate_rate", f"test_exact/beam_{primary}", f"test_exact/{primary}",
                            f"test_exact/overlap@{pk}") if c in present]
    return quality + [c for c in TREE_COLS if c in present] + tree_quality + decoding + [c for c in TIME_COLS if c in present]


def terminal_view(md: str) -> str:
    """A leaderboard as `run` prints it: without the all-columns tables and the plot links (the file has both)."""
    out, skip = [], False
    for line in md.splitlines():
        if line.startswith("## "):
            skip = line == "## Plots"
        elif line.startswith("### "):
            skip = False
        elif line == "All columns:":
            skip = True
        if not skip:
            out.append(line)
    return "\n".join(out)


def _summary_columns(cols: list[str], primary: str, ks: list[int]) -> list[str]:
    """The headline columns of a leaderboard: the primary metric, recall and NDCG at the two
    smallest cut-offs, the tree's cost and the seconds it took to build, train and serve."""
    want = [primary, *(f"test/{m}@{k}" for k in ks[:2] for m in ("recall", "ndcg")),
            "tree/total_cost", "time/tree_build_s", "time/train_s", "time/infer_ms_per_user"]
    return [c for c in dict.fromkeys(want) if c in cols]


def _table(order: list[Group], cols: list[str], text: dict[tuple[int, str], str]) -> list[str]:
    head = ["config", "seeds", *cols]
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join([g.label, str(len(g.rows)), *(text[id(g), c] for c in cols)]) + " |" for g in order])


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    ax = abs(x)
    if float(x).is_integer() and ax < 1e6:
        return str(int(x))
    if ax >= 1000:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 0.01:
        return f"{x:.4f}"
    return f"{x:.2e}"


def _lower_better(col: str) -> bool:
    return col.startswith(LOWER_IS_BETTER_PREFIXES) or "cost" in col or "off_nearest" in col or col.endswith(("gini", "_rate"))


def protocol_card(rows: list[dict[str, Any]]) -> str:
    """Split, history length, seen-item filtering, Ks and ranking: what makes numbers comparable."""
    lines = ["## Protocol card", ""]
    datasets: dict[str, dict[str, Any]] = {}
    stats: dict[str, dict[str, set]] = {}
    for r in rows:
        ds = r["cell"]["dataset"]
        datasets.setdefault(ds["name"], ds)
        if r.get("status", "FINISHED") == "FINISHED":  # a failed row may have stopped before loading
            for k, v in r.get("data", {}).items():
                stats.setdefault(ds["name"], {}).setdefault(k, set()).add(v)
    for name, ds in datasets.items():
        src = "synthetic " + json.dumps(ds.get("synthetic", {}), sort_keys=True) if ds["source"] == "synthetic" else f"{ds['source']} ({ds['format']})"
        # a user_split draws its users per seed, so its counts vary: the range over the rows
        text = ", ".join(f"{k} {_span(v)}" for k, v in stats.get(name, {}).items())
        lines.append(f"- **{name}**: {src}; {text or 'no finished cell'}")
    c0 = rows[0]["cell"]
    protocols = sorted({r["cell"]["dataset"]["protocol"] for r in rows})
    hist = sorted({r["cell"]["dataset"]["max_history"] for r in rows})
    seeds = sorted({r["cell"]["seed"] for r in rows})
    lines += [
        f"- split: {', '.join(protocols)}; history: last {', '.join(map(str, hist))} items, left-padded",
        f"- seen-item filtering: {seen_item_filtering(rows)}",
        f"- Ks: {', '.join(map(str, c0['ks']))}; full ranking over all items (no sampled negatives); NDCG with ideal DCG over min(|truth|, K) positives",
        f"- seeds: {', '.join(map(str, seeds))} (mean ± std over seeds; 95% CI = Student t over seeds)",
        "",
    ]
    return "\n".join(lines)


def seen_item_filtering(rows: list[dict[str, Any]]) -> str:
    """Whether recommendations skip history items: per cell, its retriever's ``exclude_history``."""
    on = [r for r in rows if (ret := r["cell"].get("retriever")) and ret.get("params", {}).get("exclude_history")]
    if not on:
        return "off (items already in the history may be recommended and count when they are in the truth set)"
    names = sorted({r["cell"]["retriever"]["name"] for r in on})
    return f"on in {len(on)} of {len(rows)} cells ({', '.join(names)} with exclude_history), off in the others"


def _span(values: set) -> str:
    """One value as is, several as their range (numbers) or list."""
    if len(values) == 1:
        return str(next(iter(values)))
    try:
        return f"{min(values)}..{max(values)} (varies across cells)"
    except TypeError:
        return " / ".join(sorted(map(str, values)))


def merged_rows(runfiles: list[Path]) -> list[dict[str, Any]]:
    """The rows of several run files as one run: per-user paths resolved against each row's own
    file, and a cell finished in any file kept finished (another run's failure of the same cell
    id, e.g. a killed rerun, does not hide it)."""
    from bench.tracking import epoch_seconds, per_user_dir, read_rows

    rows: list[dict[str, Any]] = []
    for f in runfiles:
        if not f.is_file():
            raise DataError(f"no results file {f}")
        for r in read_rows(f):
            found = per_user_dir(r, f)  # a moved run folder: its per-user files lie beside the run file
            if found is not None:
                r.setdefault("artifacts", {})["per_user"] = str(found)
            if "time/epoch_s" not in r["metrics"] and (epoch_s := epoch_seconds(r.get("curves", []))) is not None:
                r["metrics"]["time/epoch_s"] = epoch_s  # rows written before the runner recorded it
            rows.append(r)
    finished = {r["cell_id"] for r in rows if r.get("status") == "FINISHED"}
    return [r for r in rows if r.get("status") == "FINISHED" or r["cell_id"] not in finished]


def reference_row(groups: list[Group], against: str, primary: str) -> Group:
    """The one row of a dataset's table whose label matches the glob `against` (and has test values)."""
    hits = [g for g in groups if fnmatch.fnmatchcase(g.label, against) and len(g.values(primary))]
    if len(hits) != 1:
        labels = ", ".join(f"`{g.label}`" for g in groups if len(g.values(primary)))
        found = "no row" if not hits else f"{len(hits)} rows ({', '.join(g.label for g in hits)})"
        raise ConfigError(f"--against {against!r} matches {found} of dataset {groups[0].dataset}; "
                          f"it must match exactly one of: {labels}")
    return hits[0]


def change_vs(ref: Group, other: Group, key: str) -> float:
    """Relative change (%) of `other`'s mean of `key` against `ref`'s, over the seeds both have (paired by
    seed, as the p-value: a row run on fewer seeds is not compared with the reference's other seeds)."""
    mine, theirs = other.by_seed(), ref.by_seed()
    common = sorted(s for s in mine.keys() & theirs.keys() if key in mine[s]["metrics"] and key in theirs[s]["metrics"])
    base = float(np.mean([theirs[s]["metrics"][key] for s in common])) if common else math.nan
    return (float(np.mean([mine[s]["metrics"][key] for s in common])) / base - 1) * 100 if common and base else math.nan


def write_leaderboard(runfile: str | Path | list[str | Path], results_dir: str | Path = "results", metric: str | None = None,
                      command: str | None = None, suite: str | None = None, against: str | None = None) -> LeaderboardFiles:
    """Aggregate `runfile` (or several run files as one table) and write the markdown, CSV and plots
    to `<results_dir>/<suite>/`; return their paths.

    `against`: a glob over row labels (e.g. ``*balanced*``) naming the reference row of each dataset:
    p-values and a relative change of the primary metric are then given against it, not the best row.

    `suite` defaults to the suite of the last row, which is not the run's own when the run file also
    holds finished rows copied in from other suites' runs (reused cells). Several run files: rows
    of the same cell id count once, so runs that share cells (``run --reuse``) merge cleanly.
    """
    from bench.provenance import markdown_header, provenance, shown_path

    runfiles = [Path(f) for f in (runfile if isinstance(runfile, (list, tuple)) else [runfile])]
    if not runfiles:
        raise DataError("no results files given")
    rows = merged_rows(runfiles)
    if not rows:
        raise DataError(f"{', '.join(map(str, runfiles))}: no results rows yet")
    suite = suite or rows[-1].get("suite") or runfiles[0].parent.name
    metric = metric or _suite_metric(runfiles[0], rows)
    ks = sorted({int(k) for r in rows for k in r["cell"]["ks"]})
    groups = group_rows(rows)
    out_dir = Path(results_dir) / suite
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = _columns(groups, ks, metric)
    primary = f"test/{metric}"
    info = provenance(command)
    data_desc = ", ".join(sorted({g.dataset for g in groups})) or "(no finished cells)"
    from bench.tracking import latest_rows

    latest = list(latest_rows(rows).values())
    n_failed = sum(r["status"] != "FINISHED" for r in latest)

    md = [f"# Leaderboard: {suite}", "", markdown_header(info, data=data_desc),
          f"- results file{'s' if len(runfiles) > 1 else ''}: {', '.join(f'`{shown_path(f)}`' for f in runfiles)} "
          f"({len(latest)} cells, {n_failed} failed)", "", protocol_card(latest)]
    csv_rows: list[dict[str, Any]] = []
    for ds in sorted({g.dataset for g in groups}):
        gs = [g for g in groups if g.dataset == ds]
        stats = {id(g): {c: mean_std_ci(g.values(c)) for c in cols} for g in gs}
        has_primary = [g for g in gs if len(g.values(primary))]
        if has_primary:
            order = sorted(gs, key=lambda g: -stats[id(g)][primary][0] if len(g.values(primary)) else math.inf)
        else:  # tree-only grids: tightest clustering first
            cost = next((c for c in ("tree/total_cost", "time/tree_build_s") if c in cols), None)
            order = sorted(gs, key=lambda g: stats[id(g)][cost][0] if cost and not math.isnan(stats[id(g)][cost][0]) else math.inf)
        best = order[0] if has_primary else None
        use_ref = against is not None and bool(has_primary)
        if against is not None and not has_primary:
            warnings.warn(f"--against {against!r} not used for dataset {ds}: no row has values of {primary} "
                          "(a tree-only grid, or no finished cell)")
        ref = reference_row(gs, against, primary) if use_ref else best
        vs = "ref" if use_ref else "best"
        marks: dict[tuple[int, str], str] = {}
        for c in cols:
            if c in TREE_COLS:  # shape, not a score
                continue
            vals = [(stats[id(g)][c][0], id(g)) for g in gs if not math.isnan(stats[id(g)][c][0])]
            if len({v for v, _ in vals}) < 2:
                continue
            ranked = sorted(vals, key=lambda t: t[0] if _lower_better(c) else -t[0])
            second = next((t for t in ranked[1:] if t[0] != ranked[0][0]), None)
            for v, gid in ranked:  # ties share a mark
                if v == ranked[0][0]:
                    marks[(gid, c)] = "best"
                elif second is not None and v == second[0]:
                    marks[(gid, c)] = "second"
        md += [f"## {ds}", ""]
        if best is not None:
            whom = (f"the best row `{best.label}`" if vs == "best" else
                    f"the reference row `{ref.label}` (change = of the mean over the seeds both rows have)")
            md.append(f"Sorted by {primary}; **bold** = best, _italic_ = second best per column; "
                      f"p = paired t-test over users (matched per seed, each user's mean over the seeds) against {whom}; "
                      f"95% CI of {primary} over seeds.")
            md.append("")
        extra = ([f"95% CI {primary}"] + (["change vs ref"] if vs == "ref" else []) + [f"p vs {vs}"]) if best is not None else []
        text: dict[tuple[int, str], str] = {}  # (group, column) -> the cell as shown
        for g in order:
            row_csv: dict[str, Any] = {"dataset": ds, "config": g.label, "seeds": " ".join(map(str, g.seeds)),
                                       "cell_ids": " ".join(r["cell_id"] for r in g.rows)}
            for c in cols:
                m, s, ci = stats[id(g)][c]
                txt = _fmt(m) + (f" ± {_fmt(s)}" if len(g.rows) > 1 and not math.isnan(m) else "")
                mark = marks.get((id(g), c))
                text[id(g), c] = f"**{txt}**" if mark == "best" else (f"_{txt}_" if mark == "second" else txt)
                row_csv[c] = m
                row_csv[f"{c} std"] = s
                row_csv[f"{c} ci95"] = ci
            if best is not None:
                m, s, ci = stats[id(g)][primary]
                text[id(g), extra[0]] = "–" if math.isnan(ci) else f"[{_fmt(m - ci)}, {_fmt(m + ci)}]"
                if vs == "ref":
                    change = change_vs(ref, g, primary)
                    text[id(g), "change vs ref"] = "ref" if g is ref else ("–" if math.isnan(change) else f"{change:+.1f}%")
                    row_csv["change_vs_ref_pct"] = "" if g is ref else change
                if g is ref:
                    text[id(g), extra[-1]] = vs
                    row_csv[f"p_vs_{vs}"] = ""
                else:
                    p, n = paired_test(ref, g, metric)
                    text[id(g), extra[-1]] = "–" if math.isnan(p) else (f"{p:.2g}" + (" *" if p < 0.05 else ""))
                    row_csv[f"p_vs_{vs}"] = p
            row_csv["best"] = g is best
            if vs == "ref":
                row_csv["ref"] = g is ref
            csv_rows.append(row_csv)
        summary = _summary_columns(cols, primary, ks)
        if len(summary) < len(cols):  # the full table is too wide to read: the headline columns first
            md += _table(order, summary + extra, text) + ["", "All columns:", ""]
        md += _table(order, cols + extra, text) + [""]
        md += beam_width_table(gs, metric, ks)
    failed = [r for r in latest if r["status"] != "FINISHED"]
    if failed:
        md += ["## Failed cells", ""] + [f"- `{r['name']}`: {r.get('error') or 'unknown error'}" for r in failed] + [""]

    from bench.plots import leaderboard_plots, quality_vs_beam

    plots = leaderboard_plots([r for g in groups for r in g.rows], out_dir, metric, info)
    plots += [p for p in [quality_vs_beam(groups, metric, info, out_dir)] if p is not None]
    if plots:
        md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    md_path = out_dir / "leaderboard.md"
    md_path.write_text("\n".join(md))
    csv_path = out_dir / "leaderboard.csv"
    with open(csv_path, "w", newline="") as fh:
        for line in markdown_header(info, data=data_desc).splitlines():
            fh.write(f"# {line.lstrip('- ')}\n")
        fh.write(f"# protocol: {', '.join(sorted({r['cell']['dataset']['protocol'] for r in latest}))}; "
                 f"history {sorted({r['cell']['dataset']['max_history'] for r in latest})}; seen-item filtering {seen_item_filtering(latest)}; "
                 f"Ks {ks}; full ranking\n")
        fields: list[str] = []
        for r in csv_rows:
            fields += [k for k in r if k not in fields]
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(csv_rows)
    return LeaderboardFiles(md_path, csv_path, plots)


BEAM_KEY = re.compile(r"test_beam(\d+)/")


def beam_widths(g: Group, names: list[str]) -> dict[int, dict[str, list[float]]]:
    """{width: {metric: values over seeds}} of a group whose cells ran a `beam_sweep` ({} if none):
    the sweep's widths plus the main evaluation's (``max(beam_size, max ks)``). Metric ``users_per_s``
    is the decoding throughput."""
    from bench.config import beam_key

    out: dict[int, dict[str, list[float]]] = {}
    for r in g.rows:
        m = r["metrics"]
        swept = sorted({int(b.group(1)) for key in m if (b := BEAM_KEY.match(key))})
        if not swept:
            continue
        params = r["cell"]["retriever"]["params"]
        main = max(int(params.get("beam_size", 0)), max(int(x) for x in r["cell"]["ks"]))
        widths = {main: {n: m.get(f"test/{n}") for n in names} | {"users_per_s": m.get("time/users_per_s")}}
        widths.update({w: {n: m.get(beam_key(w, n)) for n in (*names, "users_per_s")} for w in swept})
        for w, vals in widths.items():
            for n, v in vals.items():
                if v is not None:
                    out.setdefault(w, {}).setdefault(n, []).append(float(v))
    return out


def beam_width_table(groups: list[Group], metric: str, ks: list[int]) -> list[str]:
    """Quality (at the smallest cut-off, which every width reaches, and at the primary metric's) and
    users/s against the beam width, for the groups whose cells ran a `beam_sweep`."""
    from seater.metrics import metric_cutoff

    cuts = dict.fromkeys([min(ks), metric_cutoff(metric)])
    names = [f"{m}@{k}" for k in cuts for m in ("ndcg", "recall")]
    md = ["### Beam width", "",
          "The same trained models decode the test users again at each width (suite `beam_sweep`); "
          "mean over seeds; users/s on the hardware of the run.", "",
          "| config | beam | seeds | " + " | ".join(f"test/{n}" for n in names) + " | users/s |", "|---|---:|---:|" + "---:|" * (len(names) + 1)]
    head = len(md)
    for g in groups:
        per_width = beam_widths(g, names)
        for w in sorted(per_width):
            vals = per_width[w]
            cells = [_fmt(float(np.mean(vals[n]))) if n in vals else "–" for n in names]
            ups = vals.get("users_per_s")
            seeds = max(len(v) for v in vals.values())
            md.append(f"| {g.label} | {w} | {seeds} | " + " | ".join(cells) + f" | {f'{np.mean(ups):,.0f}' if ups else '–'} |")
    return md + [""] if len(md) > head else []


def _suite_metric(runfile: Path, rows: list[dict[str, Any]]) -> str:
    """The run's primary metric: its kept suite's ``suite.metric``, read from the TOML alone (loading the
    whole suite resolved its relative data paths against the working directory, and from elsewhere
    the leaderboard silently sorted by the default), else NDCG at the first cut-off, as suites default."""
    default = f"ndcg@{rows[-1]['cell']['ks'][0]}"
    toml = runfile.parent / "suite.toml"
    if not toml.is_file():
        return default
    import tomllib

    try:
        metric = tomllib.loads(toml.read_text()).get("suite", {}).get("metric", default)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        warnings.warn(f"{toml} does not read ({e}); sorting by {default}")
        return default
    from seater.metrics import is_metric_name

    if not is_metric_name(metric):
        warnings.warn(f"{toml}: suite.metric {metric!r} is not a metric; sorting by {default}")
        return default
    return metric
