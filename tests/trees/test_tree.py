"""Tree structure: indexing, token helpers, balance checks and the npz round trip."""

import numpy as np
import pytest

from seater.errors import DataError, TreeBuildError
from seater.trees.tree import Tree


def test_small_tree_tables():
    # items 1..5: 1,2 under node a; 3,4 under node b; 5 directly under the root
    t = Tree(np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, -1]]), k=3)
    assert (t.n_nodes, t.depth, t.n_tokens) == (3, 2, 9)
    assert t.parent.tolist() == [-1, 0, 0]
    assert t.node_size.tolist() == [5, 2, 2]
    root, a, b = 6, 7, 8
    assert t.children.tolist() == [[a, b, 5], [1, 2, -1], [3, 4, -1]]
    assert t.item_tokens()[1:].tolist() == [[root, a, 1], [root, a, 2], [root, b, 3], [root, b, 4], [root, 5, 0]]
    nxt = t.next_token_table()
    assert nxt[root].tolist() == [a, b, 5] and (nxt[1:6] == -1).all()
    assert t.items_under(1).tolist() == [1, 2]
    assert t.is_balanced()  # 5 items, k = 3: child sizes 2, 2, 1


def test_unbalanced_tree_is_reported():
    t = Tree(np.array([[0, 0], [0, 1], [0, 2], [1, -1]]), k=3)
    assert not t.is_balanced()
    with pytest.raises(TreeBuildError, match="not balanced"):
        t.validate()
    t.validate(balanced=False)


@pytest.mark.parametrize(
    "codes, msg",
    [
        ([[0, 0], [0, 0]], "collide"),  # duplicate identifiers
        ([[0, 0], [0, -1]], "collide"),  # one identifier is a prefix of another
        ([[0, 5]], r"\[0, 2\)"),  # code out of range
        ([[-1, 0]], "padding only after"),
    ],
)
def test_bad_codes(codes, msg):
    with pytest.raises(TreeBuildError, match=msg):
        Tree(np.array(codes), k=2)


def test_collision_message_names_the_first_clashing_slot():
    # node 1 = prefix (0,), node 2 = prefix (1,); clashes at (node 2, slot 1) listed first, (node 1, slot 0) later,
    # and a prefix clash at the root level in a second tree
    with pytest.raises(TreeBuildError, match="node 1, slot 0"):
        Tree(np.array([[1, 1], [1, 1], [0, 1], [0, 0], [0, 0]]), k=2)
    with pytest.raises(TreeBuildError, match="node 0, slot 1"):
        Tree(np.array([[0, 0], [1, -1], [1, 0]]), k=2)


def test_a_needless_level_is_not_balanced():
    """Two items under the root of a k = 2 tree, each in a node of its own: sizes 1 / 1 passed, but the
    items fit as the root's children (depth 1), as every builder makes them."""
    deep = Tree(np.array([[0, 0], [1, 0]]), k=2)
    assert not deep.is_balanced() and "holds a node" in deep.balance_violations()[0]
    deep.validate(balanced=False)
    Tree(np.array([[0], [1]]), k=2).validate()
    Tree(np.array([[0, 0], [0, 1], [1, 0]]), k=2).validate()  # 3 items: the size-1 group is a node, as builders make it


def test_save_load_roundtrip(tmp_path):
    t = Tree(np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, -1], [1, 1, 0], [1, 1, 1]]), k=2,
             build_info={"builder": "manual"})
    t.validate()
    back = Tree.load(t.save(tmp_path / "tree.npz"))
    assert back.hash() == t.hash() and back.build_info == {"builder": "manual"}
    with pytest.raises(DataError, match="not found"):
        Tree.load(tmp_path / "missing.npz")


def test_save_takes_numpy_values_and_never_leaves_a_broken_file(tmp_path):
    """A parameter given as np.int64 (checks accept them) broke json.dumps after the file was opened:
    the existing tree at that path was left at 0 bytes. The tree also keeps its own copy of the codes."""
    codes = np.array([[0, 0], [0, 1], [1, 0]])
    path = Tree(codes, 2, {"max_items": 7}).save(tmp_path / "t.npz")
    t = Tree(codes, 2, {"max_items": np.int64(9), "limit": np.float32(1.5), "sizes": np.arange(2)})
    assert Tree.load(t.save(path)).build_info == {"max_items": 9, "limit": 1.5, "sizes": [0, 1]}
    with pytest.raises(TypeError, match="JSON cannot store"):
        Tree(codes, 2, {"bad": object()}).save(path)
    assert Tree.load(path).build_info["max_items"] == 9 and [p.name for p in tmp_path.iterdir()] == ["t.npz"]
    codes[0, 1] = 1  # the caller's array changes later
    assert t.codes[0, 1] == 0


def test_trailing_padding_column_is_dropped():
    t = Tree(np.array([[0, -1, -1], [1, 0, -1], [1, 1, -1]]), k=2)
    assert t.codes.shape == (3, 2) and t.depth == 2 and t.n_nodes == 2


def test_build_seconds_prefers_the_harness_wall_clock():
    codes = np.array([[0], [1]])
    assert Tree(codes, 2, {"seconds": 2.0, "wall_seconds": 3.0}).build_seconds() == 3.0
    assert Tree(codes, 2, {"seconds": 2.0}).build_seconds() == 2.0
    assert np.isnan(Tree(codes, 2).build_seconds())


@pytest.mark.parametrize("codes,k,match", [
    ([[0, 1], [1]], 4, "codes must be a 2-D array"),  # ragged rows
    ([[0], [1]], "4", "k must be an integer in 2..65,536, got '4'"),
    ([[0], [1]], 2.0, "k must be an integer in 2..65,536, got 2.0"),
    ([[0], [1]], True, "k must be an integer in 2..65,536"),
])
def test_bad_codes_or_k_are_one_clear_error(codes, k, match):
    with pytest.raises(TreeBuildError, match=match):
        Tree(codes, k)


def test_balance_violations_stop_at_the_limit():
    """Wrong child sizes were all listed whatever the limit (only the "holds a node" case stopped), so
    is_balanced() on a large unbalanced tree formatted a message per node."""
    codes = [[c, 0, j] for c in range(3) for j in range(3)] + [[c, 1, -1] for c in range(3)]
    tree = Tree(np.array(codes), k=3)  # every level-1 node splits its 4 items 3 / 1
    assert len(tree.balance_violations(limit=10)) == 3
    assert len(tree.balance_violations(limit=2)) == 2 and not tree.is_balanced()
