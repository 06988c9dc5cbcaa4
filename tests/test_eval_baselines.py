"""Standard-codec baselines through imageio-ffmpeg's binary on a tiny synthetic clip (8 frames, 64×64)."""

from __future__ import annotations

import av
import numpy as np
import pytest

from imf.eval import baselines
from imf.eval.baselines import CODECS, decode_frames, encode_baseline, resolve_codecs


def _clip(n: int = 8, size: int = 64) -> np.ndarray:
    """A smooth moving colour pattern with some texture: uint8 (n, size, size, 3)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    texture = rng.normal(0, 12, (size, size, 3))
    frames = []
    for t in range(n):
        r = 128 + 90 * np.sin((xx + 2 * t) / 9.0)
        g = 128 + 90 * np.cos((yy - t) / 7.0)
        b = 128 + 60 * np.sin((xx + yy + 3 * t) / 11.0)
        frames.append(np.clip(np.stack([r, g, b], -1) + texture, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def x264():
    found, skipped = resolve_codecs(["x264"])
    if not found:
        pytest.skip(skipped[0])
    return found[0]


def test_x264_rate_falls_with_crf_and_payload_is_within_file(tmp_path, x264):
    frames = _clip()
    low = encode_baseline(frames, 24000 / 1001, x264, 30, tmp_path / "crf30.mp4")
    high = encode_baseline(frames, 24000 / 1001, x264, 45, tmp_path / "crf45.mp4")
    assert high.payload_bytes < low.payload_bytes
    for enc in (low, high):
        assert 0 < enc.payload_bytes <= enc.file_bytes
        assert enc.num_frames == 8 and (enc.width, enc.height) == (64, 64)
        assert enc.fps == pytest.approx(24000 / 1001)
        rates = enc.rates()
        assert rates["bpp_payload"] == pytest.approx(8 * enc.payload_bytes / (8 * 64 * 64))
        assert rates["kbps_payload"] == pytest.approx(8 * enc.payload_bytes / (8 / (24000 / 1001)) / 1000)
        assert rates["bpp_file"] >= rates["bpp_payload"]
    # Decoded back to RGB: same frame count and size, and the lower CRF is closer to the source.
    dec_low, dec_high = (np.stack(list(decode_frames(e.path))) for e in (low, high))
    assert dec_low.shape == frames.shape == dec_high.shape
    assert _psnr(dec_low, frames) > _psnr(dec_high, frames) > 15


def test_encode_at_rate_takes_the_finest_crf_that_fits(tmp_path, x264):
    frames = _clip()
    target = 8 * encode_baseline(frames, 25, x264, 33, tmp_path / "ref.mp4").payload_bytes
    enc = baselines.encode_at_rate(frames, 25, x264, target, tmp_path / "matched.mp4")
    assert 8 * enc.payload_bytes <= target and enc.path == str(tmp_path / "matched.mp4")
    if enc.value > 0:  # one step finer no longer fits (the search's answer is the boundary)
        assert 8 * encode_baseline(frames, 25, x264, enc.value - 1, tmp_path / "finer.mp4").payload_bytes > target
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # the search's other encodes are gone
    # below the coarsest point's rate: that point, which is over the target
    tiny = baselines.encode_at_rate(frames, 25, x264, 8, tmp_path / "tiny.mp4")
    assert tiny.value == 51 and 8 * tiny.payload_bytes > 8


def test_low_delay_single_keyframe(tmp_path, x264):
    enc = encode_baseline(_clip(12), 25, x264, 40, tmp_path / "a.mp4")
    with av.open(enc.path) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
    assert [p.is_keyframe for p in packets] == [True] + [False] * 11  # one keyframe, at the start
    assert [p.pts for p in packets] == sorted(p.pts for p in packets)  # no reordering (no B-frames)
    assert packets[0].dts == packets[0].pts


def test_colour_round_trip_is_consistent(tmp_path, x264):
    """Lossless x264 (CRF 0) on a clip whose chroma is flat over 2×2 blocks: only rounding is lost, so the
    RGB→Y'CbCr (encode) and Y'CbCr→RGB (decode) conversions use the same matrix and range."""
    frames = _clip(2)
    frames = frames[:, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2)  # constant 2×2 blocks: 4:2:0 loses nothing
    enc = encode_baseline(frames, 25, x264, 0, tmp_path / "lossless.mp4")
    dec = np.stack(list(decode_frames(enc.path)))
    assert _psnr(dec, frames) > 38


def test_missing_and_unknown_codecs_are_reported_not_raised():
    found, skipped = resolve_codecs(["x264", "vvc", "av1", "h263"], encoders=frozenset({"libx264", "libaom-av1"}))
    assert [c.name for c in found] == ["x264", "av1"]
    assert found[1].encoder == "libaom-av1"  # SVT-AV1 absent: the libaom fallback
    assert any(s.startswith("vvc:") and "no libvvenc" in s for s in skipped)
    assert any("unknown codec 'h263'" in s for s in skipped)
    assert any("libsvtav1 is missing, using libaom-av1" in s for s in skipped)
    none, msgs = resolve_codecs(["x265"], encoders=frozenset())
    assert none == [] and len(msgs) == 1


def test_binary_encoder_list_and_args():
    have = baselines.available_encoders()
    assert "libx264" in have and "rawvideo" in have
    codec = baselines.ResolvedCodec(CODECS["vvc"], "libvvenc", "yuv420p10le")
    args = baselines.encoder_args(codec, 50, 100)
    assert "picreordering=0" in " ".join(args) and "-qp" in args
    with pytest.raises(ValueError, match="qp must be in"):
        baselines.encoder_args(codec, 70, 100)
