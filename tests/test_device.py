"""Device names: one clear error for a name torch would reject or a GPU that is not there."""

from __future__ import annotations

import pytest
import torch

from seater.device import check_device_name, resolve_device
from seater.errors import ConfigError


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_known_device_names(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "", "CPU", "cuda:", "cpu:0", 3])
def test_other_device_names_are_one_clear_error(name):
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        check_device_name(name)
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        resolve_device(name)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(None) == resolve_device("auto")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")
    else:
        with pytest.raises(ConfigError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
