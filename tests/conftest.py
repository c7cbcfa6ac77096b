"""Shared fixtures: paths to the real datasets (slow tests skip when they are absent), one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path of a real dataset under ../shared/data; skips the test when it is not there."""
    path = SHARED_DATA / name
    if not (path / "sequences.txt").is_file():
        pytest.skip(f"real dataset {name} not found under {SHARED_DATA}")
    return path


@pytest.fixture
def beauty_path() -> Path:
    return shared_dataset("amazon-beauty")


@pytest.fixture
def sports_path() -> Path:
    return shared_dataset("amazon-sports")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one torch thread avoids OpenMP spin-waits on the small, shared CI CPU.

    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def random_seater():
    """Factory: an eval-mode SEATER over a tree with large random weights (peaked, distinct scores) and 3 histories.

    Seeded, so two calls on the same tree give the same model (the CUDA tests compare devices with it).
    """
    from seater.model import SEATER, SEATERConfig

    def make(tree):
        torch.manual_seed(0)
        cfg = SEATERConfig(n_items=tree.n_items, n_tokens=tree.n_tokens, depth=tree.depth, max_history=6)
        model = SEATER(cfg, tree).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.3)
        return model, torch.tensor([[0, 0, 0, 0, 0, 0], [0, 0, 3, 7, 1, 2], [5, 6, 7, 8, 9, 10]])

    return make


class _HostWaits(TorchDispatchMode):
    """Records the operators that make a GPU wait for the host: data-dependent output sizes
    (unique, nonzero, boolean-mask indexing) and tensor-to-Python reads."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        bool_index = name.startswith("aten.index.Tensor") and any(t is not None and t.dtype == torch.bool for t in args[1])
        if bool_index or any(s in name for s in ("nonzero", "unique", "_local_scalar_dense", "masked_select")):
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def host_waits():
    """`_HostWaits`: ``with host_waits() as waits: ...`` then ``waits.seen``."""
    return _HostWaits
