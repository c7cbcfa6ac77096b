"""GRU4Rec (Hidasi et al., 2016), in its modern all-position form: a GRU over the history.

The GRU's state after the most recent item is the user vector, scored against the tied item
table. Trained on every position with full softmax CE by default (as in the GRU4Rec
re-implementations benchmarked by S3-Rec and TIGER), or sampled softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines.dual_encoder import DualEncoder, DualEncoderConfig, Encoder, registered_defaults
from seater.dropout import Dropout
from seater.retriever import RETRIEVERS


@dataclass
class GRU4RecConfig(DualEncoderConfig):
    n_layers: int = 1  # stacked GRU layers


class GRU4RecEncoder(Encoder):
    def __init__(self, n_items: int, cfg: GRU4RecConfig):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, cfg.dim, padding_idx=0)
        self.drop = Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, cfg.dim, num_layers=cfg.n_layers, batch_first=True, dropout=cfg.dropout if cfg.n_layers > 1 else 0.0)
        self.out = nn.Linear(cfg.dim, cfg.dim)  # maps GRU states into the item-embedding space
        nn.init.normal_(self.item_emb.weight, std=cfg.dim**-0.5)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        # left padding: the GRU reads zero vectors first, so its state at a real item depends
        # only on the items up to it (causal by construction)
        x = self.drop(self.item_emb(seq))  # (B, L, d)
        h, _ = self.gru(x)  # (B, L, d)
        return self.out(self.drop(h))


@RETRIEVERS.register("gru4rec", defaults=registered_defaults(GRU4RecConfig), added=("lr_schedule", "ema"))
class GRU4Rec(DualEncoder):
    """GRU4Rec: recurrent dual encoder (full-softmax CE by default)."""

    name = "gru4rec"
    config_cls = GRU4RecConfig
    trim_padding = False  # the GRU's state depends on how much padding precedes the items

    def build_encoder(self, n_items: int) -> GRU4RecEncoder:
        return GRU4RecEncoder(n_items, self.cfg)
