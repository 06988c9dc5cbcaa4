"""imf.pipeline: streaming reconstruction and reenactment against the model's own forward, precision and
device settings, frame fitting, and --crop with paste-back on a real face."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from imf.data.crop import crop_image
from imf.data.video import VideoWriter, iter_frames, probe, to_tensor, to_uint8
from imf.errors import ConfigError, InputError
from imf.pipeline import Pipeline, check_frame_size, reenact_video

S = 64


def random_frames(n: int, seed: int = 0, size: int = S) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture
def lively_model(tiny_model):
    """The tiny model with two weights scaled up: at random init its output is nearly constant (std ~0.007)
    and moves by ~1e-7 when the token changes, too little for an equivalence test to notice a wrong token.
    Scaled, the output varies (std ~0.4) and follows the token by ~1e-3 on average. P_q, P_k are shrunk
    to the scale of a plain init, so that the token, not their identity-warp prior, steers the attention."""
    with torch.no_grad():
        tiny_model.token_decoder.const.mul_(100)  # larger motion features: peaked attention
        for scale in tiny_model.motion_alignment.scales:
            scale.pos_q.mul_(0.01)
            scale.pos_k.mul_(0.01)
        tiny_model.frame_decoder.to_rgb[0].weight.mul_(200)  # sigmoid out of its linear middle
    return tiny_model


def test_stream_equals_per_frame_forward(lively_model):
    frames = random_frames(7)  # 7 frames in batches of 3: a ragged last batch
    ref = frames[2]
    pipe = Pipeline(lively_model, device="cpu", precision="fp32", batch_size=3)  # the reference path
    out = list(pipe.reconstruct(frames, ref, output="tensor"))
    assert len(out) == 7 and out[0].shape == (3, S, S) and out[0].dtype == torch.float32
    with torch.inference_mode():
        expected = [lively_model(to_tensor(f), to_tensor(ref))[0] for f in frames]
    for y, e in zip(out, expected):
        torch.testing.assert_close(y, e, atol=1e-5, rtol=0)
    assert (out[0] - expected[1]).abs().max() > 1e-3  # the check can tell frames apart
    as_uint8 = list(pipe.reconstruct(frames, ref))
    assert as_uint8[0].dtype == np.uint8 and as_uint8[0].shape == (S, S, 3)
    np.testing.assert_array_equal(np.stack(as_uint8), np.stack([to_uint8(y) for y in out]))


def test_reconstruct_streams_in_bounded_batches(tiny_model):
    pulled = 0

    def endless():  # a "video" with no end: only a streaming pipeline can return from it
        nonlocal pulled
        frame = random_frames(1)[0]
        while True:
            pulled += 1
            yield frame

    pipe = Pipeline(tiny_model, device="cpu", batch_size=4)
    first = list(itertools.islice(pipe.reconstruct(endless(), random_frames(1, seed=1)[0]), 5))
    assert len(first) == 5
    assert pulled == 8  # two batches of 4, nothing more


def test_relative_reenactment_is_a_token_offset(lively_model):
    tiny_model = lively_model
    source = random_frames(1, seed=3)[0]
    driving = random_frames(5, seed=4)
    decoded_tokens = []  # a random-init decoder barely reacts to tokens: check the tokens it is given too
    decode = tiny_model.decode
    tiny_model.decode = lambda t, ref: decoded_tokens.append(t.clone()) or decode(t, ref)
    pipe = Pipeline(tiny_model, device="cpu", precision="fp32", batch_size=2)
    relative = torch.stack(list(pipe.reenact(source, driving, relative=True, output="tensor")))
    t_relative, decoded_tokens[:] = torch.cat(decoded_tokens), []
    absolute = torch.stack(list(pipe.reenact(source, driving, output="tensor")))
    t_absolute = torch.cat(decoded_tokens)
    with torch.inference_mode():  # by hand: t = t_s + (t_k - t_0), decoded against the source
        ref = tiny_model.prepare_reference(to_tensor(source))
        t_s = tiny_model.encode_token(to_tensor(source))  # (1, d_m)
        t_d = tiny_model.encode_token(to_tensor(driving))  # (5, d_m)
        expected_rel = decode(t_s + t_d - t_d[:1], ref)
        expected_abs = decode(t_d, ref)
        own = tiny_model(to_tensor(source), to_tensor(source))  # frame 0 of relative = source rebuilt
    torch.testing.assert_close(pipe.encode_tokens(driving), t_d, atol=1e-6, rtol=0)
    torch.testing.assert_close(t_relative, t_s + t_d - t_d[:1], atol=1e-6, rtol=0)
    torch.testing.assert_close(t_absolute, t_d, atol=1e-6, rtol=0)
    assert (t_relative - t_absolute).abs().max() > 1e-2  # the two modes really differ
    torch.testing.assert_close(relative, expected_rel, atol=1e-5, rtol=0)
    torch.testing.assert_close(absolute, expected_abs, atol=1e-5, rtol=0)
    torch.testing.assert_close(relative[:1], own, atol=1e-5, rtol=0)
    assert (relative - absolute).abs().max() > 1e-3


def test_precision_and_device_settings(tiny_model, caplog, monkeypatch):
    from imf import precision

    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda probe=True: False)
    assert Pipeline(tiny_model, device="cpu").precision == "fp32"  # "auto", the default, on a CPU without it
    with caplog.at_level(logging.WARNING, logger="imf.pipeline"):
        pipe = Pipeline(tiny_model, device="cpu", precision="bf16")
    assert pipe.precision == "bf16"  # asked for: it runs, emulated
    assert "without fast bf16" in caplog.text and "slower" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imf.pipeline"):
        assert Pipeline(tiny_model, device="cpu", precision="fp16").precision == "fp32"
    assert "fp16 is not used on CPU" in caplog.text
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        Pipeline(tiny_model, device="cpu", precision="fp8")
    with pytest.raises(ConfigError, match="unknown device 'tpu0'"):
        Pipeline(tiny_model, device="tpu0")
    with pytest.raises(ConfigError, match="batch_size"):
        Pipeline(tiny_model, device="cpu", batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            Pipeline(tiny_model, device="cuda")


def test_small_frames_are_upsampled_or_refused(tiny_model, caplog):
    pipe = Pipeline(tiny_model, device="cpu")
    with caplog.at_level(logging.WARNING, logger="imf.pipeline"):
        out = list(pipe.reconstruct(random_frames(2, size=40), random_frames(1, size=48)[0]))
    assert out[0].shape == (S, S, 3)
    assert caplog.text.count("upsampled") == 1  # warned once, not per frame
    with pytest.raises(InputError, match="20x20 are too small"):
        list(pipe.reconstruct(random_frames(1, size=20), random_frames(1)[0]))
    assert check_frame_size(80, 64, S, "x") is False
    with pytest.raises(InputError, match="at least 32"):
        check_frame_size(200, 31, S, "x")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gpu_half_precision_is_close_to_fp32(tiny_model, precision):
    frames, ref = random_frames(6), random_frames(1, seed=1)[0]
    fp32 = torch.stack(list(Pipeline(tiny_model, device="cuda").reconstruct(frames, ref, output="tensor")))
    pipe = Pipeline(tiny_model, device="cuda", precision=precision)
    assert pipe.precision == precision
    half = torch.stack(list(pipe.reconstruct(frames, ref, output="tensor")))
    assert half.dtype == torch.float32 and (half - fp32).abs().mean() < 2e-2


# --------------------------------------------------------------------------------------- --crop
def test_reenact_crop_pastes_back_into_the_source(tiny_model, tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    astronaut = skimage_data.astronaut()[:384, 64:448]  # (384, 384, 3), the face near the top middle
    source = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(source)
    driving = tmp_path / "driving.mp4"
    with VideoWriter(driving, 25, 240, 240, preset="veryfast") as w:
        for i in range(6):  # a window panning over the face
            w.write(np.ascontiguousarray(astronaut[10 + 2 * i : 250 + 2 * i, 60 + 3 * i : 300 + 3 * i]))
    out = tmp_path / "out.mp4"
    stats = reenact_video(tiny_model, source, driving, out, crop=True, device="cpu", progress=False)
    info = probe(out)
    assert (info.width, info.height, info.num_frames) == (384, 384, 6) == (stats.width, stats.height, stats.frames)
    first = next(iter_frames(out)).astype(int)
    _, box = crop_image(astronaut, size=S)  # the same detector and defaults as reenact_video
    inside = np.zeros(astronaut.shape[:2], bool)
    inside[box.y : box.y + box.side, box.x : box.x + box.side] = True
    assert 0.02 < inside.mean() < 0.8
    outside_err = np.abs(first[~inside] - astronaut[~inside]).mean()
    inside_err = np.abs(first[inside] - astronaut[inside]).mean()
    assert outside_err < 4 and inside_err > 4 * outside_err  # untouched outside the face box, changed inside
    # soft paste-back (the default): the box's border is the source's own, the hard square's is not
    hard = tmp_path / "hard.mp4"
    reenact_video(tiny_model, source, driving, hard, crop=True, device="cpu", progress=False, paste="hard")
    hard_first = next(iter_frames(hard)).astype(int)
    ring = inside.copy()
    ring[box.y + 2 : box.y + box.side - 2, box.x + 2 : box.x + box.side - 2] = False  # the box's outer 2 pixels
    soft_ring, hard_ring = (np.abs(f[ring] - astronaut[ring]).mean() for f in (first, hard_first))
    assert soft_ring < 4 and hard_ring > 3 * soft_ring, (soft_ring, hard_ring)
    with pytest.raises(ValueError, match="paste"):
        reenact_video(tiny_model, source, driving, tmp_path / "x.mp4", crop=True, paste="blend")
