"""Video I/O: probe, lazy decoding, resizing, frame folders, the H.264 writer with audio, tensor helpers."""

from __future__ import annotations

import logging
import subprocess
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

from imf.data.video import VideoWriter, iter_frames, probe, resize_center_crop, to_tensor, to_uint8
from imf.errors import InputError

W, H, N, FPS = 80, 60, 32, 25


def moving_square(i: int, w: int = W, h: int = H) -> np.ndarray:
    """A smooth gradient background with a bright square moving right: frame i of a test clip."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 96)], axis=-1).astype(np.uint8)
    frame[20:36, 2 * i : 2 * i + 16] = (250, 240, 40)
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    with VideoWriter(path, FPS, W, H, crf=12, preset="veryfast") as writer:
        for i in range(N):
            writer.write(moving_square(i))
    return str(path)


def write_with_sine(path, seconds: float = 2.0, rate: int = 16000, fps: int = 25) -> None:
    """A video with a 440 Hz mono sine audio track, written with PyAV directly."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = W, H, "yuv420p"
    audio = out.add_stream("aac", rate=rate)
    audio.layout = "mono"
    for i in range(int(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(moving_square(i % 30), format="rgb24")
        frame.pts = i
        for packet in video.encode(frame):
            out.mux(packet)
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # (1, samples) planar
    aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
    aframe.sample_rate, aframe.pts, aframe.time_base = rate, 0, Fraction(1, rate)
    for packet in audio.encode(aframe):
        out.mux(packet)
    for stream in (audio, video):
        for packet in stream.encode(None):
            out.mux(packet)
    out.close()


def test_probe(clip):
    info = probe(clip)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (W, H, N, False)
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(N / FPS, abs=0.05)


def test_probe_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 50)
    with pytest.raises(InputError, match="not a readable video"):
        probe(junk)
    empty = tmp_path / "empty.mkv"  # a container with a video stream and no frame
    out = av.open(str(empty), "w")
    stream = out.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    out.start_encoding()
    out.close()
    with pytest.raises(InputError):
        probe(empty)
    (tmp_path / "frames").mkdir()
    with pytest.raises(InputError, match="no png/jpg"):
        probe(tmp_path / "frames")


def test_writer_round_trip_and_exact_ranges(clip):
    frames = list(iter_frames(clip))
    assert len(frames) == N and frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    errors = [np.abs(f.astype(int) - moving_square(i).astype(int)).mean() for i, f in enumerate(frames)]
    assert max(errors) < 3.0, errors  # crf 12: close to what was written
    part = list(iter_frames(clip, start=5, stop=9))
    assert len(part) == 4
    for k, f in enumerate(part):
        np.testing.assert_array_equal(f, frames[5 + k])


def test_iter_frames_resize(clip):
    small = list(iter_frames(clip, size=24, stop=3))
    assert len(small) == 3 and small[0].shape == (24, 24, 3)
    full = next(iter_frames(clip))
    expected = np.asarray(Image.fromarray(full[:, 10:70]).resize((24, 24), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(small[0], expected)


def test_resize_center_crop_keeps_the_centre():
    frame = np.zeros((60, 80, 3), np.uint8)
    frame[:, :10] = (255, 0, 0)
    frame[:, 70:] = (0, 0, 255)
    frame[:, 10:70] = (0, 200, 0)
    crop = resize_center_crop(frame, 60)
    assert crop.shape == (60, 60, 3) and (crop == (0, 200, 0)).all()
    small = resize_center_crop(frame, 15)
    assert small.shape == (15, 15, 3) and np.abs(small.astype(int) - (0, 200, 0)).max() <= 1
    tall = resize_center_crop(np.zeros((90, 30, 3), np.uint8), 10)
    assert tall.shape == (10, 10, 3)


def test_odd_size_is_padded(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 10, 81, 61) as writer:
        assert (writer.out_width, writer.out_height) == (82, 62)
        for i in range(4):
            writer.write(moving_square(i, 81, 61))
    info = probe(path)
    assert (info.width, info.height, info.num_frames) == (82, 62, 4)
    first = next(iter_frames(path))
    assert np.abs(first[:61, :81].astype(int) - moving_square(0, 81, 61)).mean() < 3.0


def test_writer_rejects_bad_frames_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="expected a uint8 frame"):
        with VideoWriter(path, 10, 32, 32) as writer:
            writer.write(np.zeros((32, 32, 3), np.float32))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="can only write"):
        VideoWriter(tmp_path / "x.gif", 10, 32, 32)


def test_frame_folder_natural_order_and_single_image(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10, 11):  # name order would put 10 and 11 before 2
        Image.fromarray(np.full((20, 30, 3), i * 20, np.uint8)).save(folder / f"f{i}.png")
    (folder / "notes.txt").write_text("ignored")
    info = probe(folder)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (30, 20, 4, False)
    values = [int(f[0, 0, 0]) for f in iter_frames(folder)]
    assert values == [20, 40, 200, 220]
    assert [int(f[0, 0, 0]) for f in iter_frames(folder, start=1, stop=3)] == [40, 200]
    single = list(iter_frames(folder / "f2.png", size=8))
    assert len(single) == 1 and single[0].shape == (8, 8, 3)
    assert probe(folder / "f2.png").num_frames == 1


def test_tensor_helpers_round_trip():
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    x = to_tensor(frames)
    assert x.shape == (2, 3, 5, 7) and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.equal(x[1, :, 2, 3], torch.tensor(frames[1, 2, 3], dtype=torch.float32) / 255)
    np.testing.assert_array_equal(to_uint8(x), frames)
    np.testing.assert_array_equal(to_uint8(x[0]), frames[0])
    assert to_tensor(list(frames)).shape == (2, 3, 5, 7)
    assert to_tensor(frames[0]).shape == (1, 3, 5, 7)
    assert (to_uint8(torch.full((1, 3, 2, 2), 1.7)) == 255).all()
    with pytest.raises(ValueError):
        to_tensor(frames.astype(np.float32))


def test_audio_is_kept(tmp_path):
    source = tmp_path / "talk.mp4"
    write_with_sine(source, seconds=2.0)
    assert probe(source).has_audio
    out = tmp_path / "out.mp4"
    with VideoWriter(out, FPS, W, H, audio_from=source) as writer:
        for i in range(FPS):  # one second of video
            writer.write(moving_square(i))
    info = probe(out)
    assert info.has_audio and info.num_frames == FPS
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
        duration = float(stream.duration * stream.time_base)
    assert duration == pytest.approx(1.0, abs=0.05)
    rms = float(np.sqrt(np.mean(samples**2)))
    assert 0.25 < rms < 0.45  # the 0.5-amplitude sine (rms 0.354), not silence


def test_audio_from_a_silent_video_writes_video_only(clip, tmp_path, caplog):
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.WARNING):
        with VideoWriter(out, FPS, W, H, audio_from=clip) as writer:
            writer.write(moving_square(0))
    assert "no audio stream" in caplog.text
    assert not probe(out).has_audio


def test_rotation_metadata_is_applied_like_ffmpeg(clip, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    rotated = tmp_path / "rotated.mp4"
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-display_rotation", "90", "-i", clip, "-c", "copy",
                    str(rotated)], check=True)
    info = probe(rotated)
    assert (info.width, info.height) == (H, W)
    raw = subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(rotated), "-f", "rawvideo", "-pix_fmt", "rgb24",
                          "-"], check=True, capture_output=True).stdout
    theirs = np.frombuffer(raw, np.uint8).reshape(-1, W, H, 3)  # ffmpeg rotates on decode, like players
    ours = np.stack(list(iter_frames(rotated)))
    assert ours.shape == theirs.shape
    assert np.abs(ours.astype(int) - theirs).mean() < 1.0
