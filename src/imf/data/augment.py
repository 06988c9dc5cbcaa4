"""Augmentations applied identically to every frame of a pair (so motion between them stays real).

Hand-written because torchvision (which has ColorJitter) is not a dependency here; the formulas follow
torchvision's: brightness scales, contrast blends with the mean grey level, saturation blends with the
greyscale image (ITU-R 601 luma weights), clamping to [0, 1] after each step. Random numbers come
from torch's global generator, which DataLoader seeds differently in each worker, or from the generator
given (the shard stream seeds one per pair, ``imf.data.shard_pairs``); both draw the same sequence.
"""

from __future__ import annotations

import torch

_LUMA = (0.299, 0.587, 0.114)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) -> (..., 1, H, W) luma."""
    r, g, b = x.unbind(-3)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(-3)


def _factor(strength: float, generator: torch.Generator | None = None) -> float:
    """A factor drawn uniformly from [1 - strength, 1 + strength]."""
    return 1.0 + strength * (2.0 * torch.rand((), generator=generator).item() - 1.0)


def augment_pair(
    frames: torch.Tensor, hflip_prob: float, brightness: float, contrast: float, saturation: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """frames: (F, 3, H, W) float in [0, 1] (F frames of one sample); the same random flip and colour
    change is applied to all F. generator: where the draws come from (None: torch's global generator).
    Returns a new tensor in [0, 1]."""
    g = generator
    if hflip_prob > 0 and torch.rand((), generator=g).item() < hflip_prob:
        frames = frames.flip(-1)
    if brightness > 0:
        frames = (frames * _factor(brightness, g)).clamp(0.0, 1.0)
    if contrast > 0:
        # One mean over all frames of the sample, so the pair keeps the same colour transform.
        mean = _grey(frames).mean()
        frames = torch.lerp(mean.expand_as(frames), frames, _factor(contrast, g)).clamp(0.0, 1.0)
    if saturation > 0:
        frames = torch.lerp(_grey(frames).expand_as(frames), frames, _factor(saturation, g)).clamp(0.0, 1.0)
    return frames
