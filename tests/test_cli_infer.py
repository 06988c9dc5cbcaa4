"""`imf reconstruct` and `imf reenact` end to end, in-process, with a random-weight tiny-64 checkpoint and
short synthetic clips (one with an audio track)."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image

import imf
from imf.cli import main
from imf.data.video import VideoWriter, probe

N, FPS, S = 8, 20, 64


def pattern(i: int, w: int = 80, h: int = 64) -> np.ndarray:
    """Frame i of a test clip: a colour gradient with a bright square moving right."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 96)], axis=-1).astype(np.uint8)
    frame[20:36, 4 * i : 4 * i + 16] = (250, 240, 40)
    return frame


def write_with_sine(path, frames: int, fps: int, rate: int = 16000) -> None:
    """A clip of ``frames`` frames with a 440 Hz mono sine track as long as the video, written with PyAV."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 80, 64, "yuv420p"
    audio = out.add_stream("aac", rate=rate)
    audio.layout = "mono"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
        frame.pts = i
        for packet in video.encode(frame):
            out.mux(packet)
    t = np.arange(frames * rate // fps) / rate
    samples = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]  # (1, samples) planar
    aframe = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
    aframe.sample_rate, aframe.pts, aframe.time_base = rate, 0, Fraction(1, rate)
    for packet in audio.encode(aframe):
        out.mux(packet)
    for stream in (audio, video):
        for packet in stream.encode(None):
            out.mux(packet)
    out.close()


def stream_seconds(path, kind: str) -> float:
    with av.open(str(path)) as c:
        s = getattr(c.streams, kind)[0]
        return float(s.duration * s.time_base)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    torch.manual_seed(0)
    imf.IMF(imf.IMFConfig.preset("tiny-64")).save_pretrained(root / "ckpt")
    clip = root / "clip.mp4"  # 80x64 (centre-cropped to 64x64 by the pipeline), 20 fps, no audio
    with VideoWriter(clip, FPS, 80, 64, preset="veryfast") as w:
        for i in range(N):
            w.write(pattern(i))
    talk = root / "talk.mp4"  # 10 frames at 25 fps with a 0.4 s sine track
    write_with_sine(talk, 10, 25)
    face = root / "face.png"
    Image.fromarray(pattern(3, 100, 90)).save(face)
    return {"root": root, "ckpt": str(root / "ckpt"), "clip": str(clip), "talk": str(talk), "face": str(face)}


def test_reconstruct_end_to_end(work, capsys):
    out = work["root"] / "recon.mp4"
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--quiet"]) == 0
    info = probe(out)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (S, S, N, False)
    assert info.fps == pytest.approx(FPS)
    printed = capsys.readouterr().out
    from imf.pipeline import resolve_precision

    expected = resolve_precision("auto", torch.device("cpu"))  # the default: bf16 only on a CPU with fast bf16
    assert str(out) in printed and "frames/s" in printed and f"cpu ({expected})" in printed


def test_reconstruct_compare_max_frames_and_ref_frame(work, capsys):
    out = work["root"] / "compare.mp4"
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--compare",
                 "--max-frames", "5", "--ref-frame", "4", "--batch-size", "2", "--quiet"]) == 0
    info = probe(out)
    assert (info.width, info.height, info.num_frames) == (3 * S, S, 5)
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--max-frames", "5",
                 "--ref-frame", "5", "--quiet"]) == 2
    assert "reference frame 5 is outside its 5 frames" in capsys.readouterr().err


def decoded_audio(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])])


def test_reenact_image_source(work):
    out = work["root"] / "reenact.mp4"
    assert main(["reenact", "--ckpt", work["ckpt"], "--source", work["face"], "--driving", work["talk"],
                 "-o", str(out), "--relative", "--quiet"]) == 0
    info = probe(out)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (S, S, 10, True)
    assert info.fps == pytest.approx(25)


def test_reenact_keeps_the_driving_audio_whole(work):
    out = work["root"] / "reenact_audio.mp4"
    assert main(["reenact", "--ckpt", work["ckpt"], "--source", work["face"], "--driving", work["talk"],
                 "-o", str(out), "--quiet"]) == 0
    video_s, audio_s = stream_seconds(out, "video"), stream_seconds(out, "audio")
    assert video_s == pytest.approx(0.4, abs=0.02) and audio_s == pytest.approx(video_s, abs=0.03)
    ours, source = decoded_audio(out), decoded_audio(work["talk"])
    n = 4000  # 0.25 s: the same sine, sample for sample (AAC is near-transparent on a pure tone)
    assert np.corrcoef(ours[:n], source[:n])[0, 1] > 0.9


def test_reconstruct_keeps_audio_cut_to_the_video(work):
    out = work["root"] / "recon_audio.mp4"
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["talk"], "-o", str(out), "--max-frames", "5",
                 "--quiet"]) == 0
    assert probe(out).has_audio and probe(out).num_frames == 5
    assert stream_seconds(out, "audio") == pytest.approx(0.2, abs=0.03)


def test_reenact_compare_with_video_source(work):
    out = work["root"] / "reenact_compare.mp4"
    assert main(["reenact", "--ckpt", work["ckpt"], "--source", work["talk"], "--driving", work["clip"],
                 "-o", str(out), "--compare", "--quiet"]) == 0
    info = probe(out)
    assert (info.width, info.height, info.num_frames, info.has_audio) == (3 * S, S, N, False)
    assert info.fps == pytest.approx(FPS)


def test_precision_on_cpu_auto_and_bf16(work, capsys, caplog, monkeypatch):
    from imf import precision

    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda probe=True: False)  # a CPU that emulates bf16
    out = work["root"] / "bf16.mp4"
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--max-frames", "2",
                 "--quiet"]) == 0
    assert "cpu (fp32)" in capsys.readouterr().out  # auto, the default: fp32 where bf16 is slow
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--precision", "bf16",
                 "--max-frames", "2", "--quiet"]) == 0
    assert "without fast bf16" in caplog.text  # asked for: it runs, with a warning
    assert "cpu (bf16)" in capsys.readouterr().out
    assert probe(out).num_frames == 2
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda probe=True: True)
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--max-frames", "2",
                 "--quiet"]) == 0
    assert "cpu (bf16)" in capsys.readouterr().out  # auto on a CPU with fast bf16


def _bad_inputs(work, tmp):
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp / "empty_dir"
    empty.mkdir()
    zero = tmp / "zero.mkv"  # a container with a video stream and no frame
    c = av.open(str(zero), "w")
    s = c.add_stream("libx264", rate=25)
    s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
    c.start_encoding()
    c.close()
    tiny = tmp / "tiny.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tiny)
    other = tmp / "other_ckpt"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"format": "diffusers", "_class_name": "UNet2DModel"}))
    broken = tmp / "broken_ckpt"
    imf.IMF(imf.IMFConfig.preset("tiny-64")).save_pretrained(broken)
    (broken / "model.safetensors").write_bytes(b"\0" * 100)
    ckpt, clip = work["ckpt"], work["clip"]
    return {
        "missing video": (["reconstruct", "--ckpt", ckpt, str(tmp / "nope.mp4")], "nope.mp4: no such file"),
        "text as video": (["reconstruct", "--ckpt", ckpt, str(text)], "notes.mp4: not a readable video"),
        "empty folder": (["reconstruct", "--ckpt", ckpt, str(empty)], "holds no png/jpg frames"),
        "zero frames": (["reconstruct", "--ckpt", ckpt, str(zero)], "zero.mkv"),
        "too small": (["reconstruct", "--ckpt", ckpt, str(tiny)], "24x20 are too small"),
        "missing ckpt": (["reconstruct", "--ckpt", str(tmp / "nockpt"), clip], "nockpt does not exist"),
        "other format": (["reconstruct", "--ckpt", str(other), clip], "not an imf model config"),
        "broken weights": (["reconstruct", "--ckpt", str(broken), clip], "not a readable safetensors file"),
        "missing source": (["reenact", "--ckpt", ckpt, "--source", str(tmp / "nobody.png"), "--driving", clip],
                           "nobody.png: no such file"),
        "text as driving": (["reenact", "--ckpt", ckpt, "--source", work["face"], "--driving", str(text)],
                            "notes.mp4: not a readable video"),
        "no face for crop": (["reenact", "--ckpt", ckpt, "--source", work["face"], "--driving", clip, "--crop"],
                             "no face found"),
    }


def test_bad_inputs_exit_2_with_one_line(work, tmp_path, capsys):
    for name, (argv, message) in _bad_inputs(work, tmp_path).items():
        out = tmp_path / f"{name.replace(' ', '_')}.mp4"
        code = main([*argv, "-o", str(out), "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2, name
        assert len(err) == 1 and err[0].startswith(f"imf {argv[0]}: error:") and message in err[0], (name, err)
        assert not out.exists(), name


@pytest.mark.parametrize("command", ["reconstruct", "reenact"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--ckpt", "-o", "--compare", "--device", "--precision", "--batch-size", "--max-frames"):
        assert flag in text


def test_reenact_paste_flags_reach_the_library(work, monkeypatch, capsys):
    import imf.pipeline
    from imf.data.crop import DEFAULT_FEATHER
    from imf.errors import InputError

    seen = []

    def fake(*args, **kw):
        seen.append(kw)
        raise InputError("stop here")  # the arguments are all this test needs

    monkeypatch.setattr(imf.pipeline, "reenact_video", fake)
    base = ["reenact", "--ckpt", work["ckpt"], "--source", work["face"], "--driving", work["clip"], "--crop",
            "-o", str(work["root"] / "paste.mp4"), "--quiet"]
    assert main(base) == 2 and main([*base, "--paste", "hard"]) == 2 and main([*base, "--feather", "0.3"]) == 2
    assert [(kw["paste"], kw["feather"]) for kw in seen] == [("soft", DEFAULT_FEATHER), ("hard", DEFAULT_FEATHER),
                                                            ("soft", 0.3)]
    capsys.readouterr()
    for bad in (["--paste", "blend"], ["--feather", "0.7"]):
        with pytest.raises(SystemExit) as e:
            main([*base, *bad])
        assert e.value.code == 2 and ("--paste" in capsys.readouterr().err or "--feather" in bad)
    with pytest.raises(SystemExit):
        main(["reenact", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--paste {soft,hard}" in text and "soft (default)" in text and f"(default {DEFAULT_FEATHER:g})" in text
