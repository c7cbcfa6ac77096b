"""The SEATER model: encoder-decoder over tree identifiers, its losses and constrained beam search."""
