"""`SEATERConfig`: every hyperparameter of the SEATER network and its losses, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from seater.errors import ConfigError


@dataclass
class SEATERConfig:
    n_items: int  # items 1..n_items; item token id == item id == encoder input id
    n_tokens: int  # tree.n_tokens: padding + items + internal nodes (one shared table)
    depth: int  # tree.depth: longest identifier (codes); the decoder reads depth positions
    max_history: int = 20  # encoder positions (histories are left-padded to this length)
    d_model: int = 64  # SEATER paper
    n_heads: int = 2  # SEATER paper
    d_ff: int = 256  # feed-forward width (SEATER paper)
    dropout: float = 0.2  # SEATER paper
    enc_layers: int = 1  # SEATER paper: 1 encoder layer
    dec_layers: int = 1  # SEATER paper: 1 decoder layer
    lambda_align: float = 0.05  # weight of the alignment (parent-child InfoNCE) loss; DESIGN.md
    lambda_rank: float = 0.05  # weight of the ranking loss; DESIGN.md
    tau: float = 0.2  # alignment temperature (0.2 Books, 0.3 Yelp in the paper)
    q: int = 4  # negative identifiers per target in the ranking loss, distinct shared-prefix lengths
    beta: float = 0.001  # ranking margin per unit of rank gap
    use_align: bool = True  # False = "w/o alignment" ablation
    use_rank: bool = True  # False = "w/o ranking" ablation
    # ranking scores pool the decoder states of the whole identifier, root .. item (DESIGN.md: the
    # identifier ends with the item, then end), so an item and its siblings score differently.
    # False: the states of positions 0 .. depth-1 only, as every SEATER result before this option: an
    # identifier of full depth loses its item token (a negative under the target's own parent then
    # scores exactly as the target, and the loss never ranks items within a leaf cluster); a shorter
    # one (unbalanced trees) keeps it
    rank_item_token: bool = False

    def __post_init__(self) -> None:
        for name in ("d_model", "n_heads", "d_ff", "enc_layers", "dec_layers", "max_history", "depth", "n_items"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SEATER {name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"SEATER dropout must lie in [0, 1), got {self.dropout}")
        if self.tau <= 0:
            raise ConfigError(f"SEATER tau must be > 0, got {self.tau}")
        if self.q < 1:
            raise ConfigError(f"SEATER q must be >= 1, got {self.q}")
        if self.lambda_align < 0 or self.lambda_rank < 0 or self.beta < 0:
            raise ConfigError("SEATER lambda_align, lambda_rank and beta must be >= 0")
