"""Plots for leaderboards (matplotlib, Agg backend), drawn only when the grid has the axis.

- ``build_time_vs_items.png``: tree build time vs number of items, log-log, one line per builder
  (needs datasets of several sizes);
- ``quality_vs_threshold.png``: the primary test metric (or the tree's clustering cost ratio,
  total cost / root cost, for tree-only grids) vs the builder's ``threshold`` parameter;
- ``quality_vs_k.png``: the same vs the branching factor k;
- ``quality_vs_build_time.png``: the same vs the tree's build time, one point per tree configuration
  (mean ± std over seeds), when a dataset and retriever were run on several trees: which tree, at
  what cost;
- ``quality_vs_beam.png``: the primary test metric and users/s vs the beam width, when cells ran a
  `beam_sweep` (the same trained model decoded at several widths).

Each title carries the commit and hardware that produced the numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def leaderboard_plots(rows: list[dict[str, Any]], out_dir: Path, metric: str, info: dict[str, Any]) -> list[Path]:
    """Draw the plots the grid has axes for; return the files written."""
    tree_rows = [r for r in rows if r["cell"].get("tree") and "time/tree_build_s" in r["metrics"]]
    out: list[Path] = []
    if not tree_rows:
        return out
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subtitle = f"{info['commit']} · {info['hardware']}"
    has_quality = any(f"test/{metric}" in r["metrics"] for r in tree_rows)
    qkey = f"test/{metric}" if has_quality else next(
        (k for k in ("tree/cost_ratio", "tree/total_cost") if k in tree_rows[0]["metrics"]), None)

    # build time vs n_items, per builder (log-log)
    n_items = {r["data"].get("n_items") for r in tree_rows}
    if len(n_items) > 1:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        by: dict[str, dict[int, list[float]]] = {}
        for r in tree_rows:
            t = r["cell"]["tree"]
            label = t["label"] + (f" k={t['k']}" if len({x['cell']['tree']['k'] for x in tree_rows}) > 1 else "")
            by.setdefault(label, {}).setdefault(int(r["data"]["n_items"]), []).append(r["metrics"]["time/tree_build_s"])
        for label, pts in sorted(by.items()):
            xs = sorted(pts)
            ax.plot(xs, [np.mean(pts[x]) for x in xs], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of items")
        ax.set_ylabel("tree build time (s)")
        ax.set_title(f"Tree build time\n{subtitle}", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        out.append(_save(fig, out_dir / "build_time_vs_items.png"))

    for axis, fname, xlabel in (("threshold", "quality_vs_threshold.png", "threshold (items per node)"), ("k", "quality_vs_k.png", "branching factor k")):
        if qkey is None:
            break
        def xval(r: dict[str, Any]) -> Any:
            t = r["cell"]["tree"]
            return t["k"] if axis == "k" else t["params"].get("threshold")
        xs_all = {xval(r) for r in tree_rows if xval(r) is not None and qkey in r["metrics"]}
        if len(xs_all) < 2:
            continue
        fig, ax = plt.subplots(figsize=(6, 4.5))
        series: dict[str, dict[Any, list[float]]] = {}
        for r in tree_rows:
            x = xval(r)
            if x is None or qkey not in r["metrics"]:
                continue
            c = r["cell"]
            name = c["dataset"]["name"] + " · " + (c["retriever"]["name"] if c.get("retriever") else c["tree"]["label"])
            series.setdefault(name, {}).setdefault(x, []).append(r["metrics"][qkey])
        for name, pts in sorted(series.items()):
            xs = sorted(pts)
            means = np.array([np.mean(pts[x]) for x in xs])
            stds = np.array([_sd(pts[x]) for x in xs])
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=name)
        if axis == "threshold":
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(qkey)
        ax.set_title(f"{qkey} vs {axis}\n{subtitle}", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        out.append(_save(fig, out_dir / fname))
    if qkey is not None:
        path = _quality_vs_build_time(plt, tree_rows, qkey, subtitle, out_dir)
        if path is not None:
            out.append(path)
    return out


def _sd(v) -> float:
    """Sample standard deviation over seeds (0 for one seed)."""
    return float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def _quality_vs_build_time(plt, tree_rows: list[dict[str, Any]], qkey: str, subtitle: str, out_dir: Path) -> Path | None:
    from bench.leaderboard import tree_label

    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in tree_rows:
        m = r["metrics"]
        if qkey not in m or not np.isfinite(m["time/tree_build_s"]):
            continue
        c = r["cell"]
        name = c["dataset"]["name"]
        if r["data"].get("n_items"):
            name += f" ({r['data']['n_items']:,} items)"
        if c.get("retriever"):
            name += " · " + c["retriever"]["name"]
        series.setdefault(name, {}).setdefault(tree_label(c["tree"]), []).append((m["time/tree_build_s"], m[qkey]))
    series = {name: trees for name, trees in series.items() if len(trees) > 1}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, trees in sorted(series.items()):
        colour = None
        for tlabel, pts in sorted(trees.items()):
            t, q = np.array(pts).T
            bar = ax.errorbar(t.mean(), q.mean(), xerr=_sd(t), yerr=_sd(q), fmt="o", capsize=3, color=colour,
                              label=name if colour is None else None)
            colour = bar[0].get_color()
            ax.annotate(tlabel, (t.mean(), q.mean()), textcoords="offset points", xytext=(5, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("tree build time (s)")
    ax.set_ylabel(qkey)
    ax.set_title(f"{qkey} vs tree build time (mean ± std over seeds)\n{subtitle}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out_dir / "quality_vs_build_time.png")


def quality_vs_beam(groups, metric: str, info: dict[str, Any], out_dir: Path) -> Path | None:
    """Two panels against the beam width (log): the primary metric and decoding users/s, one line per config."""
    from bench.leaderboard import beam_widths

    series = {f"{g.dataset} · {g.label}": w for g in groups if (w := beam_widths(g, [metric]))}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for name, widths in sorted(series.items()):
        xs = [w for w in sorted(widths) if metric in widths[w]]
        left.plot(xs, [np.mean(widths[w][metric]) for w in xs], marker="o", label=name)
        xs = [w for w in sorted(widths) if "users_per_s" in widths[w]]
        right.plot(xs, [np.mean(widths[w]["users_per_s"]) for w in xs], marker="o", label=name)
    ticks = sorted({w for widths in series.values() for w in widths})
    for ax, ylabel in ((left, f"test/{metric}"), (right, "users/s (decoding)")):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(w) for w in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("beam width")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    right.set_yscale("log")
    left.legend(fontsize=8)
    fig.suptitle(f"Beam width: quality and speed of the same trained models\n{info['commit']} · {info['hardware']}", fontsize=9)
    return _save(fig, out_dir / "quality_vs_beam.png")


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
