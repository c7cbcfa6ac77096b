"""Speed of SEATER's constrained beam search and training vs exact inner-product top-K.

`run_retrieval_speed(...)` times, on synthetic balanced trees over random permutations of the
items (branching k, catalog sizes e.g. 12K / 361K / 1M) and an untrained SEATER network
(decoding cost does not depend on the weights):

- beam-search throughput (users/s) for top-K with beam W, against catalog size and beam width;
- exact inner-product top-K (`seater.topk.topk_inner_product`, d = d_model) at the same sizes;
- training throughput (samples/s, all three losses) at the smallest size.

Every timing runs the same code as training/inference, after one warm-up call.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.speed import ReportedRows
from seater.errors import ConfigError
from seater.trees.checks import MAX_K, check_int
from seater.trees.tree import Tree


def balanced_random_codes(n_items: int, k: int, seed: int = 0) -> np.ndarray:
    """Codes of a balanced k-ary tree over a random permutation of the items (see `balanced_codes`)."""
    return balanced_codes(np.random.default_rng(seed).permutation(n_items), k)


def balanced_codes(perm: np.ndarray, k: int) -> np.ndarray:
    """Codes of the balanced k-ary tree whose leaves, left to right, are items ``perm + 1``.

    At every node with n items the children hold floor(n/k) or floor(n/k)+1 items (the first
    n mod k children one more); a child with one item is that item. Returns int64
    ``(n_items, depth)`` right-padded with -1 (items may end one level apart).
    """
    check_int("branching factor k", k, 2, MAX_K)  # k = 1 would never split a node
    perm = np.asarray(perm, dtype=np.int64)
    n_items = len(perm)
    if n_items == 0:
        raise ConfigError("a balanced tree needs at least one item")
    # walk every item down: its offset within its current node and that node's size
    offset = np.arange(n_items, dtype=np.int64)
    size = np.full(n_items, n_items, dtype=np.int64)
    cols: list[np.ndarray] = []
    active = size > 1
    if n_items == 1:
        return np.zeros((1, 1), dtype=np.int64)
    while active.any():
        q, r = size // k, size % k
        big = r * (q + 1)  # items in the first r (larger) children
        slot = np.where(offset < big, offset // np.maximum(q + 1, 1), r + (offset - big) // np.maximum(q, 1))
        new_off = np.where(offset < big, offset % np.maximum(q + 1, 1), (offset - big) % np.maximum(q, 1))
        new_size = np.where(slot < r, q + 1, q)
        small = size <= k  # children are the items themselves
        slot = np.where(small, offset, slot)
        new_size = np.where(small, 1, new_size)
        cols.append(np.where(active, slot, -1))
        offset, size = np.where(active, new_off, offset), np.where(active, new_size, size)
        active = active & (size > 1)
    codes = np.stack(cols, axis=1)
    out = np.empty_like(codes)
    out[perm] = codes
    return out


def balanced_random_tree(n_items: int, k: int, seed: int = 0) -> Tree:
    return Tree(balanced_random_codes(n_items, k, seed), k, {"builder": "random-permutation-balanced", "seed": seed})


@dataclass
class RetrievalSpeedConfig:
    sizes: tuple[int, ...] = (12_101, 361_000, 1_000_000)  # catalog sizes (Beauty, Books, 1M)
    k: int = 16  # branching factor of the synthetic trees
    beam: int = 50  # beam width for the catalog-size curve
    topk: int = 50  # items returned per user
    beams: tuple[int, ...] = (10, 20, 50, 100)  # beam widths for the beam curve (at sizes[0])
    users: int = 512  # users timed per size (fewer at large sizes on CPU: see users_large)
    users_large: int = 128  # users for sizes above 100K (the CLI's default)
    batch: int = 256  # users per beam-search / top-K call
    train_batch: int = 256  # training batch size
    train_steps: int = 10  # timed training steps
    repeats: int = 3  # timed runs of every measurement (after one warm-up); rows report the median
    history: int = 20  # history length
    d_model: int = 64
    device: str = "cpu"
    # attention kernels (SEATER.recommend's `attention`): the first for every timing, the others
    # beside it at the curve's beam width and for training; "default" = what the model does unasked
    # (decoding: math on CUDA, torch's choice on CPU; training: torch's choice), so the main tables
    # time the path a run takes
    attentions: tuple[str, ...] = ("default",)
    # torch.compile modes ("default", "reduce-overhead" = + CUDA graphs, ...): for each, training is
    # also timed with the loss compiled (first size, first attention; static shapes, so one graph;
    # the compile timed apart). CPU: no gain measured (a Beauty-size step 165 vs 167 ms, 1 thread);
    # the question is the GPU, where the eager step is bound by operator launches
    compile: tuple[str, ...] = ()
    threads: int = 1  # torch CPU threads
    seed: int = 0
    notes: list[str] = field(default_factory=list)


def _time(fn, device: torch.device, repeats: int = 1) -> dict[str, Any]:
    """``{"seconds": median, "seconds_min", "seconds_each"}`` of `repeats` timed calls after one
    warm-up; waits for the GPU, whose kernels run asynchronously."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    fn()  # warm-up
    sync()
    each = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        sync()
        each.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(each), "seconds_min": min(each), "seconds_each": each}


def run_retrieval_speed(cfg: RetrievalSpeedConfig, log=print, on_rows=None) -> dict[str, Any]:
    """Run every timing; returns a JSON-able dict of rows. `on_rows(result so far)` after each row."""
    from seater.model.config import SEATERConfig
    from seater.model.seater import SEATER
    from seater.topk import topk_inner_product

    torch.set_num_threads(cfg.threads)
    dev = torch.device(cfg.device)
    rows = ReportedRows({"config": asdict(cfg)}, on_rows)
    gen = torch.Generator().manual_seed(cfg.seed)
    for n in cfg.sizes:
        t0 = time.perf_counter()
        tree = balanced_random_tree(n, cfg.k, cfg.seed)
        build_s = time.perf_counter() - t0
        conf = SEATERConfig(n_items=n, n_tokens=tree.n_tokens, depth=tree.depth, d_model=cfg.d_model)
        model = SEATER(conf, tree).to(dev).eval()
        n_users = cfg.users if n <= 100_000 else cfg.users_large
        batch = min(cfg.batch, n_users)  # the users per call, as recorded
        hist = torch.randint(1, n + 1, (n_users, cfg.history), generator=gen).to(dev)
        beams = sorted({*cfg.beams, cfg.beam}) if n == cfg.sizes[0] else (cfg.beam,)  # the size curve needs W = beam everywhere

        # the first attention everywhere; the others at the curve's beam width only, unless they run the same
        # kernels as one timed already ("default" is math or auto: `kernels`)
        others = _distinct(cfg.attentions, lambda a: kernels(a, "decode", dev))[1:]
        runs = [(beam, cfg.attentions[0]) for beam in beams] + [(cfg.beam, a) for a in others]
        for beam, att in runs:
            def decode():
                for s in range(0, n_users, batch):
                    model.recommend(hist[s : s + batch], beam_size=beam, topk=min(cfg.topk, beam), attention=kernels(att, "decode", dev))
            t = _time(decode, dev, cfg.repeats)
            sec = t["seconds"]
            rows.append({"kind": "beam", "n_items": n, "k": cfg.k, "depth": tree.depth, "beam": beam, "topk": min(cfg.topk, beam),
                         "attention": att, "users": n_users, "batch": batch, **t, "users_per_s": n_users / sec})
            log(f"beam  n={n:>9} W={beam:>3} depth={tree.depth} attention={att}: {n_users / sec:10.1f} users/s")

        items = torch.randn(n, cfg.d_model, generator=gen).to(dev)
        queries = torch.randn(n_users, cfg.d_model, generator=gen).to(dev)

        def exact():
            for s in range(0, n_users, batch):
                topk_inner_product(queries[s : s + batch], items, cfg.topk)
        t = _time(exact, dev, cfg.repeats)
        sec = t["seconds"]
        rows.append({"kind": "exact", "n_items": n, "topk": cfg.topk, "users": n_users, "batch": batch, "d": cfg.d_model,
                     **t, "users_per_s": n_users / sec})
        log(f"exact n={n:>9}: {n_users / sec:10.1f} users/s   (tree build {build_s:.1f}s)")

        if n == cfg.sizes[0] or dev.type == "cuda":  # training is cheap to time on a GPU: every size
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=seater_default("weight_decay"))
            th = torch.randint(1, n + 1, (cfg.train_batch, cfg.history), generator=gen).to(dev)
            tt = torch.randint(1, n + 1, (cfg.train_batch,), generator=gen).to(dev)

            for att in _distinct(cfg.attentions, lambda a: kernels(a, "train", dev)):
                rows.append(_train_row(model.loss, opt, th, tt, n, att, cfg, dev, log))
            for mode in cfg.compile if n == cfg.sizes[0] else ():
                loss_fn = torch.compile(model.loss, dynamic=False, mode=mode)
                rows.append(_train_row(loss_fn, opt, th, tt, n, cfg.attentions[0], cfg, dev, log, compiled=mode))
        del model, tree
    return rows.result()


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def kernels(attention: str, what: str, dev: torch.device) -> str:
    """The attention kernels `attention` stands for: "default" is what a run does unasked (SEATER.recommend
    decodes with math on CUDA and torch's choice elsewhere; training always leaves the choice to torch)."""
    from seater.model.seater import decode_attention

    if attention != "default":
        return attention
    return decode_attention(dev) if what == "decode" else "auto"


def _distinct(attentions, key) -> list[str]:
    """`attentions` in order, without those that run the same kernels as an earlier one."""
    seen, out = set(), []
    for a in attentions:
        if key(a) not in seen:
            seen.add(key(a))
            out.append(a)
    return out


def _train_row(loss_fn, opt, th, tt, n: int, att: str, cfg: RetrievalSpeedConfig, dev: torch.device, log, compiled: str | None = None) -> dict[str, Any]:
    """Training samples/s of `loss_fn` (`SEATER.loss`, all three losses), stepped as seater.training
    steps. `compiled`: the torch.compile mode of `loss_fn`; its first two steps (the compile, then
    "reduce-overhead"'s CUDA-graph recording) are timed apart, as ``compile_s``."""
    from seater.model.seater import attention_kernels
    from seater.training import backward_step, bf16_autocast

    clip = seater_default("grad_clip")
    params = [p for g in opt.param_groups for p in g["params"]]

    def step():  # the training loop's step: the loss, then its update (backward, gradient clipping, AdamW)
        with bf16_autocast(dev), attention_kernels(kernels(att, "train", dev)):
            loss = loss_fn(th, tt)["loss"]
        backward_step(loss, opt, params, clip)

    extra: dict[str, Any] = {}
    if compiled:
        t0 = time.perf_counter()
        step()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        extra = {"compiled": compiled, "compile_s": time.perf_counter() - t0}

    def train():
        for _ in range(cfg.train_steps):
            step()
    t = _time(train, dev, cfg.repeats)
    sec = t["seconds"]
    sps = cfg.train_batch * cfg.train_steps / sec
    how = f" torch.compile({compiled})" if compiled else ""
    tail = f"(compile {extra['compile_s']:.1f}s)" if compiled else "(all three losses)"
    log(f"train n={n:>9} batch={cfg.train_batch} attention={att}{how}: {sps:10.1f} samples/s {tail}")
    return {"kind": "train", "n_items": n, "k": cfg.k, "batch": cfg.train_batch, "steps": cfg.train_steps,
            "amp": "bf16" if dev.type == "cuda" else "fp32", "attention": att, **extra, **t, "samples_per_s": sps}


def seater_default(name: str) -> Any:
    """A training default of the registered `seater` retriever (what a run's steps use)."""
    from bench.registry import retrievers

    return retrievers().get("seater").defaults[name]


def write_results(result: dict[str, Any], out_dir: Path, info: dict[str, Any], png: bool = True) -> list[Path]:
    """results JSON + markdown table + PNG curves (users/s vs catalog size and vs beam width)."""
    from bench.provenance import markdown_header

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = result["rows"]
    js = out_dir / "speed_retrieval.json"
    js.write_text(json.dumps({"provenance": info, **result}, indent=2))
    cfg = result["config"]
    lines = ["# SEATER beam search vs exact inner-product top-K", "", markdown_header(info, data="synthetic balanced trees over random item permutations, untrained network"), ""]
    lines += [f"Device {cfg['device']}, {cfg['threads']} torch thread(s); top-{cfg['topk']}, batch up to {cfg['batch']} users "
              f"(each row's `batch` in the JSON), k = {cfg['k']}, d = {cfg['d_model']}; every figure is the median of "
              f"{cfg.get('repeats', 1)} timed run(s) after a warm-up (all runs in the JSON). "
              "Beam search decodes from item histories (the encoder timed with it); exact top-K scores the item table "
              "against given user vectors (a dual encoder's history encoder is not timed).", ""]
    for note in cfg.get("notes", []):
        lines.append(f"- {note}")
    atts = cfg.get("attentions", ["auto"])
    rows = [r for r in rows if r.get("attention", atts[0]) == atts[0]]  # the main tables: the first attention
    lines += ["", f"Attention kernels: {atts[0]} (SEATER.recommend's `attention`"
              + ("; default = the model's own choice: math on CUDA, torch's on CPU, torch's for training" if atts[0] == "default" else "") + ")."]
    lines += ["", "| n_items | depth | beam users/s (W=%d) | exact top-K users/s | beam / exact |" % cfg["beam"], "|---:|---:|---:|---:|---:|"]
    for n in cfg["sizes"]:
        b = [r for r in rows if r["kind"] == "beam" and r["n_items"] == n and r["beam"] == cfg["beam"]]
        e = [r for r in rows if r["kind"] == "exact" and r["n_items"] == n]
        if b and e:
            lines.append(f"| {n:,} | {b[0]['depth']} | {b[0]['users_per_s']:,.0f} | {e[0]['users_per_s']:,.0f} | {b[0]['users_per_s'] / e[0]['users_per_s']:.2f} |")
    lines += ["", f"Beam width curve at {cfg['sizes'][0]:,} items (a beam of W returns top-min(W, {cfg['topk']})):", "",
              "| beam | top-K | users/s |", "|---:|---:|---:|"]
    for r in rows:
        if r["kind"] == "beam" and r["n_items"] == cfg["sizes"][0]:
            lines.append(f"| {r['beam']} | {r['topk']} | {r['users_per_s']:,.0f} |")
    for r in rows:
        if r["kind"] == "train":
            how = f", torch.compile mode {r['compiled']} (compile {r['compile_s']:.1f} s, apart)" if r.get("compiled") else ""
            lines += ["", f"Training (all three losses, batch {r['batch']}, {r['n_items']:,} items, {r.get('amp', 'fp32')}{how}): **{r['samples_per_s']:,.0f} samples/s**."]
    if len(atts) > 1:
        every = result["rows"]
        lines += ["", f"Attention kernels side by side (beam W={cfg['beam']} users/s; training samples/s):", "",
                  "| n_items | what | " + " | ".join(atts) + " |", "|---:|---|" + "---:|" * len(atts)]
        for n in cfg["sizes"]:
            for kind, key in (("beam", "users_per_s"), ("train", "samples_per_s")):
                got = {r.get("attention", atts[0]): r[key] for r in every
                       if r["kind"] == kind and r["n_items"] == n and r.get("beam", cfg["beam"]) == cfg["beam"] and not r.get("compiled")}
                if got:
                    lines.append(f"| {n:,} | {kind} | " + " | ".join(f"{got[a]:,.0f}" if a in got else "–" for a in atts) + " |")
    md = out_dir / "speed_retrieval.md"
    md.write_text("\n".join(lines) + "\n")
    paths = [js, md]
    if not png:  # a table cut short: no curves, and none of an earlier run beside it
        (out_dir / "speed_retrieval.png").unlink(missing_ok=True)
        return paths
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        for kind, label in (("beam", f"SEATER beam (W={cfg['beam']})"), ("exact", "exact inner-product top-K")):
            pts = sorted((r["n_items"], r["users_per_s"]) for r in rows if r["kind"] == kind and r.get("beam", cfg["beam"]) == cfg["beam"])
            ax[0].plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        ax[0].set_xscale("log"), ax[0].set_yscale("log"), ax[0].set_xlabel("catalog size"), ax[0].set_ylabel("users/s"), ax[0].legend()
        pts = sorted((r["beam"], r["users_per_s"]) for r in rows if r["kind"] == "beam" and r["n_items"] == cfg["sizes"][0])
        ax[1].plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax[1].set_xlabel("beam width"), ax[1].set_ylabel("users/s"), ax[1].set_title(f"{cfg['sizes'][0]:,} items")
        fig.suptitle(f"{info['hardware']} · {info['commit']}", fontsize=8)
        fig.tight_layout()
        png = out_dir / "speed_retrieval.png"
        fig.savefig(png, dpi=100)
        paths.append(png)
    except ImportError:
        pass
    return paths
