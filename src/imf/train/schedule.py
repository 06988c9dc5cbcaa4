"""Learning-rate schedule: linear warm-up, then constant or cosine decay."""

from __future__ import annotations

import math


def lr_factor(step: int, max_steps: int, warmup_steps: int = 0, decay: str = "none",
              min_ratio: float = 0.1) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay == "none" or max_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
