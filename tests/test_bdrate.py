"""Bjøntegaard deltas on published example curves, and on curves whose answer is known exactly.

Published inputs:
- "Sample 1" of the widely used VCEG-M33 Python implementation, github.com/Anserw/Bjontegaard_metric
  (demo.py): rates in kbit/s, PSNR in dB.
- "Test 1" of the FAU-LMS ``bjontegaard`` package, github.com/FAU-LMS/bjontegaard (README.md,
  example_usage.py; libx265 presets measured with ffmpeg, BSD-3-Clause).

Expected values: computed independently with that package (PyPI ``bjontegaard==1.3.0``,
``bd_rate`` / ``bd_psnr`` with ``method="cubic"`` and ``method="pchip"``; its pchip is stated to match
the JCT-VC CTC Excel sheet to 10 decimals), not with the code under test. A third-party test suite
(a TypeScript bd-rate module) hand-enters the same cubic values, 31.397374054908013 % and
-4.420462706090111 %, from its own numpy evaluation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from imf.eval.bdrate import bd_quality, bd_quality_result, bd_rate, bd_rate_result

SAMPLE1 = dict(rate_anchor=[686.76, 309.58, 157.11, 85.95], quality_anchor=[40.28, 37.18, 34.24, 31.42],
               rate_test=[893.34, 407.8, 204.93, 112.75], quality_test=[40.39, 37.21, 34.17, 31.24])
FAU_TEST1 = dict(rate_anchor=[9487.76, 4593.60, 2486.44, 1358.24], quality_anchor=[40.037, 38.615, 36.845, 34.851],
                 rate_test=[9787.80, 4469.00, 2451.52, 1356.24], quality_test=[40.121, 38.651, 36.970, 34.987])

# (curves, method, BD-rate %, BD-PSNR dB) from bjontegaard 1.3.0.
PUBLISHED = [
    (SAMPLE1, "cubic", 31.3973740549095, -1.1848979217703506),
    (SAMPLE1, "pchip", 31.379878202397627, -1.1834724046224592),
    (FAU_TEST1, "cubic", -4.420462706125383, 0.12040941911451103),
    (FAU_TEST1, "pchip", -4.417485350589045, 0.11969278542479489),
]


@pytest.mark.parametrize("curves,method,rate,psnr", PUBLISHED)
def test_published_examples(curves, method, rate, psnr):
    assert bd_rate(**curves, method=method) == pytest.approx(rate, abs=1e-8)
    assert bd_quality(**curves, method=method) == pytest.approx(psnr, abs=1e-9)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_point_order_does_not_matter(method):
    shuffled = {k: list(np.asarray(v)[[2, 0, 3, 1]]) for k, v in SAMPLE1.items()}
    assert bd_rate(**shuffled, method=method) == pytest.approx(bd_rate(**SAMPLE1, method=method), abs=1e-9)


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_exact_answers(method):
    r, q = SAMPLE1["rate_anchor"], SAMPLE1["quality_anchor"]
    # 25 % more bits at every quality: BD-rate is exactly +25 % and the test loses quality.
    assert bd_rate(r, q, [1.25 * x for x in r], q, method) == pytest.approx(25.0, abs=1e-9)
    assert bd_quality(r, q, [1.25 * x for x in r], q, method) < 0
    # 0.5 dB better at every rate: BD-quality is exactly +0.5, and the test saves bits.
    assert bd_quality(r, q, r, [x + 0.5 for x in q], method) == pytest.approx(0.5, abs=1e-9)
    assert bd_rate(r, q, r, [x + 0.5 for x in q], method) < 0
    # Identical curves: zero; swapping anchor and test inverts the rate ratio.
    assert bd_rate(r, q, r, q, method) == pytest.approx(0.0, abs=1e-9)
    fwd = bd_rate(**FAU_TEST1, method=method) / 100
    back = bd_rate(FAU_TEST1["rate_test"], FAU_TEST1["quality_test"], FAU_TEST1["rate_anchor"],
                   FAU_TEST1["quality_anchor"], method) / 100
    assert (1 + fwd) * (1 + back) == pytest.approx(1.0, abs=1e-3)


def test_no_overlap_returns_none_and_says_why():
    r, q = SAMPLE1["rate_anchor"], SAMPLE1["quality_anchor"]
    far = [x + 40 for x in q]  # qualities 71..80 dB: no common quality interval
    res = bd_rate_result(r, q, r, far)
    assert res.value is None and "do not overlap" in res.note and "no extrapolation" in res.note
    # Rates a thousand times lower: no common rate interval for BD-quality.
    low = [x / 1000 for x in r]
    resq = bd_quality_result(r, q, low, q)
    assert resq.value is None and "log-rate" in resq.note
    assert bd_quality(r, q, low, q) is None


def test_too_few_points_and_bad_input():
    r, q = SAMPLE1["rate_anchor"][:3], SAMPLE1["quality_anchor"][:3]
    res = bd_rate_result(r, q, r, q, "cubic")
    assert res.value is None and "at least 4 points" in res.note
    assert bd_rate(r, q, [1.1 * x for x in r], q, "pchip") == pytest.approx(10.0, abs=1e-9)
    with pytest.raises(ValueError, match="positive"):
        bd_rate([0, 1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="finite"):
        bd_rate([1, 2, 3, 4], [1, 2, math.nan, 4], [1, 2, 3, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="unknown BD method"):
        bd_rate(**SAMPLE1, method="akima")
    dup = bd_rate_result([1, 2, 3, 4], [30, 31, 31, 32], [1, 2, 3, 4], [30, 31, 32, 33], "pchip")
    assert dup.value is None and "strictly increasing" in dup.note
