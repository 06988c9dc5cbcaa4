"""Scene-cut detection from colour histograms of consecutive source frames.

A cut is declared when the histogram distance between a frame and the previous one exceeds a
threshold. Distance: per RGB channel, half the L1 distance of the normalized 16-bin histograms
(0 = same colours, 1 = no overlap), averaged over the channels. Head motion and expressions move
pixels but barely change a frame's colour statistics; a cut to another shot changes them at once.
"""

from __future__ import annotations

import numpy as np

HIST_BINS = 16
DEFAULT_SCENE_CUT_THRESHOLD = 0.35


def color_histogram(frame: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """uint8 (H, W, 3) -> (3, bins) float64, each row summing to 1."""
    pixels = np.asarray(frame, dtype=np.uint8).reshape(-1, 3)  # (H*W, 3)
    idx = pixels.astype(np.int64) * bins // 256  # (H*W, 3) bin of each channel value
    hist = np.stack([np.bincount(idx[:, c], minlength=bins) for c in range(3)]).astype(np.float64)  # (3, bins)
    return hist / max(pixels.shape[0], 1)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over channels of half the L1 distance between two (3, bins) histograms, in [0, 1]."""
    return float(0.5 * np.abs(a - b).sum(axis=1).mean())


class SceneCutDetector:
    """Feed frames in order; :meth:`is_cut` says whether a frame starts a new shot."""

    def __init__(self, threshold: float | None = DEFAULT_SCENE_CUT_THRESHOLD) -> None:
        if threshold is not None and not 0.0 < threshold <= 1.0:
            raise ValueError(f"scene cut threshold must be in (0, 1] or None, got {threshold!r}")
        self.threshold = threshold
        self._prev: np.ndarray | None = None
        self.last_distance = 0.0

    def is_cut(self, frame: np.ndarray) -> bool:
        """True if frame differs from the previous frame by more than the threshold (never for the first)."""
        if self.threshold is None:
            return False
        hist = color_histogram(frame)
        prev, self._prev = self._prev, hist
        if prev is None:
            return False
        self.last_distance = histogram_distance(prev, hist)
        return self.last_distance > self.threshold
