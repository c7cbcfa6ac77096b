"""Probe: build seconds of `balanced` parameter variants, interleaved, one build per fresh process.

This 2-core machine's speed drifts by up to ~1.5x within the hour, so two variants timed one after
the other can differ by more than the change being measured. Here round r builds every variant once,
in turn, each in a new Python process (no warm allocator or caches carried over), and the table gives
each variant's median and best over the rounds.
Run: python results/trees/interleaved_ab.py --sizes 5000,20000 --rounds 9 \
    --variants '[{"trial_eps": 0}, {}]' --out results/trees/trial_ab.md
Code versions instead of parameters: ``--revs REV,.`` builds with the defaults of commit REV (a
temporary git worktree) and of this checkout (``.``), in turn; the table also gives each one's tree hash.
Environments instead: ``--envs '[{}, {"OMP_WAIT_POLICY": "PASSIVE"}]'`` builds with the defaults, each
variant's process with those environment variables added. ``--load N`` keeps N busy-looping processes
running meanwhile: a machine whose cores other work holds, made on purpose so the figure can be rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.provenance import MachineLoad, load_text, probe_header, record_load, write_markdown

_BUILD = """
import json, sys, time
import torch
from bench.speed.trees import synthetic
from seater.trees.balanced import build
n, seed, threads, params = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
torch.set_num_threads(threads)
x = synthetic(n, 64, seed)
t = time.perf_counter()
tree = build(x, 16, seed=seed, threads=threads, **params)
print(time.perf_counter() - t, tree.hash())
"""


def _seconds(n: int, seed: int, threads: int, params: dict, root: str | None = None, extra_env: dict | None = None) -> tuple[float, str]:
    """(build seconds, tree hash) of one build in a fresh process, with the code under `root` (None: this
    checkout) and `extra_env` added to the environment."""
    env = dict(os.environ, **(extra_env or {}), **({"PYTHONPATH": root} if root else {}))
    out = subprocess.run([sys.executable, "-c", _BUILD, str(n), str(seed), str(threads), json.dumps(params)],
                         capture_output=True, text=True, check=True, cwd=root, env=env)
    secs, digest = out.stdout.strip().splitlines()[-1].split()
    return float(secs), digest


def _busy_loops(n: int) -> list[subprocess.Popen]:
    """`n` processes that each keep one core busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _checkouts(revs: list[str], tmp: str):
    """Yield a worktree per git rev ('.' = this checkout, None), one at a time, so the caller can
    remove those already made if a later one fails."""
    for i, rev in enumerate(revs):
        if rev == ".":
            yield None
            continue
        path = str(Path(tmp) / f"rev{i}")
        subprocess.run(["git", "worktree", "add", "-q", "--detach", path, rev], check=True)
        yield path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default='[{"trial_eps": 0}, {}]', help="JSON list of balanced parameter dicts")
    ap.add_argument("--revs", default=None, help="comma-separated git revs ('.' = this checkout), defaults each")
    ap.add_argument("--envs", default=None, help='JSON list of environment variables to add, one variant each (defaults)')
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes to run meanwhile (a busy machine on purpose)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    revs = args.revs.split(",") if args.revs else None
    envs = json.loads(args.envs) if args.envs else None
    if revs and envs:
        ap.error("give --revs or --envs, not both")
    variants = [{}] * len(revs or envs) if revs or envs else json.loads(args.variants)
    envs = envs or [{}] * len(variants)
    lines = ["# balanced: interleaved build seconds, one build per fresh process", ""]
    lines += probe_header("results/trees/interleaved_ab.py", sys.argv[1:])
    lines += [f"- data: synthetic clustered embeddings (d = 64), k = 16, seed {args.seed}; {args.threads} threads"
              + (f"; {args.load} busy-looping processes running meanwhile (`--load`)" if args.load else "")]
    header_end = len(lines)
    lines += [""]
    what = "code" if revs else "environment" if args.envs else "params"
    info: dict = {}
    load, loops = MachineLoad(), _busy_loops(args.load)
    lines += [f"| items | {what} | median s | best s | every round (s) | tree hash |", "|---:|---|---:|---:|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        roots: list[str | None] = []
        try:
            roots.extend(_checkouts(revs, tmp) if revs else [None] * len(variants))
            for n in (int(v) for v in args.sizes.split(",")):
                times: list[list[float]] = [[] for _ in variants]
                digests: list[set[str]] = [set() for _ in variants]
                for _ in range(args.rounds):
                    for i, (params, root) in enumerate(zip(variants, roots)):
                        secs, digest = _seconds(n, args.seed, args.threads, params, root, envs[i])
                        times[i].append(secs)
                        digests[i].add(digest)
                for i, ts in enumerate(times):
                    label = f"`{revs[i]}`" if revs else f"`{json.dumps(envs[i] if args.envs else variants[i])}`"
                    row = (f"| {n:,} | {label} | {np.median(ts):.3f} | {min(ts):.3f} | {' '.join(f'{t:.2f}' for t in ts)} "
                           f"| {', '.join(sorted(digests[i]))} |")
                    print(row, flush=True)
                    lines.append(row)
            record_load(info, load)  # before the loops are reaped: a reaped child's CPU time counts as ours
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
            for root in roots:
                if root:
                    subprocess.run(["git", "worktree", "remove", "--force", root], check=False)
    if info["machine_load"]:
        lines.insert(header_end, f"- other work on the machine: {load_text(info['machine_load'])}")
    write_markdown(lines, args.out)


if __name__ == "__main__":
    main()
