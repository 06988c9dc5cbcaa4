"""FID: the Fréchet distance, the TF1 bilinear resize, the Inception input conventions, and a real run."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imf.cache import FetchError
from imf.eval import fid as fid_mod
from imf.eval.fid import FIDAccumulator, frechet_distance, frechet_distance_from_features, resize_tf_bilinear


@pytest.mark.parametrize("n1,n2,d", [(300, 200, 24), (12, 9, 40)])  # full-rank and rank-deficient covariances
def test_fast_frechet_distance_equals_scipy_sqrtm_formula(n1, n2, d):
    rng = np.random.default_rng(0)
    f1 = rng.normal(size=(n1, d))
    f2 = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) * 0.3 + 0.5
    ref = frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))
    ours = frechet_distance_from_features(f1, f2)
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-5)
    assert frechet_distance_from_features(f1, f1) == pytest.approx(0.0, abs=1e-8)
    assert ours > 1.0


def test_frechet_distance_of_shifted_gaussians():
    # Same covariance, means 3 apart along one axis: FID = |Δμ|² = 9 (up to sampling of the covariances).
    rng = np.random.default_rng(1)
    f = rng.normal(size=(4000, 8))
    g = rng.normal(size=(4000, 8))
    g[:, 0] += 3.0
    assert frechet_distance_from_features(f, g) == pytest.approx(9.0, abs=0.15)


def _tf1_resize_reference(x: np.ndarray, out: int) -> np.ndarray:
    """TensorFlow 1 resize_bilinear(align_corners=False, half_pixel_centers=False) on (H, W), in numpy."""

    def axis(n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.arange(out) * (n_in / out)
        i0 = np.floor(src).astype(int)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    r0, r1, fr = axis(x.shape[0])
    c0, c1, fc = axis(x.shape[1])
    top = x[r0][:, c0] * (1 - fc) + x[r0][:, c1] * fc
    bottom = x[r1][:, c0] * (1 - fc) + x[r1][:, c1] * fc
    return top * (1 - fr[:, None]) + bottom * fr[:, None]


def test_resize_is_tensorflow1_bilinear():
    x = torch.rand(1, 1, 13, 20, dtype=torch.float64)
    ours = resize_tf_bilinear(x, 29)[0, 0].numpy()
    np.testing.assert_allclose(ours, _tf1_resize_reference(x[0, 0].numpy(), 29), atol=1e-9)
    same = torch.rand(1, 3, 29, 29, dtype=torch.float64)
    torch.testing.assert_close(resize_tf_bilinear(same, 29), same)


class _Recorder(torch.nn.Module):
    """Stands in for the Inception: records its input, returns (B, 2048) features of the pixel mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return x.mean(dim=(1, 2, 3))[:, None].repeat(1, 2048) + torch.arange(2048) * 1e-3


def test_inception_input_conventions_and_bookkeeping():
    rec = _Recorder()
    acc = FIDAccumulator(model=rec, batch_size=2)
    frames = torch.rand(3, 3, 64, 48)
    frames[0, :, 0, 0] = torch.tensor([0.0, 1.0, 1.2])  # out of range: clamped
    acc.update(frames, real=True)
    assert rec.seen.shape == (1, 3, 299, 299)  # last chunk of a batch of 3 split by 2
    assert rec.seen.min() >= -1.0 and rec.seen.max() <= 255 / 128 - 1
    acc.update(frames, real=False)
    assert acc.count(True) == 3 and acc.count(False) == 3
    assert acc.compute() == pytest.approx(0.0, abs=1e-6)
    # 299x299 frames pass unresized and are quantised to 8 bits: x_255 = 128 (1 + seen).
    acc.features(torch.rand(1, 3, 299, 299))
    levels = rec.seen * 128 + 128
    torch.testing.assert_close(levels, levels.round(), atol=1e-4, rtol=0)
    acc.reset()
    acc.update(frames[:1], real=True)
    with pytest.raises(ValueError, match="at least 2 real frames"):
        acc.compute()


def test_fid_available_false_logs_one_line(monkeypatch, caplog):
    import imf.pretrained

    def fail():
        raise FetchError("no network")

    monkeypatch.setattr(imf.pretrained, "fid_inception_path", fail)
    with caplog.at_level(logging.WARNING, logger=fid_mod.__name__):
        assert fid_mod.fid_available() is False
    assert len(caplog.records) == 1 and "FID skipped" in caplog.records[0].getMessage()


def test_real_inception_fid_self_zero_noisy_larger():
    if not fid_mod.fid_available():
        pytest.skip("FID Inception weights unavailable")
    acc = FIDAccumulator()
    base = F.avg_pool2d(torch.rand(1, 3, 68, 68), 5, stride=1)  # (1, 3, 64, 64), smooth
    clean = torch.cat([torch.roll(base, (3 * i, 5 * i), dims=(2, 3)) for i in range(3)])
    noisy = (clean + 0.2 * torch.randn_like(clean)).clamp(0, 1)
    f_clean, f_noisy = acc.features(clean), acc.features(noisy)
    assert f_clean.shape == (3, 2048) and np.isfinite(f_clean).all() and (f_clean >= 0).all()
    acc.update_features(f_clean, real=True)
    acc.update_features(f_clean, real=False)
    self_fid = acc.compute()
    acc.reset()
    acc.update_features(f_clean, real=True)
    acc.update_features(f_noisy, real=False)
    noisy_fid = acc.compute()
    print(f"FID self {self_fid:.3g}, noisy {noisy_fid:.3g}")
    assert abs(self_fid) < 1e-6
    assert noisy_fid > 10.0
