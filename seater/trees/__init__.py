"""Identifier trees and the registry of tree builders.

A builder is a function ``build(embeddings, k, seed, **params) -> Tree`` registered in
`BUILDERS` under its name with its default parameters; the tree it returns carries
``build_info`` with the builder name, parameters and seconds per level.
"""

from seater.registry import Registry
from seater.trees.tree import Tree

BUILDERS: Registry = Registry("tree builder")

__all__ = ["BUILDERS", "Tree"]

# Builders register themselves on import (engineer D appends `balanced` below).
from seater.trees import constrained, greedy, kmeans, random_tree  # noqa: E402,F401
from seater.trees import balanced  # noqa: E402,F401
