"""`seater.dropout`: the CPU mask has dropout's distribution, scaling and gradient."""

import pytest
import torch

from seater.dropout import Dropout, cpu_dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_drop_rate_scale_and_independence(p):
    torch.manual_seed(0)
    n = 1 << 20
    y = cpu_dropout(torch.ones(n), p)
    dropped = y == 0
    assert torch.unique(y).tolist() == [0.0, pytest.approx(1 / (1 - p))]
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 5 * sd
    # every 16-bit slice position of the 64-bit words is unbiased (random_() without bounds
    # leaves the top bit 0: the fourth slice would never be dropped)
    for pos in range(4):
        assert abs(dropped[pos::4].float().mean().item() - p) < 5 * sd * 2
    # neighbours are independent: both dropped with probability p^2
    both = (dropped[0::2] & dropped[1::2]).float().mean().item()
    assert abs(both - p * p) < 5 * (p * p / (n / 2)) ** 0.5


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    x = torch.randn(7, 33, requires_grad=True)
    y = cpu_dropout(x, 0.2)
    y.sum().backward()
    keep = y.detach() != 0
    assert torch.equal(x.grad, keep.float() * (1 / 0.8))
    assert torch.allclose(y[keep], x.detach()[keep] / 0.8)


def test_module_is_seeded_and_off_in_eval():
    m = Dropout(0.3)
    x = torch.randn(5, 64)
    torch.manual_seed(3)
    a = m(x)
    torch.manual_seed(3)
    assert torch.equal(a, m(x)) and not torch.equal(a, x)
    m.eval()
    assert torch.equal(m(x), x)
    assert torch.equal(cpu_dropout(x, 0.0), x) and torch.equal(cpu_dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(Dropout(1.0)(x), torch.zeros_like(x))
