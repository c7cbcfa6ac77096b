"""CPU cost of the alignment loss on the distinct batch tokens (CPU path) vs every token (GPU path).

    python results/seater/alignment_tokens_ab.py

A Beauty-sized balanced random tree (12,101 items, k = 16), a batch of 256 targets, one torch
thread; median CPU time of 30 forward + backward passes each, and the two losses (equal).
"""

from __future__ import annotations

import time

import torch

from bench.speed.retrieval import balanced_random_tree
from seater.model import SEATER, SEATERConfig
from seater.model.losses import alignment_loss


def main() -> None:
    torch.set_num_threads(1)
    tree = balanced_random_tree(12101, 16, seed=0)
    model = SEATER(SEATERConfig(n_items=12101, n_tokens=tree.n_tokens, depth=tree.depth), tree)
    seq = model.item_tokens[torch.randint(1, 12102, (256,), generator=torch.Generator().manual_seed(0))]
    emb = model.tok_emb.weight
    for name, tokens in (("distinct (torch.unique, CPU)", lambda: torch.unique(seq)), ("every token, sorted (GPU)", lambda: seq.flatten().sort().values)):
        times = []
        for _ in range(30):
            t = time.process_time()
            tok = tokens()
            loss = alignment_loss(emb, tok, model.parent_token, 0.2)
            loss.backward()
            times.append(time.process_time() - t)
        print(f"{name}: {tok.numel()} tokens, {1000 * sorted(times)[len(times) // 2]:.2f} ms CPU per forward + backward, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
