"""Constrained beam search: exact when the beam holds every item, valid and distinct always."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.speed.retrieval import balanced_random_tree
from seater.errors import ConfigError
from seater.model import beam_search
from seater.trees.tree import Tree


def random_unbalanced_tree(n: int, k: int, seed: int) -> Tree:
    """Random prefix tree: every node splits its items into 2..k random, unequal parts."""
    rng = np.random.default_rng(seed)
    codes: list[list[int]] = [[] for _ in range(n)]

    def split(items: np.ndarray) -> None:
        if len(items) == 1:
            return
        parts = int(rng.integers(2, min(k, len(items)) + 1))
        cut = np.sort(rng.choice(np.arange(1, len(items)), parts - 1, replace=False))
        for slot, part in enumerate(np.split(rng.permutation(items), cut)):
            for i in part:
                codes[i].append(slot)
            split(part)

    split(np.arange(n))
    depth = max(len(c) for c in codes)
    arr = np.full((n, depth), -1, dtype=np.int64)
    for i, c in enumerate(codes):
        arr[i, : len(c)] = c
    return Tree(arr, k)


def make_tree(kind: str, n: int, k: int, seed: int) -> Tree:
    return balanced_random_tree(n, k, seed) if kind == "balanced" else random_unbalanced_tree(n, k, seed)


def fake_step(table: torch.Tensor):
    """A 'model' whose logits depend on (user, last token): U[b, token, slot]."""

    def step(path: torch.Tensor, parent):
        B = path.shape[0]
        return table[torch.arange(B)[:, None], path[..., -1]]  # (B, W, k)

    return step


def reference_scores(tree: Tree, U: np.ndarray) -> np.ndarray:
    """Exhaustive: log-prob of every item's identifier, walking it token by token in Python."""
    nxt = tree.next_token_table()
    toks = tree.item_tokens()
    out = np.zeros((U.shape[0], tree.n_items))
    for b in range(U.shape[0]):
        for item in range(1, tree.n_items + 1):
            s = 0.0
            for t in range(tree.lengths[item - 1]):
                cur, new = toks[item, t], toks[item, t + 1]
                allowed = nxt[cur] >= 0
                logits = U[b, cur][allowed]
                lse = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
                s += U[b, cur][list(nxt[cur]).index(new)] - lse
            out[b, item - 1] = s
    return out


@pytest.mark.parametrize("kind", ["balanced", "unbalanced"])
@pytest.mark.parametrize("k", [2, 3, 8])
def test_full_beam_equals_exhaustive_ranking(kind, k):
    tree = make_tree(kind, 23, k, seed=k)
    if kind == "unbalanced":
        assert len(set(tree.lengths.tolist())) > 1  # items end at different depths
    gen = torch.Generator().manual_seed(k)
    U = torch.randn(3, tree.n_tokens, k, generator=gen) * 2
    items, scores = beam_search(fake_step(U), torch.as_tensor(tree.next_token_table()), tree.root_token, tree.n_items,
                                batch_size=3, beam_size=tree.n_items, topk=tree.n_items)
    ref = reference_scores(tree, U.numpy())
    np.testing.assert_array_equal(items.numpy(), np.argsort(-ref, axis=1, kind="stable") + 1)
    np.testing.assert_allclose(scores.numpy(), -np.sort(-ref, axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["balanced", "unbalanced"])
def test_narrow_beam_returns_valid_distinct_items_with_true_scores(kind):
    tree = make_tree(kind, 60, 3, seed=5)
    U = torch.randn(4, tree.n_tokens, 3, generator=torch.Generator().manual_seed(1))
    items, scores = beam_search(fake_step(U), torch.as_tensor(tree.next_token_table()), tree.root_token, tree.n_items,
                                batch_size=4, beam_size=7, topk=7)
    ref = reference_scores(tree, U.numpy())
    for b in range(4):
        row = items[b].numpy()
        assert ((row >= 1) & (row <= tree.n_items)).all() and len(set(row.tolist())) == 7
        np.testing.assert_allclose(scores[b].numpy(), ref[b, row - 1], rtol=1e-5, atol=1e-5)
        assert (np.diff(scores[b].numpy()) <= 1e-6).all()
        assert ref[b, row[0] - 1] <= ref[b].max() + 1e-6


def test_tiny_tree_pads_with_zero_when_fewer_items_than_topk():
    tree = Tree(np.array([[0], [1], [2]]), 3)
    U = torch.zeros(2, tree.n_tokens, 3)
    items, scores = beam_search(fake_step(U), torch.as_tensor(tree.next_token_table()), tree.root_token, 3,
                                batch_size=2, beam_size=5, topk=5)
    assert sorted(items[0, :3].tolist()) == [1, 2, 3] and items[0, 3:].tolist() == [0, 0]
    assert torch.isinf(scores[:, 3:]).all()


def test_greedy_follows_the_argmax_child_at_every_level():
    tree = balanced_random_tree(50, 4, seed=2)
    U = torch.randn(5, tree.n_tokens, 4, generator=torch.Generator().manual_seed(3))
    nxt = tree.next_token_table()
    items, _ = beam_search(fake_step(U), torch.as_tensor(nxt), tree.root_token, tree.n_items, batch_size=5,
                           beam_size=50, topk=1, mode="greedy")
    for b in range(5):
        tok = tree.root_token
        while tok > tree.n_items:
            allowed = nxt[tok] >= 0
            tok = nxt[tok][np.argmax(np.where(allowed, U[b, tok].numpy(), -np.inf))]
        assert items[b, 0].item() == tok


def test_sampling_is_seeded_valid_and_scored_exactly():
    tree = random_unbalanced_tree(40, 4, seed=9)
    U = torch.randn(3, tree.n_tokens, 4, generator=torch.Generator().manual_seed(0))
    table = torch.as_tensor(tree.next_token_table())
    run = lambda seed: beam_search(fake_step(U), table, tree.root_token, tree.n_items, batch_size=3, beam_size=6, topk=6,
                                   mode="sample", temperature=[2.0, 1.0, 0.5], generator=torch.Generator().manual_seed(seed))
    (a, sa), (b, _) = run(1), run(1)
    assert torch.equal(a, b)
    ref = reference_scores(tree, U.numpy())
    for u in range(3):
        assert len(set(a[u].tolist())) == 6 and (a[u] >= 1).all()
        np.testing.assert_allclose(sa[u].numpy(), ref[u, a[u].numpy() - 1], rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError):
        beam_search(fake_step(U), table, tree.root_token, tree.n_items, 3, 6, 6, mode="nucleus")


@pytest.mark.parametrize("kind,k", [("balanced", 3), ("unbalanced", 8)])
def test_seater_cached_decoding_matches_teacher_forcing(kind, k, random_seater):
    """SEATER's incremental (cached) beam search == exact teacher-forced scoring of every item."""
    tree = make_tree(kind, 30, k, seed=4)
    model, hist = random_seater(tree)
    items, scores = model.recommend(hist, beam_size=tree.n_items, topk=tree.n_items)
    ref = model.identifier_log_prob(hist, torch.arange(1, tree.n_items + 1).expand(3, -1))  # (3, N)
    assert torch.equal(items, ref.argsort(1, descending=True) + 1)
    torch.testing.assert_close(scores, ref.sort(1, descending=True).values, rtol=1e-4, atol=1e-4)
    # log-probabilities of all identifiers sum to one for every user
    torch.testing.assert_close(ref.exp().sum(1), torch.ones(3), rtol=1e-4, atol=1e-4)


def test_seater_math_attention_decodes_the_same_ranking(random_seater):
    """attention="math" (plain matmuls, for GPUs where fused kernels do not pay) changes the kernels, not the result."""
    tree = make_tree("balanced", 30, 3, seed=4)
    model, hist = random_seater(tree)
    ref = model.identifier_log_prob(hist, torch.arange(1, tree.n_items + 1).expand(3, -1))
    items, scores = model.recommend(hist, beam_size=tree.n_items, topk=tree.n_items, attention="math")
    assert torch.equal(items, ref.argsort(1, descending=True) + 1)
    torch.testing.assert_close(scores, ref.sort(1, descending=True).values, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="attention"):
        model.recommend(hist, beam_size=5, topk=5, attention="flash")


@pytest.mark.parametrize("kind,k", [("balanced", 2), ("balanced", 3), ("unbalanced", 8)])
def test_catalog_log_prob_equals_scoring_every_identifier(kind, k, random_seater):
    """One decoder pass per tree node gives every item's exact identifier log-probability."""
    tree = make_tree(kind, 40, k, seed=5)
    model, hist = random_seater(tree)
    ref = model.identifier_log_prob(hist, torch.arange(1, tree.n_items + 1).expand(3, -1))  # (3, N)
    for max_rows, side in ((1 << 15, 16), (7, 2), (1, 1), (100, 5)):  # one call; many calls; one prefix per row
        torch.testing.assert_close(model.catalog_log_prob(hist, max_rows, side), ref, rtol=1e-5, atol=1e-5)


def test_seater_decodes_without_dropout_even_in_training_mode(random_seater):
    """A caller that decodes mid-training (dropout 0.2 on) gets the eval-mode scores, and the model
    stays in the mode it was in; greedy decoding returns one item per user."""
    tree = make_tree("balanced", 30, 3, seed=4)
    model, hist = random_seater(tree)
    items, scores = model.recommend(hist, beam_size=8, topk=8)
    ref = model.identifier_log_prob(hist, torch.arange(1, tree.n_items + 1).expand(3, -1))
    cat = model.catalog_log_prob(hist)
    model.train()
    for _ in range(2):
        got_items, got_scores = model.recommend(hist, beam_size=8, topk=8)
        assert torch.equal(got_items, items) and torch.equal(got_scores, scores)
        assert torch.equal(model.identifier_log_prob(hist, torch.arange(1, tree.n_items + 1).expand(3, -1)), ref)
        torch.testing.assert_close(model.catalog_log_prob(hist), cat)
    assert model.training and all(m.training for m in model.modules())
    greedy, _ = model.recommend(hist, beam_size=8, topk=8, mode="greedy")
    assert greedy.shape == (3, 1) and bool((greedy > 0).all())
