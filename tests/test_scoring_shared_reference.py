"""The RD study's fast scoring (the reference side of each metric computed once per batch and shared by every
point, SSIM taken from MS-SSIM's first scale) gives the plain metrics' numbers bit for bit; and `run_rd` keeps
every number when its standard codecs run in threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imf.eval import metrics as m
from imf.eval.reconstruct_eval import FrameScorer, score_many_sequences, score_sequences


def _images(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g)


@pytest.mark.parametrize("h, w", [(64, 64), (45, 50)])  # 50 → 25 → 13: odd sides go through the zero padding
def test_ssim_and_ms_ssim_equal_the_plain_metrics_bit_for_bit(h, w):
    x = _images(3, h, w, 0)
    shared = m.ssim_reference(x, m.ms_ssim_scales(h, w))
    for seed in (1, 2):  # two distorted versions against one shared reference side
        y = (x + 0.1 * _images(3, h, w, seed)).clamp(0, 1)
        s, ms = m.ssim_and_ms_ssim(x, y, shared)
        assert torch.equal(s, m.ssim(x, y)) and torch.equal(ms, m.ms_ssim(x, y))
        assert torch.equal(s, m.ssim(y, x)) and torch.equal(ms, m.ms_ssim(y, x))  # symmetric, bit for bit
        only, none = m.ssim_and_ms_ssim(x, y, with_ms_ssim=False)
        assert none is None and torch.equal(only, s)
    assert not torch.equal(m.ssim_and_ms_ssim(x, x)[0], s)  # the check can fail
    with pytest.raises(ValueError, match="scales"):
        m.ssim_and_ms_ssim(x, y, shared[:1])


@pytest.fixture(scope="module")
def scorer():
    return FrameScorer(("psnr", "ms_ssim", "ssim", "l1", "lpips_vgg", "lpips_alex"))


def test_scorer_equals_the_metric_functions_bit_for_bit(scorer):
    x = _images(4, 64, 64, 0)
    y = (x + 0.2 * _images(4, 64, 64, 1)).clamp(0, 1)
    got = scorer.score(x, y)
    prepared = scorer.prepare(x)
    again = scorer.score(None, y, prepared)
    with torch.inference_mode():  # what FrameScorer.score computed before it shared the reference's side
        plain = {"psnr": m.psnr(y, x, mse_floor=m.PSNR_MSE_FLOOR), "ms_ssim": m.ms_ssim(y, x), "ssim": m.ssim(y, x),
                 "l1": m.l1(y, x), **{name: net(y, x) for name, net in scorer._lpips.items()}}
    assert set(got) == set(scorer.metrics) == set(plain) - set(scorer.skipped)
    for name in got:
        expected = plain[name].double().numpy()
        assert np.array_equal(got[name], expected) and np.array_equal(again[name], expected), name


def test_many_sequences_score_as_each_alone(scorer):
    rng = np.random.default_rng(0)
    source = rng.integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)  # 20 frames: batches of 16 and a ragged 4
    points = [np.clip(source.astype(int) + rng.integers(-a, a + 1, source.shape), 0, 255).astype(np.uint8)
              for a in (4, 30)]
    many = score_many_sequences(scorer, source, [list(p) for p in points])
    alone = [score_sequences(scorer, source, list(p)) for p in points]
    assert many == alone  # exactly: the same floats
    assert many[0]["psnr"] > many[1]["psnr"] + 5
    with pytest.raises(ValueError, match="frame counts differ"):
        score_many_sequences(scorer, source, [list(points[0][:-1])])


def test_rd_in_threads_keeps_every_number(tmp_path):
    """Standard-codec points coded one at a time or four at once in threads: the same rates and scores."""
    from imf.eval import baselines
    from imf.eval.rd import run_rd

    found, _ = baselines.resolve_codecs(["x264"])
    if not found:
        pytest.skip("this ffmpeg has no libx264")
    import imf
    from imf.codec.fit import fit_codec

    torch.manual_seed(0)
    model = imf.IMF(imf.IMFConfig.preset("tiny-64")).eval()
    rng = np.random.default_rng(1)
    clip = np.clip(rng.normal(120, 40, (1, 64, 64, 3)) + np.arange(6)[:, None, None, None] * 3, 0, 255)
    clip = clip.astype(np.uint8)  # (6, 64, 64, 3): a noisy still that brightens
    ckpt = tmp_path / "model"
    model.save_pretrained(ckpt)
    fit_codec(model, [clip], qualities=(4,), progress=False).save(ckpt)
    from imf.data.video import VideoWriter

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, 25, 64, 64, crf=0, preset="veryfast") as w:
        for f in clip:
            w.write(f)
    runs = {}
    for workers in (1, 4):
        result = run_rd(ckpt, [video], tmp_path / f"rd{workers}", codecs=["x264"], qualities=[4],
                        crfs={"x264": [30, 40, 51]}, metrics=("psnr", "ssim", "l1"), with_vmaf=False, plots=False,
                        progress=False, workers=workers)
        runs[workers] = [(p.codec, p.value, p.rate_bits, p.rates, p.quality) for p in result.points]
    assert runs[1] == runs[4] and len(runs[1]) == 4
