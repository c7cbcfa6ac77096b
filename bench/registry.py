"""Fill the builder and retriever registries by importing every module that registers into them.

The module lists are explicit (no discovery by naming convention). A module listed here that
does not exist yet (``importlib.util.find_spec`` returns None: a builder or retriever still being
written) is skipped and reported by `missing_modules()`; a module that exists but fails to
import raises, so a broken builder never silently disappears from a grid.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from seater.registry import Registry

BUILDER_MODULES: tuple[str, ...] = (
    "seater.trees.random_tree",
    "seater.trees.kmeans",
    "seater.trees.constrained",
    "seater.trees.greedy",  # greedy and hybrid
    "seater.trees.balanced",
    "baselines.rqvae",
)

RETRIEVER_MODULES: tuple[str, ...] = (
    "baselines.popular",
    "baselines.sasrec",
    "baselines.gru4rec",
    "baselines.bert4rec",
    "seater.model.retriever",
    "baselines.tiger",
)

EXTRA_MODULES_ENV = "SEATER_BENCH_EXTRA_MODULES"  # comma-separated modules of your own (they must import)

_missing: list[str] = []
_loaded = False


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def load_all() -> tuple[Registry, Registry]:
    """Import every listed module once; return ``(BUILDERS, RETRIEVERS)``."""
    global _loaded
    if not _loaded:
        _missing.clear()
        for module in (*BUILDER_MODULES, *RETRIEVER_MODULES):
            if _exists(module):
                importlib.import_module(module)  # an import error here is a real bug: let it raise
            else:
                _missing.append(module)
        _loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(EXTRA_MODULES_ENV, "").split(","))):
        importlib.import_module(module)  # cached after the first call
    from seater.retriever import RETRIEVERS
    from seater.trees import BUILDERS

    return BUILDERS, RETRIEVERS


def missing_modules() -> list[str]:
    """Listed modules that do not exist in this checkout (after `load_all`)."""
    load_all()
    return list(_missing)


def builders() -> Registry:
    return load_all()[0]


def retrievers() -> Registry:
    return load_all()[1]


def describe() -> dict[str, list[dict[str, Any]]]:
    """Every registered builder and retriever with its defaults (what `seater-bench list` prints)."""
    b, r = load_all()
    out: dict[str, list[dict[str, Any]]] = {"builders": [], "retrievers": []}
    for e in b:
        out["builders"].append({"name": e.name, "defaults": e.defaults, "doc": e.doc})
    for e in r:
        out["retrievers"].append(
            {"name": e.name, "defaults": e.defaults, "doc": e.doc, "needs_tree": bool(getattr(e.factory, "needs_tree", False))}
        )
    return out
