"""The out-of-domain check: is the model losing to copying the reference frame?

Copying the reference (x̂_t = x_r for every t) is the floor any reconstruction has to beat. A model that
scores below it on a video has, most likely, not learned the person in it (it paints the faces it was
trained on). ``imf reconstruct``, ``imf encode`` and ``imf eval`` compare the two on the frames they
already rebuild, at no extra model cost, and ``warn_if_out_of_domain`` prints one line to stderr when the
model loses.

``CopyComparer`` gives the PSNR of the mean MSE over the frames compared (RGB), so one perfect frame cannot
make it infinite; the reference frame itself is never compared. Where it is used:
- ``imf reconstruct``: every frame written (``InferenceStats.copy_check``);
- ``imf encode``: every frame the closed loop rebuilds from a token, beside its decoded keyframe
  (``EncodeStats.copy_check``);
- ``imf eval``: its report's own figures, the mean per-frame PSNR per video (``EvalReport.copy_checks``),
  so that the warning quotes the table.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from imf.eval.metrics import psnr_of_mse

HINT = "the subject may be outside what the model learned"


@dataclass(frozen=True)
class CopyComparison:
    """PSNR (dB) of the model and of copy-the-reference on ``frames`` frames of one video (``name``)."""

    model_psnr: float
    copy_psnr: float
    frames: int
    name: str = ""

    @property
    def model_loses(self) -> bool:
        return self.model_psnr < self.copy_psnr


class CopyComparer:
    """Accumulates squared errors of the model's output and of the reference against the true frames.

    ``add(frame, output, reference)`` takes uint8 (H, W, 3) arrays (or any arrays of one shape and one
    scale, with ``peak`` their maximum); ``result()`` gives the PSNR of the mean MSE of each.
    """

    def __init__(self, name: str = "", peak: float = 255.0) -> None:
        self.name, self.peak = name, peak
        self._model = self._copy = 0.0  # sums over frames of the per-frame MSE
        self.frames = 0

    @staticmethod
    def _mse(a: np.ndarray, b: np.ndarray) -> float:
        if a.dtype == np.uint8:  # exact integer arithmetic
            d = (a.astype(np.int64) - b.astype(np.int64)).ravel()  # int64: a frame's sum can pass 2**31
            return float(np.dot(d, d)) / d.size
        d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
        return float(np.mean(d * d))

    def add(self, frame: np.ndarray, output: np.ndarray, reference: np.ndarray) -> None:
        """One true frame, the model's output for it and the reference frame, all (H, W, 3) of one dtype."""
        if not frame.shape == output.shape == reference.shape:
            raise ValueError(f"shapes differ: frame {frame.shape}, output {output.shape}, reference {reference.shape}")
        self._model += self._mse(output, frame)
        self._copy += self._mse(reference, frame)
        self.frames += 1

    def result(self) -> CopyComparison | None:
        """The comparison over every frame added, or None if none was."""
        if not self.frames:
            return None
        return CopyComparison(psnr_of_mse(self._model / self.frames, self.peak),
                              psnr_of_mse(self._copy / self.frames, self.peak), self.frames, self.name)


def out_of_domain_message(checks: Sequence[CopyComparison | None]) -> str | None:
    """The warning line for the videos where the model loses to copy, or None where it loses on none."""
    checks = [c for c in checks if c is not None]
    losing = [c for c in checks if c.model_loses]
    if not losing:
        return None
    if len(checks) == 1:
        c = losing[0]
        return (f"warning: on this video the model scores {c.model_psnr:.1f} dB PSNR, below copying the reference "
                f"frame ({c.copy_psnr:.1f} dB): {HINT}")
    names = ", ".join(c.name or "?" for c in losing)
    model = float(np.mean([c.model_psnr for c in losing]))
    copy = float(np.mean([c.copy_psnr for c in losing]))
    return (f"warning: on {len(losing)} of {len(checks)} videos ({names}) the model scores {model:.1f} dB PSNR, "
            f"below copying the reference frame ({copy:.1f} dB): {HINT}")


def warn_if_out_of_domain(checks: CopyComparison | Sequence[CopyComparison | None] | None,
                          file: TextIO | None = None) -> bool:
    """Print ONE line to stderr (or ``file``) if the model scores below copy-the-reference on any of
    ``checks`` (one per video; None entries are ignored); return whether it printed."""
    if checks is None:
        return False
    if isinstance(checks, CopyComparison):
        checks = [checks]
    message = out_of_domain_message(checks)
    if message is None:
        return False
    print(message, file=file if file is not None else sys.stderr)
    return True
