"""The CUDA paths give the CPU paths' answers (skipped without a GPU; `bench/gpu_checks.sh` runs them on one).

CI has no GPU, so these are the only checks of the device code: the balanced builder and the exact
assignment (certificate), SEATER's beam search and exact scoring, mixed-precision training of
SEATER and the dual encoders, exact top-K. Each compares against the CPU result or an independent
reference, never against a recorded number.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.popular import MostPopular
from baselines.sasrec import SASRec
from bench.speed.retrieval import balanced_random_tree
from seater.data.splits import leave_one_out
from seater.data.synthetic import make_synthetic, synthetic_embeddings
from seater.evaluation import evaluate_retriever
from seater.model import SEATER, SEATERConfig
from seater.model.retriever import SEATERRetriever
from seater.topk import topk_inner_product
from seater.trees.assignment import balanced_assignment, is_optimal
from seater.trees.balanced import build as build_balanced
from seater.trees.quality import tree_quality

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_exact_assignment_on_cuda_is_certified_and_equals_cpu():
    rng = np.random.default_rng(0)
    for n, k in ((1000, 16), (997, 7), (5000, 2)):
        cost = rng.normal(size=(n, k)) ** 2
        gpu = balanced_assignment(torch.as_tensor(cost, device="cuda"))
        cpu = balanced_assignment(cost)
        assert is_optimal(cost, gpu)
        total = lambda lab: cost[np.arange(n), lab].sum()
        assert abs(total(gpu) - total(cpu)) <= 1e-9 * abs(total(cpu))


@pytest.mark.parametrize("n", [1, 15, 17, 5000])
def test_balanced_tree_on_cuda_is_balanced_and_costs_what_the_cpu_tree_costs(n):
    x = synthetic_embeddings(n, 32, seed=1) if n > 1 else np.zeros((1, 32), np.float32)
    gpu = build_balanced(x, 16, seed=0, device="cuda")
    gpu.validate()
    if n >= 1000:
        cpu = build_balanced(x, 16, seed=0, device="cpu")
        ratio = tree_quality(gpu, x)["total_cost"] / tree_quality(cpu, x)["total_cost"]
        assert 0.99 <= ratio <= 1.01, ratio  # different random streams, same method


def test_balanced_tree_on_cuda_with_identical_points():
    build_balanced(np.ones((3000, 8), np.float32), 16, seed=0, device="cuda").validate()


def test_balanced_tree_on_cuda_with_a_far_group_and_extreme_scale():
    """The float64-cost levels (a far group, k = 20) and the power-of-two rescaling (1e18) on the device."""
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(size=(485, 4)), 1e4 + rng.normal(size=(15, 4))]).astype(np.float32)
    tree = build_balanced(x, 20, seed=0, device="cuda").validate(balanced=True)
    for hist in tree.build_info["level_objective"]:
        assert all(b <= a * (1 + 1e-9) for a, b in zip(hist, hist[1:]))
    build_balanced(x * np.float32(1e14), 16, seed=0, device="cuda").validate(balanced=True)


def test_bisection_seeds_on_cuda_recover_duplicated_points():
    """Each of k distinct points repeated equally often: the seeds are exactly those points (as on CPU)."""
    from seater.trees.bisection import bisection_seeds

    pts = torch.randn((2, 5, 6), generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 10
    xl = pts.repeat_interleave(9, dim=1).cuda()
    mask = torch.ones(xl.shape[:2], dtype=torch.bool, device="cuda")
    seeds = bisection_seeds(xl, mask, 5, torch.Generator(device="cuda").manual_seed(0)).cpu()
    for g in range(2):
        dist = ((seeds[g][:, None, :] - pts[g][None]) ** 2).sum(-1)
        assert torch.allclose(dist.min(1).values, torch.zeros(5, dtype=torch.float64), atol=1e-9)
        assert sorted(dist.argmin(1).tolist()) == list(range(5))


def test_seater_beam_search_on_cuda_is_exact_and_matches_cpu(random_seater):
    tree = balanced_random_tree(40, 3, seed=2)
    cpu_model, cpu_hist = random_seater(tree)
    model, hist = random_seater(tree)
    model, hist = model.to("cuda"), hist.to("cuda")
    items, scores = model.recommend(hist, beam_size=tree.n_items, topk=tree.n_items)
    exact = model.catalog_log_prob(hist)  # (3, N) on the GPU
    assert torch.equal(items, exact.argsort(1, descending=True) + 1)
    torch.testing.assert_close(exact.cpu(), cpu_model.catalog_log_prob(cpu_hist), rtol=1e-4, atol=1e-4)
    items10, _ = model.recommend(hist, beam_size=10, topk=10)
    assert all(len(set(row)) == 10 and min(row) >= 1 for row in items10.tolist())


@pytest.fixture(scope="module")
def split():
    return leave_one_out(make_synthetic(n_users=400, n_items=200, seed=0))


def test_seater_trains_with_mixed_precision_on_cuda(split):
    tree = balanced_random_tree(split.n_items, 4, seed=0)
    r = SEATERRetriever(device="cuda", seed=0, epochs=2, batch_size=128, lr=3e-3, beam_size=20, val_users=50)
    r.fit(split, tree)
    assert r.fit_info_["epochs"] == 2 and all(np.isfinite(h["train/loss"]) for h in r.train_result_.history)
    pred = r.recommend(split.test.histories[:50], 10)
    assert ((pred >= 1) & (pred <= split.n_items)).all()


def test_a_seater_training_step_on_cuda_never_waits_for_the_host(host_waits):
    """All three losses, forward and backward, with no data-dependent size or host read (on CPU the
    alignment loss's torch.unique is the one left: tests/model/test_seater_losses.py)."""
    tree = balanced_random_tree(300, 4, seed=0)
    model = SEATER(SEATERConfig(n_items=300, n_tokens=tree.n_tokens, depth=tree.depth, d_model=16, d_ff=32), tree).cuda().train()
    g = torch.Generator().manual_seed(0)
    hist, target = torch.randint(0, 301, (32, 20), generator=g).cuda(), torch.randint(1, 301, (32,), generator=g).cuda()
    with host_waits() as waits:
        model.loss(hist, target)["loss"].backward()
    assert waits.seen == []


def test_sasrec_learns_on_cuda_and_its_top_k_is_exact(split):
    model = SASRec(dim=32, epochs=8, patience=8, lr=5e-3, batch_size=64, device="cuda", seed=0).fit(split)
    recall = evaluate_retriever(model, split.test, ks=(10,)).metrics["recall@10"]
    pop = evaluate_retriever(MostPopular().fit(split), split.test, ks=(10,)).metrics["recall@10"]
    assert recall > 2 * pop, (recall, pop)
    q = torch.randn(64, 32, device="cuda")
    items = torch.randn(1000, 32, device="cuda")
    _, got = topk_inner_product(q, items, 10, chunk=300)
    ref = (q.cpu() @ items.cpu().T).topk(10).indices + 1
    assert torch.equal(got.cpu().sort(1).values, ref.sort(1).values)
