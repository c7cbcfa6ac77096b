"""Device choice shared by every model: `auto` picks CUDA when present, else CPU."""

from __future__ import annotations

import re

from seater.errors import ConfigError

DEVICE_NAMES = "auto, cpu, cuda or cuda:N"
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device_name(device: str) -> str:
    """`device` if it is one of auto / cpu / cuda / cuda:N (checked without torch, for config files)."""
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise ConfigError(f"device must be {DEVICE_NAMES}, got {device!r}")
    return device


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(check_device_name(str(device)))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available here: ask for device 'cpu' or 'auto' instead")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev
