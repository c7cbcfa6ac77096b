"""SEATER's losses against hand-computed / independently computed cases, and where gradients go."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.speed.retrieval import balanced_random_tree
from seater.model import SEATER, SEATERConfig
from seater.model.losses import alignment_loss, child_logits, generation_loss, ranking_loss, sample_rank_negatives
from seater.model.seater import tree_tensors
from seater.trees.tree import Tree


def test_child_logits_dot_products_and_mask():
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    states = torch.tensor([[2.0, 3.0]])
    child = torch.tensor([[3, 1, -1]])
    out = child_logits(states, child, emb)
    assert out[0, :2].tolist() == [5.0, 2.0] and math.isinf(out[0, 2].item())


def test_generation_loss_hand_case():
    # step 1: children logits [1, 2, pad], target in slot 1; step 2: [0, 0, 3], target slot 2; step 3 padding
    logits = torch.tensor([[[1.0, 2.0, float("-inf")], [0.0, 0.0, 3.0], [9.0, 9.0, 9.0]]])
    child = torch.tensor([[[5, 6, -1], [1, 2, 3], [0, 0, 0]]])
    target = torch.tensor([[6, 3, 0]])
    l1 = -(2 - math.log(math.e**1 + math.e**2))
    l2 = -(3 - math.log(2 + math.e**3))
    assert generation_loss(logits, child, target).item() == pytest.approx((l1 + l2) / 2, rel=1e-6)


def test_losses_stay_finite_where_nothing_counts():
    # a padding step whose logits are all -inf (no children), and a batch with no ranked pair
    inf = float("-inf")
    logits = torch.tensor([[[1.0, 2.0], [inf, inf]]], requires_grad=True)
    loss = generation_loss(logits, torch.tensor([[[5, 6], [-1, -1]]]), torch.tensor([[6, 0]]))
    loss.backward()
    assert loss.item() == pytest.approx(-(2 - math.log(math.e + math.e**2)), rel=1e-6)
    assert torch.isfinite(logits.grad).all() and logits.grad[0, 1].abs().sum() == 0
    empty = torch.tensor([[[0.0, 0.0]]], requires_grad=True)
    assert generation_loss(empty, torch.tensor([[[1, 2]]]), torch.tensor([[0]])).item() == 0.0
    scores = torch.tensor([[0.4, 0.6]], requires_grad=True)
    rank = ranking_loss(scores, torch.tensor([[2, 2]]), torch.tensor([[True, True]]), beta=0.1)  # equal prefixes: no pair
    rank.backward()
    assert rank.item() == 0.0 and torch.equal(scores.grad, torch.zeros_like(scores))


def test_alignment_loss_matches_explicit_loop():
    # tree: root(t=7) -> node a(t=8) {items 1,2}, node b(t=9) {items 3,4}; plus item 5,6 under c(t=10)
    tree = Tree(np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]), 3)
    assert tree.root_token == 7
    parent = tree_tensors(tree)["parent_token"]
    emb = torch.randn(tree.n_tokens, 5, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([1, 2, 3, 7, 8, 9])  # batch holds items 1,2,3 and their ancestors
    tau = 0.3
    got = alignment_loss(emb, tokens, parent, tau)
    z = F.normalize(emb, dim=-1)
    losses = []
    for a in tokens.tolist():
        p = int(parent[a])
        if p == 0:
            continue  # the root anchors nothing
        cands = [c for c in tokens.tolist() if c != a and int(parent[c]) != a]
        assert p in cands
        sims = torch.stack([z[a] @ z[c] / tau for c in cands])
        losses.append(-(sims[cands.index(p)] - torch.logsumexp(sims, 0)))
    torch.testing.assert_close(got, torch.stack(losses).mean())
    # padding among the tokens changes nothing, nor do repeats
    torch.testing.assert_close(alignment_loss(emb, torch.cat([torch.tensor([0]), tokens]), parent, tau), got)
    torch.testing.assert_close(alignment_loss(emb, tokens.repeat_interleave(torch.tensor([1, 3, 1, 2, 1, 4])), parent, tau), got)
    assert parent[1].item() == 8 and parent[8].item() == 7 and parent[7].item() == 0


def test_ranking_loss_hand_case():
    scores = torch.tensor([[0.5, 0.7, 0.2], [0.9, 0.1, 0.8]])
    shared = torch.tensor([[3, 1, 0], [3, 2, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    # row 0: (0,1) 0.7-0.5+0.1=0.3, (0,2) relu(-0.1)=0, (1,2) relu(0.2-0.7+0.1)=0 ; row 1: (0,1) relu(0.1-0.9+0.1)=0
    assert ranking_loss(scores, shared, valid, beta=0.1).item() == pytest.approx(0.3 / 4)


def test_rank_negatives_share_exactly_the_drawn_prefix():
    tree = balanced_random_tree(200, 3, seed=1)
    t = tree_tensors(tree)
    targets = torch.randint(1, 201, (64,), generator=torch.Generator().manual_seed(0))
    neg, shared, valid = sample_rank_negatives(targets, 4, t["item_path"], t["lengths"], t["node_start"], t["node_size"],
                                               t["item_pos"], t["sorted_items"], torch.Generator().manual_seed(1))
    assert neg.shape == (64, 4) and valid.all()
    codes = tree.codes
    for b in range(64):
        assert len(set(shared[b].tolist())) == 4  # distinct shared-prefix lengths
        for j in range(4):
            a, c = codes[targets[b] - 1], codes[neg[b, j] - 1]
            common = int(np.argmax(np.append(a != c, True)))
            assert common == shared[b, j].item() and neg[b, j] != targets[b]


def _model(tree, **kw):
    torch.manual_seed(0)
    return SEATER(SEATERConfig(n_items=tree.n_items, n_tokens=tree.n_tokens, depth=tree.depth, max_history=5, dropout=0.0, **kw), tree)


def test_generation_gradient_reaches_exactly_path_and_sibling_tokens():
    tree = balanced_random_tree(64, 4, seed=0)
    model = _model(tree, use_align=False, use_rank=False)
    hist = torch.tensor([[0, 0, 0, 1, 2]])
    target = torch.tensor([40])
    model.loss(hist, target)["loss"].backward()
    g = model.tok_emb.weight.grad.abs().sum(1)  # (n_tokens,)
    path = tree.item_tokens()[40]
    path = path[path > 0]
    nxt = tree.next_token_table()
    expected = set(path[:-1].tolist()) | {1, 2}  # decoder inputs and history items
    for tok in path[:-1]:
        expected |= set(nxt[tok][nxt[tok] >= 0].tolist())  # every child scored at each step
    nonzero = set(np.flatnonzero(g.numpy() > 0).tolist())
    assert nonzero == expected


def test_alignment_and_ranking_gradients():
    tree = balanced_random_tree(64, 4, seed=0)
    hist = torch.tensor([[0, 0, 0, 1, 2], [0, 3, 4, 5, 6]])
    targets = torch.tensor([40, 7])
    model = _model(tree, lambda_align=1.0)
    out = model.loss(hist, targets)
    out["align"].backward(retain_graph=True)
    g = model.tok_emb.weight.grad.abs().sum(1)
    toks = tree.item_tokens()[[40, 7]]
    assert set(np.flatnonzero(g.numpy() > 0).tolist()) == set(toks[toks > 0].tolist())  # only batch tokens
    model.zero_grad()
    out["rank"].backward()
    assert model.rank_w.grad is not None and model.rank_w.grad.abs().sum() > 0
    assert model.rank_x.weight.grad.abs().sum() > 0 and model.encoder[0].attn.q.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("whole", [False, True])
def test_ranking_tells_an_item_from_its_siblings_only_with_the_item_token(whole):
    """The identifier ends with the item (DESIGN.md). Pooling root .. parent (rank_item_token false,
    the old behaviour) scores every item under one parent alike: the pair target / sibling costs a
    constant and no gradient reaches the item tokens through the ranking loss. Pooling root .. item
    ranks them apart, and the generation loss is the same either way (causal decoder)."""
    tree = balanced_random_tree(64, 4, seed=0)
    hist = torch.zeros((64, 5), dtype=torch.long)  # empty histories: no path to item tokens through the encoder
    targets = torch.arange(1, 65)
    model = _model(tree, use_align=False, rank_item_token=whole)
    gen = torch.Generator().manual_seed(1)
    neg, shared, valid = sample_rank_negatives(targets, model.config.q, model.item_path, model.lengths, model.node_start,
                                               model.node_size, model.item_pos, model.sorted_items, gen)
    sib = valid & (shared == model.lengths[targets - 1][:, None] - 1)
    assert sib.any()
    with torch.no_grad():
        rank_in = model.item_tokens[torch.cat([targets[:, None], neg], 1)]
        rank_in = rank_in if whole else rank_in[..., :-1]
        mem, mask = model.encode(hist)
        y = model._pooled_dec(model.decode_many(mem, mask, rank_in), rank_in)
        s = torch.einsum("bd,de,bce->bc", model._pooled_enc(hist, mem), model.rank_w, y)
    gap = (s[:, 1:] - s[:, :1]).abs()[sib]
    assert (gap.min() > 1e-6) if whole else (gap.max() == 0)

    out = model.loss(hist, targets, generator=torch.Generator().manual_seed(1))
    out["rank"].backward(retain_graph=True)
    items = model.tok_emb.weight.grad[1:65].abs().sum()
    assert (items > 0) if whole else (items == 0)
    other = _model(tree, use_align=False, rank_item_token=not whole)
    torch.testing.assert_close(other.loss(hist, targets, generator=torch.Generator().manual_seed(1))["gen"], out["gen"])


def test_ablation_switches_drop_the_loss_terms():
    tree = balanced_random_tree(64, 4, seed=0)
    hist, targets = torch.tensor([[0, 0, 0, 1, 2]]), torch.tensor([40])
    assert set(_model(tree).loss(hist, targets)) == {"loss", "gen", "align", "rank"}
    only = _model(tree, use_align=False, use_rank=False).loss(hist, targets)
    assert set(only) == {"loss", "gen"} and torch.equal(only["loss"], only["gen"])


@pytest.mark.parametrize("n_items,k", [(64, 4), (50, 3)])  # 50 items, k = 3: identifiers of unequal length
def test_decode_many_equals_one_decode_per_candidate(n_items, k):
    tree = balanced_random_tree(n_items, k, seed=1)
    model = _model(tree).eval()
    hist = torch.tensor([[0, 0, 0, 1, 2], [0, 3, 4, 5, 6], [7, 8, 9, 10, 11]])
    cands = torch.tensor([[1, 5, 9, 20], [2, 2, 30, 49], [10, 11, 12, 13]])  # (B, C) items
    tokens = model.item_tokens[cands][..., :-1]  # (B, C, D)
    mem, mask = model.encode(hist)
    many = model.decode_many(mem, mask, tokens)
    for c in range(cands.shape[1]):
        one = model.decode(mem, mask, tokens[:, c])
        torch.testing.assert_close(many[:, c], one, rtol=1e-5, atol=1e-6)


def test_a_training_step_waits_for_the_host_once_on_cpu(host_waits):
    """All three losses, forward and backward: only the CPU's torch.unique of the batch's tokens has
    a data-dependent size (seven such waits before, each stalling a GPU's queue; on a GPU the
    tokens keep their repeats instead, tests/test_cuda.py)."""
    tree = balanced_random_tree(300, 4, seed=0)
    model = SEATER(SEATERConfig(n_items=300, n_tokens=tree.n_tokens, depth=tree.depth, d_model=16, d_ff=32), tree).train()
    g = torch.Generator().manual_seed(0)
    hist, target = torch.randint(0, 301, (32, 20), generator=g), torch.randint(1, 301, (32,), generator=g)
    with host_waits() as waits:
        model.loss(hist, target)["loss"].backward()
    assert waits.seen == ["aten._unique2.default"]


def test_alignment_over_all_batch_tokens_equals_the_distinct_ones_without_waiting(host_waits):
    """The GPU's input to the alignment loss (every token of the batch, sorted, repeats included)
    gives the loss and gradient of the distinct tokens, with no data-dependent size."""
    tree = balanced_random_tree(300, 4, seed=0)
    tt = tree_tensors(tree)
    emb = torch.randn(tree.n_tokens, 8, generator=torch.Generator().manual_seed(1), requires_grad=True)
    targets = torch.randint(1, 301, (64,), generator=torch.Generator().manual_seed(2))
    seq = tt["item_tokens"][targets]
    distinct = alignment_loss(emb, torch.unique(seq), tt["parent_token"], 0.2)
    (g_distinct,) = torch.autograd.grad(distinct, emb)
    with host_waits() as waits:
        every = alignment_loss(emb, seq.flatten().sort().values, tt["parent_token"], 0.2)
        (g_every,) = torch.autograd.grad(every, emb)
    assert waits.seen == []
    assert seq.numel() > torch.unique(seq).numel()  # the batch does repeat tokens
    torch.testing.assert_close(every, distinct)
    torch.testing.assert_close(g_every, g_distinct)


def test_the_loss_compiles_as_one_graph_with_the_eager_values():
    """Under torch.compile the loss is one graph with no break (the CPU's torch.unique of the batch's
    tokens was one: a size known only at run time, a recompile for each batch), as CUDA graphs and
    fused kernels need; its generation and alignment terms equal eager's (the ranking negatives are
    random: drawn by another RNG there). The "aot_eager" backend traces forward and backward like
    inductor without generating code."""
    tree = balanced_random_tree(40, 4, seed=0)
    torch.manual_seed(0)
    model = SEATER(SEATERConfig(n_items=40, n_tokens=tree.n_tokens, depth=tree.depth, max_history=5, dropout=0.0), tree).train()
    g = torch.Generator().manual_seed(0)
    hist, target = torch.randint(0, 41, (8, 5), generator=g), torch.randint(1, 41, (8,), generator=g)
    torch._dynamo.reset()  # no compiled code left from other tests (SEATER.loss's cache counts toward a recompile limit)
    explained = torch._dynamo.explain(model.loss)(hist, target)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), [b.reason for b in explained.break_reasons]
    compiled = torch.compile(model.loss, dynamic=False, backend="aot_eager")(hist, target)
    eager = model.loss(hist, target)
    for part in ("gen", "align"):
        torch.testing.assert_close(compiled[part], eager[part])
    assert torch.isfinite(compiled["rank"])
    compiled["loss"].backward()
    assert model.tok_emb.weight.grad is not None and model.tok_emb.weight.grad.abs().sum() > 0
