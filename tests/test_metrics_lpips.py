"""LPIPS against values of the official `lpips` package (v0.1) on fixed 64x64 PNG pairs.

The PNGs and reference.json live in tests/data/lpips (a copy of ../shared/testdata/lpips, which is used
when the copy is missing). Their "how" text gives the reference procedure: PNG -> uint8 RGB ->
x/127.5 - 1 in float64 -> float32. Our LPIPS takes [0, 1] frames, so we feed x/255 (float64 -> float32).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imf.cache import FetchError

_HERE = Path(__file__).resolve()
_CANDIDATES = [_HERE.parent / "data" / "lpips", _HERE.parents[2] / "shared" / "testdata" / "lpips"]
DATA = next((p for p in _CANDIDATES if (p / "reference.json").is_file()), None)

pytestmark = pytest.mark.skipif(
    DATA is None, reason="LPIPS reference data not found (tests/data/lpips or ../shared/testdata/lpips)")

ATOL = 2e-5


def _reference() -> dict:
    assert DATA is not None
    return json.loads((DATA / "reference.json").read_text())


def _load_png(name: str) -> torch.Tensor:
    """(1, 3, H, W) float32 in [0, 1], via float64 as the reference did."""
    pixels = np.asarray(Image.open(DATA / name).convert("RGB"))  # (H, W, 3) uint8
    return torch.from_numpy((pixels.astype(np.float64) / 255.0).astype(np.float32)).permute(2, 0, 1)[None]


@pytest.fixture(scope="module", params=["vgg", "alex"])
def lpips_model(request):
    from imf.eval.lpips import LPIPS

    try:
        return LPIPS(request.param)
    except FetchError as err:
        pytest.skip(f"LPIPS weights unavailable: {err}")


def test_png_pixels_are_the_canonical_ones():
    ref = _reference()
    for name, meta in ref["files"].items():
        pixels = np.ascontiguousarray(np.asarray(Image.open(DATA / name).convert("RGB")))
        assert pixels.shape == tuple(meta["shape_hwc"])
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == meta["sha256_pixels_rgb_hwc_uint8"], name


def test_lpips_matches_official_values(lpips_model):
    ref = _reference()
    key = f"lpips_{lpips_model.net}"
    x = torch.cat([_load_png(p["img0"]) for p in ref["pairs"]])
    y = torch.cat([_load_png(p["img1"]) for p in ref["pairs"]])
    with torch.no_grad():
        ours = lpips_model(x, y)  # batched: (5,)
    expected = torch.tensor([p[key] for p in ref["pairs"]])
    diff = (ours - expected).abs()
    assert diff.max().item() < ATOL, f"{key}: ours {ours.tolist()} vs {expected.tolist()} (|diff| {diff.tolist()})"
    # The distances are far from each other, so a wrong head or tap order could not pass by luck.
    assert expected[1:].min() > 10 * ATOL


def test_lpips_identical_is_zero_and_symmetric(lpips_model):
    x = torch.rand(2, 3, 32, 32)
    y = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(lpips_model(x, x), torch.zeros(2))
        torch.testing.assert_close(lpips_model(x, y), lpips_model(y, x))
        assert (lpips_model(x, y) > 0).all()


def test_lpips_passes_gradients_to_input_not_weights(lpips_model):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    lpips_model(x, torch.rand(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in lpips_model.parameters())
    lpips_model.train()
    assert not lpips_model.training


def test_lpips_rejects_bad_shapes(lpips_model):
    with pytest.raises(ValueError, match="B, 3, H, W"):
        lpips_model(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 16))
