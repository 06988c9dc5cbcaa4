"""Bjøntegaard delta rate and delta quality between two rate–quality curves.

Method (G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves", ITU-T VCEG-M33,
2001; the piecewise-cubic variant is the one of the JCT-VC / JVET common-test-condition sheets):

- BD-rate: fit log(rate) as a function of quality for each curve, integrate both fits over the
  quality interval the two curves share, average the difference over that interval and map it back:
  ``BD-rate = (exp(mean(log r_test - log r_anchor)) - 1) · 100`` in percent. Negative: the test codec
  needs fewer bits than the anchor for the same quality.
- BD-quality (BD-PSNR when quality is PSNR): fit quality as a function of log(rate), integrate over the
  shared log-rate interval, average the difference (test − anchor) in the metric's own units. Positive:
  the test codec gives more quality for the same rate.
- ``method="cubic"``: a least-squares cubic polynomial through the points (VCEG-M33; needs ≥ 4 points).
  ``method="pchip"``: piecewise cubic Hermite interpolation (scipy's ``PchipInterpolator``; needs ≥ 2
  points and strictly increasing abscissae after sorting).
- The log base does not matter (changing it scales the log axis linearly, which neither fit nor average
  sees). Quality must grow with rate ("higher is better"): pass 1 − LPIPS, not LPIPS.
- Nothing is extrapolated: when the curves' intervals do not overlap the result is ``None`` and the
  ``BDResult.note`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import Polynomial
from scipy.interpolate import PchipInterpolator

METHODS = ("cubic", "pchip")


@dataclass(frozen=True)
class BDResult:
    """One Bjøntegaard delta.

    value: percent for BD-rate, quality units for BD-quality; None when it cannot be computed.
    kind: "rate" or "quality". method: "cubic" or "pchip".
    interval: the shared interval integrated over (quality units for BD-rate, natural-log rate for
    BD-quality), or None. note: why ``value`` is None (empty when it is not).
    """

    value: float | None
    kind: str
    method: str
    interval: tuple[float, float] | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {"value": self.value, "kind": self.kind, "method": self.method,
                "interval": list(self.interval) if self.interval else None, "note": self.note}


def _curve(rate: Sequence[float], quality: Sequence[float], name: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64).reshape(-1)
    q = np.asarray(quality, dtype=np.float64).reshape(-1)
    if r.shape != q.shape:
        raise ValueError(f"{name}: {r.size} rates but {q.size} quality values")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError(f"{name}: rates and qualities must be finite, got rate={r.tolist()} quality={q.tolist()}")
    if np.any(r <= 0):
        raise ValueError(f"{name}: rates must be positive, got {r.tolist()}")
    return np.log(r), q


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> tuple[float | None, str]:
    """∫_lo^hi f(t) dt for the fit f of y(x); (None, reason) when the fit is not possible."""
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if method == "cubic":
        if x.size < 4:
            return None, f"the cubic fit needs at least 4 points, got {x.size}"
        if np.unique(x).size < 4:
            return None, "the cubic fit needs at least 4 distinct abscissae"
        antiderivative = Polynomial.fit(x, y, 3).integ()  # fit is domain-scaled: well conditioned
        return float(antiderivative(hi) - antiderivative(lo)), ""
    if x.size < 2:
        return None, f"the pchip fit needs at least 2 points, got {x.size}"
    if np.any(np.diff(x) <= 0):
        return None, "the pchip fit needs strictly increasing abscissae (two points share a value)"
    return float(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi)), ""


def _delta(xa: np.ndarray, ya: np.ndarray, xt: np.ndarray, yt: np.ndarray, method: str, axis: str):
    """Mean of (fit_test − fit_anchor) over the shared x interval: (mean | None, interval, note)."""
    if method not in METHODS:
        raise ValueError(f"unknown BD method {method!r}; expected one of {METHODS}")
    lo, hi = max(xa.min(), xt.min()), min(xa.max(), xt.max())
    if not hi > lo:
        return None, None, (
            f"the curves' {axis} ranges do not overlap (anchor {xa.min():.6g}..{xa.max():.6g}, "
            f"test {xt.min():.6g}..{xt.max():.6g}); no extrapolation is done")
    ia, note_a = _integral(xa, ya, lo, hi, method)
    it, note_t = _integral(xt, yt, lo, hi, method)
    if ia is None or it is None:
        return None, (float(lo), float(hi)), f"anchor: {note_a}" if ia is None else f"test: {note_t}"
    return (it - ia) / (hi - lo), (float(lo), float(hi)), ""


def bd_rate_result(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
                   quality_test: Sequence[float], method: str = "cubic") -> BDResult:
    """BD-rate of the test curve against the anchor, in percent (negative: the test saves bits)."""
    la, qa = _curve(rate_anchor, quality_anchor, "anchor")
    lt, qt = _curve(rate_test, quality_test, "test")
    mean, interval, note = _delta(qa, la, qt, lt, method, "quality")
    value = None if mean is None else float(np.expm1(mean) * 100.0)
    return BDResult(value, "rate", method, interval, note)


def bd_quality_result(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
                      quality_test: Sequence[float], method: str = "cubic") -> BDResult:
    """BD-quality (BD-PSNR for PSNR) of the test curve against the anchor, in quality units."""
    la, qa = _curve(rate_anchor, quality_anchor, "anchor")
    lt, qt = _curve(rate_test, quality_test, "test")
    mean, interval, note = _delta(la, qa, lt, qt, method, "log-rate")
    return BDResult(None if mean is None else float(mean), "quality", method, interval, note)


def bd_rate(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
            quality_test: Sequence[float], method: str = "cubic") -> float | None:
    """BD-rate in percent, or None when the curves share no quality interval (see ``bd_rate_result``)."""
    return bd_rate_result(rate_anchor, quality_anchor, rate_test, quality_test, method).value


def bd_quality(rate_anchor: Sequence[float], quality_anchor: Sequence[float], rate_test: Sequence[float],
               quality_test: Sequence[float], method: str = "cubic") -> float | None:
    """BD-quality in quality units, or None when the curves share no rate interval."""
    return bd_quality_result(rate_anchor, quality_anchor, rate_test, quality_test, method).value
