"""Which device to run on, and which device a model is on: the one place that decides both."""

from __future__ import annotations

import torch

from imf.errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``None`` → cuda if available, else cpu. Raises ConfigError for an unknown or unavailable device."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; expected cpu, cuda, cuda:N or mps") from None
    if device.type not in DEVICE_TYPES:
        raise ConfigError(f"unsupported device {name!r}; expected cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but this PyTorch sees no CUDA GPU (use --device cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} asked for, but MPS is not available here (use --device cpu)")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (cpu for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
