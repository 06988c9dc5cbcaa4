"""The codec end to end with the tiny-64 IMF (random weights): closed loop, keyframe decisions, rates."""

import numpy as np
import pytest
import torch

import imf
from imf.codec import decode_file, encode_frames, fit_codec, read_header
from imf.errors import BitstreamError, CheckpointError

S = 64


def synthetic_clip(n, background, seed):
    """A bright blob moving over a flat background with mild noise: uint8 (n, 64, 64, 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:S, 0:S]
    frames = []
    for t in range(n):
        cx, cy = 32 + 10 * np.sin(t / 4 + seed), 32 + 8 * np.cos(t / 5)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 9.0**2))[..., None]  # (S, S, 1)
        img = np.array(background) * (1 - blob) + np.array([230, 190, 160]) * blob + rng.normal(0, 3, (S, S, 3))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = imf.IMF(imf.IMFConfig.preset("tiny-64")).eval()
    a = synthetic_clip(12, (40, 60, 120), 0)
    b = synthetic_clip(12, (150, 40, 30), 1)
    tables = fit_codec(model, [a, b], qualities=(3, 8), progress=False)
    return model, tables, a, b


def test_spliced_clip_decodes_to_the_encoders_reconstruction(setup, tmp_path):
    model, tables, a, b = setup
    clip = np.concatenate([a[:4], b[:4]])  # a cut at frame 4
    recon = {}
    out = tmp_path / "clip.imf"
    stats = encode_frames(model, clip, out, fps=25, tables=tables, quality=8, entropy="temporal",
                          packet_frames=2, progress=False, on_frame=lambda i, f: recon.__setitem__(i, f))
    assert stats.keyframe_indices == [0, 4]
    assert stats.num_frames == 8 and stats.num_packets == 4  # frames 1-2, 3 | 5-6, 7
    assert read_header(out).frame_count == 8
    decoded = decode_file(out, model, tables=tables)
    first = next(decoded)  # frames come out before the file is read to its end
    frames = [first, *decoded]
    assert len(frames) == 8
    for i, frame in enumerate(frames):
        assert torch.equal(torch.from_numpy(frame), torch.from_numpy(recon[i])), f"frame {i} differs"
    # every bit accounted for, and the range coder within 2% of the tables' estimate (+ packet framing)
    assert stats.total_bytes == out.stat().st_size
    assert stats.header_bits + stats.keyframe_bits + stats.token_bits == 8 * stats.total_bytes
    coded = stats.token_bits - 8 * stats.num_packets  # minus each packet's frame-count byte
    assert 0.98 * stats.estimated_token_bits <= coded <= 1.02 * stats.estimated_token_bits + 64 * stats.num_packets
    d = stats.to_dict()
    assert d["bpp_tokens"] == pytest.approx(stats.token_bits / (8 * S * S))
    assert d["kbps_total"] == pytest.approx(8 * stats.total_bytes / (8 / 25) / 1000)


def test_long_packets_are_synthesised_in_chunks_on_both_sides(setup, tmp_path):
    """A packet of 11 frames goes through the model in chunks of 8 and 3, in the encoder's closed loop and in
    the decoder alike: the frames match bit for bit, come out in order, and the per-frame keyframe test
    (min_quality_psnr, each frame synthesised alone) does not change what on_frame receives."""
    from imf.codec.decoder import SYNTHESIS_BATCH

    model, tables, a, _ = setup
    clip = a[:12]
    assert 11 > SYNTHESIS_BATCH
    for floor in (None, 1.0):  # 1 dB: a test every frame passes
        recon, order = {}, []
        out = tmp_path / f"long{floor}.imf"
        stats = encode_frames(model, clip, out, fps=25, tables=tables, quality=8, packet_frames=11,
                              scene_cut_threshold=None, min_quality_psnr=floor, progress=False,
                              on_frame=lambda i, f: (recon.__setitem__(i, f), order.append(i)))
        assert stats.keyframe_indices == [0] and stats.num_packets == 1
        assert order == list(range(12))
        frames = list(decode_file(out, model, tables=tables))
        assert len(frames) == 12
        for i, frame in enumerate(frames):
            assert np.array_equal(frame, recon[i]), f"frame {i} differs"


def test_given_tokens_give_the_same_file(setup, tmp_path):
    """imf rd runs E_T once for all qualities (frame_tokens): the files are those E_T frame by frame makes."""
    from imf.codec.encoder import frame_tokens
    from imf.errors import InputError

    model, tables, a, b = setup
    clip = np.concatenate([a[:5], b[:4]])
    tokens = frame_tokens(model, clip)
    assert tokens.shape == (9, model.config.d_m)
    for q in (3, 8):
        plain, given = tmp_path / f"plain{q}.imf", tmp_path / f"given{q}.imf"
        encode_frames(model, clip, plain, fps=25, tables=tables, quality=q, progress=False)
        encode_frames(model, clip, given, fps=25, tables=tables, quality=q, progress=False, tokens=tokens)
        assert given.read_bytes() == plain.read_bytes()
    with pytest.raises(InputError, match="frame 4: no token"):
        encode_frames(model, clip, tmp_path / "short.imf", fps=25, tables=tables, quality=3, progress=False,
                      tokens=tokens[:4])
    assert not (tmp_path / "short.imf").exists()


def test_static_mode_interval_and_psnr_keyframes(setup, tmp_path):
    model, tables, a, _ = setup
    clip = a[:5]
    stats = encode_frames(model, clip, tmp_path / "a.imf", fps=25, tables=tables, quality=3, entropy="static",
                          max_keyframe_interval=2, progress=False)
    assert stats.keyframe_indices == [0, 2, 4]
    # an untrained model reconstructs badly: a demanding PSNR floor turns every frame into a keyframe
    stats = encode_frames(model, clip[:2], tmp_path / "b.imf", fps=25, tables=tables, quality=3,
                          min_quality_psnr=60.0, progress=False)
    assert stats.keyframe_indices == [0, 1] and stats.token_bits == 0
    frames = list(decode_file(tmp_path / "b.imf", model, tables=tables))
    assert len(frames) == 2 and all(f.shape == (S, S, 3) for f in frames)


def test_another_model_or_missing_quality_is_refused(setup, tmp_path):
    model, tables, a, _ = setup
    out = tmp_path / "a.imf"
    encode_frames(model, a[:2], out, fps=25, tables=tables, quality=3, progress=False)
    torch.manual_seed(1)
    other = imf.IMF(imf.IMFConfig.preset("tiny-64")).eval()
    with pytest.raises(BitstreamError) as info:
        next(decode_file(out, other, tables=tables))
    message = str(info.value)
    assert read_header(out).model_hash[:16] in message and imf.model_hash(other)[:16] in message
    with pytest.raises(CheckpointError, match="fitted for model"):
        encode_frames(other, a[:2], tmp_path / "c.imf", fps=25, tables=tables, quality=3, progress=False)
    with pytest.raises(CheckpointError, match="quality 5"):
        encode_frames(model, a[:2], tmp_path / "c.imf", fps=25, tables=tables, quality=5, progress=False)
    assert not (tmp_path / "c.imf").exists() and not list(tmp_path.glob(".*partial"))
