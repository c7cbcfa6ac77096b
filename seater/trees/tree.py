"""`Tree`: the prefix tree of item identifiers that generative retrievers decode.

A tree is fully described by one matrix of codes: ``codes[i]`` is the identifier of item
``i + 1`` (item ids start at 1, 0 is padding), a sequence of child slots in ``[0, k)``,
right-padded with -1 when identifiers have different lengths. Internal nodes are the
distinct proper prefixes of the codes; the root is the empty prefix. Balanced k-ary trees
(SEATER), unbalanced k-means trees (DSI) and RQ-VAE semantic IDs (TIGER, k = codebook
size) all fit this one form.

Token space shared with the models::

    0                         padding
    1 .. n_items              items (leaf tokens; the same ids as in the data)
    n_items + 1 + node        internal node ``node`` (the root, node 0, is the start token)
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from seater.errors import DataError, SeaterError, TreeBuildError
from seater.trees.checks import MAX_K, read_array_file

MAX_CHILD_SLOTS = 1 << 30  # nodes x k: the children table's int64 entries (8 GiB)

PAD = 0


class Tree:
    """Prefix tree built from item codes.

    Parameters
    ----------
    codes : int array ``(n_items, depth)``
        Child slot of item ``i + 1`` at every level, right-padded with -1.
    k : int
        Branching factor: every code lies in ``[0, k)``.
    build_info : dict, optional
        What built the tree (builder name, parameters, seconds per level); saved with it.

    Attributes (all numpy int64)
    ----------------------------
    item_path : ``(n_items, depth)`` node id at each level of the item's identifier, -1 after its end.
    lengths : ``(n_items,)`` identifier length of each item (number of codes).
    parent : ``(n_nodes,)`` parent node of each internal node, -1 for the root.
    node_level : ``(n_nodes,)`` depth of each node (root = 0).
    node_size : ``(n_nodes,)`` number of items below each node.
    children : ``(n_nodes, k)`` token of the child in each slot, -1 where the slot is empty.
    """

    def __init__(self, codes: np.ndarray, k: int, build_info: dict[str, Any] | None = None):
        try:
            codes = np.asarray(codes)
        except ValueError as e:  # ragged rows
            raise TreeBuildError(f"codes must be a 2-D array (n_items, depth) ({e})") from None
        if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
            raise TreeBuildError(f"codes must be a non-empty 2-D array (n_items, depth), got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise TreeBuildError(f"codes must be integers, got {codes.dtype}")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= MAX_K:
            raise TreeBuildError(f"branching factor k must be an integer in 2..{MAX_K:,}, got {k!r}")
        codes = codes.astype(np.int64, copy=True)  # its own copy: the caller's array may change later
        if codes.min() < -1 or codes.max() >= k:
            raise TreeBuildError(f"codes must lie in [0, {k}) with -1 as padding")
        valid = codes >= 0
        lengths = valid.sum(axis=1)
        if (lengths == 0).any():
            raise TreeBuildError(f"item {int(np.argmin(lengths)) + 1} has an empty identifier")
        # padding only at the end of a row
        if (valid != (np.arange(codes.shape[1])[None, :] < lengths[:, None])).any():
            raise TreeBuildError("codes may hold -1 padding only after the last code of a row")

        # a trailing column of padding only carries no level: drop it
        codes = codes[:, : int(lengths.max())]
        self.codes = codes
        self.k = int(k)
        self.build_info: dict[str, Any] = dict(build_info or {})
        self.lengths = lengths.astype(np.int64)
        self._index()

    # ------------------------------------------------------------------ construction
    def _index(self) -> None:
        n, depth = self.codes.shape
        item_path = np.full((n, depth), -1, dtype=np.int64)
        parents: list[np.ndarray] = []
        levels: list[np.ndarray] = []
        offset = 0
        for level in range(depth):
            rows = np.flatnonzero(self.lengths > level)
            if level == 0:
                inverse = np.zeros(len(rows), dtype=np.int64)
                n_level = 1
            else:
                # a node is its parent plus one slot: one int64 key, sorted like the code prefixes
                key = item_path[rows, level - 1] * self.k + self.codes[rows, level - 1]
                _, inverse = np.unique(key, return_inverse=True)
                inverse = inverse.reshape(-1)
                n_level = int(inverse.max()) + 1
            item_path[rows, level] = offset + inverse
            par = np.full(n_level, -1, dtype=np.int64)
            if level > 0:
                par[inverse] = item_path[rows, level - 1]
            parents.append(par)
            levels.append(np.full(n_level, level, dtype=np.int64))
            offset += n_level
        self.item_path = item_path
        self.parent = np.concatenate(parents)
        self.node_level = np.concatenate(levels)
        self.n_nodes = offset
        self.node_size = np.bincount(item_path[item_path >= 0], minlength=self.n_nodes).astype(np.int64)

        if self.n_nodes * self.k > MAX_CHILD_SLOTS:
            raise TreeBuildError(f"{self.n_nodes:,} nodes with k = {self.k:,} would need a {self.n_nodes * self.k * 8 / 2**30:.0f} GiB "
                                 "table of children; use a smaller k")
        children = np.full((self.n_nodes, self.k), -1, dtype=np.int64)
        clash = -1  # smallest node * k + slot that two different children claim
        items = np.arange(1, n + 1, dtype=np.int64)
        for level in range(depth):
            rows = np.flatnonzero(self.lengths > level)
            node = item_path[rows, level]
            slot = self.codes[rows, level]
            is_leaf = self.lengths[rows] == level + 1
            child = np.where(
                is_leaf,
                items[rows],
                self.n_items + 1 + np.where(is_leaf, 0, item_path[rows, min(level + 1, depth - 1)]),
            )
            children[node, slot] = child
            # one of the written values sticks per (node, slot); a row whose child did not stick
            # shares its (node, slot) with a different child (O(n); counting distinct triples
            # with np.unique took half of a 1M-item tree's construction)
            lost = children[node, slot] != child
            if lost.any():
                first = int((node[lost] * self.k + slot[lost]).min())
                clash = first if clash < 0 else min(clash, first)
        if clash >= 0:
            node, slot = divmod(clash, self.k)
            raise TreeBuildError(
                f"identifiers collide at node {node}, slot {slot}: two items share a code or one item's "
                "code is a prefix of another's (add a disambiguating level)"
            )
        self.children = children

    # ------------------------------------------------------------------ properties
    @property
    def n_items(self) -> int:
        return int(self.codes.shape[0])

    @property
    def depth(self) -> int:
        """Longest identifier length (number of codes)."""
        return int(self.lengths.max())

    @property
    def n_tokens(self) -> int:
        """Size of the token table: padding + items + internal nodes."""
        return self.n_items + 1 + self.n_nodes

    @property
    def root_token(self) -> int:
        return self.n_items + 1

    def node_token(self, node: np.ndarray | int) -> np.ndarray | int:
        return np.asarray(node) + self.n_items + 1 if not isinstance(node, int) else node + self.n_items + 1

    def token_node(self, token: np.ndarray) -> np.ndarray:
        """Node id of internal-node tokens (-1 for items and padding)."""
        token = np.asarray(token)
        return np.where(token > self.n_items, token - self.n_items - 1, -1)

    # ------------------------------------------------------------------ model helpers
    def item_tokens(self) -> np.ndarray:
        """Token sequence of every item's identifier: root, internal nodes, then the item.

        Returns int64 ``(n_items + 1, depth + 1)``; row ``i`` is item ``i`` (row 0, padding,
        is all 0), right-padded with 0. A decoder reads ``row[:-1]`` and predicts ``row[1:]``.
        """
        n, depth = self.codes.shape
        out = np.zeros((n + 1, depth + 1), dtype=np.int64)
        path_tok = np.where(self.item_path >= 0, self.item_path + self.n_items + 1, 0)
        out[1:, :depth] = path_tok
        out[1 + np.arange(n), self.lengths] = np.arange(1, n + 1)
        return out

    def next_token_table(self) -> np.ndarray:
        """Allowed next tokens per token, for constrained decoding.

        Returns int64 ``(n_tokens, k)``: row ``t`` lists the tokens that may follow token ``t``
        (-1 = not allowed). Rows of items and padding are all -1 (an item ends an identifier).
        """
        table = np.full((self.n_tokens, self.k), -1, dtype=np.int64)
        table[self.n_items + 1 :] = self.children
        return table

    def build_seconds(self) -> float:
        """Seconds the build took: the harness's wall clock (``wall_seconds``) when it recorded one,
        else the builder's own ``seconds``, else nan."""
        seconds = self.build_info.get("wall_seconds", self.build_info.get("seconds"))
        try:
            return float(seconds)
        except (TypeError, ValueError):  # not recorded, or a tree file edited by hand
            return float("nan")

    def items_under(self, node: int) -> np.ndarray:
        """Item ids (1-based) below `node`."""
        level = int(self.node_level[node])
        return np.flatnonzero(self.item_path[:, level] == node) + 1

    def hash(self) -> str:
        """Content hash of the identifiers, for lineage and caching."""
        h = hashlib.sha1(self.codes.tobytes())
        h.update(str((self.codes.shape, self.k)).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ checks
    def balance_violations(self, limit: int = 5) -> list[str]:
        """Describe up to `limit` splits whose child sizes are not floor(n/k) or floor(n/k)+1."""
        bad: list[str] = []
        is_node = self.children > self.n_items
        child_size = np.where(is_node, self.node_size[np.where(is_node, self.children - self.n_items - 1, 0)], 1)
        child_size = np.where(self.children < 0, -1, child_size)
        for node in range(self.n_nodes):
            n = int(self.node_size[node])
            sizes = child_size[node][child_size[node] >= 0]
            q = n // self.k
            if len(sizes) != min(n, self.k) or not np.isin(sizes, (q, q + 1)).all():
                bad.append(f"node {node} (level {self.node_level[node]}, {n} items) has child sizes {sorted(sizes.tolist())}")
            elif n <= self.k and is_node[node].any():  # its items fit as its children: a deeper level is waste
                bad.append(f"node {node} (level {self.node_level[node]}, {n} items) holds a node, not only its {n} items")
            if len(bad) >= limit:
                break
        return bad

    def is_balanced(self) -> bool:
        return not self.balance_violations(limit=1)

    def validate(self, balanced: bool = True) -> "Tree":
        """Raise `TreeBuildError` unless the tree is well formed (and balanced, if asked).

        Well formed: every item appears exactly once (one identifier per row, no two equal, none
        a prefix of another: checked at construction), node ids unique and consistent with parents.
        Balanced: at every node with n items the child sizes are floor(n/k) or floor(n/k)+1,
        so leaves hold at most k items, and a node of at most k items has its items as children
        (no needless level).
        """
        sizes = np.bincount(self.item_path[self.item_path >= 0], minlength=self.n_nodes)
        if self.node_size[0] != self.n_items or (sizes != self.node_size).any():
            raise TreeBuildError("node sizes are inconsistent with the item paths")
        for level in range(1, self.depth):
            rows = self.lengths > level
            if (self.parent[self.item_path[rows, level]] != self.item_path[rows, level - 1]).any():
                raise TreeBuildError(f"parent table disagrees with item paths at level {level}")
        if balanced:
            bad = self.balance_violations()
            if bad:
                raise TreeBuildError("tree is not balanced: " + "; ".join(bad))
        return self

    # ------------------------------------------------------------------ io
    def save(self, path: str | Path) -> Path:
        """Write the tree to `path` (any name); an existing file is replaced only once the new one is whole."""
        path = Path(path)
        info = json.dumps(self.build_info, default=_json_value)  # before the file is touched: a failure leaves it be
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:  # np.savez would append .npz to names without it
                np.savez_compressed(fh, codes=self.codes, k=np.int64(self.k), build_info=np.array(info))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Tree":
        path = Path(path)
        with read_array_file(path, "tree", archive=True) as z:
            try:
                codes, k, info = z["codes"], z["k"], json.loads(str(z["build_info"]))
            except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
                raise DataError(f"{path}: not a tree file saved by Tree.save ({e})") from None
        if k.shape != () or k.dtype.kind not in "iu":
            raise DataError(f"{path}: not a tree file saved by Tree.save (k must be one integer, got {k!r})")
        if not isinstance(info, dict):
            raise DataError(f"{path}: not a tree file saved by Tree.save (build_info must be a JSON object)")
        try:
            return cls(codes, int(k), info)
        except SeaterError as e:  # e.g. k = 1 or colliding codes: say which file holds them
            raise DataError(f"{path}: invalid tree: {e}") from None

    def __repr__(self) -> str:
        return f"Tree(n_items={self.n_items}, k={self.k}, depth={self.depth}, n_nodes={self.n_nodes})"


def _json_value(value: Any) -> Any:
    """numpy values in build_info (a parameter given as np.int64) as JSON; anything else stays an error."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"build_info holds {type(value).__name__}, which JSON cannot store")
