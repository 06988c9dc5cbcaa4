"""`imf codec fit`, `imf encode`, `imf decode`, `imf codec info` in-process, with a tiny-64 checkpoint."""

import json

import numpy as np
import pytest
import torch

import imf
import imf.codec
from imf.cli import main
from imf.data.video import VideoWriter, probe

N_FRAMES = 6


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A checkpoint with codec tables, a 6-frame 80x64 clip and its .imf file, made through the CLI."""
    root = tmp_path_factory.mktemp("codec_cli")
    mp = pytest.MonkeyPatch()
    mp.setenv("IMF_CACHE", str(root / "cache"))  # the model registry lives in the cache
    torch.manual_seed(0)
    ckpt = root / "ckpt"
    imf.IMF(imf.IMFConfig.preset("tiny-64")).save_pretrained(ckpt)
    rng = np.random.default_rng(0)
    video = root / "clip.mp4"
    with VideoWriter(video, 25, 80, 64) as w:
        for t in range(N_FRAMES):
            frame = np.full((64, 80, 3), (60 + 10 * t, 90, 140), np.uint8)
            w.write(np.clip(frame + rng.integers(0, 20, frame.shape), 0, 255).astype(np.uint8))
    assert main(["codec", "fit", "--ckpt", str(ckpt), "--data", str(video), "--qualities", "2,5", "--quiet"]) == 0
    out = root / "clip.imf"
    stats = root / "stats.json"
    assert main(["encode", str(video), "--ckpt", str(ckpt), "-o", str(out), "--quality", "5",
                 "--json", str(stats), "--quiet"]) == 0
    yield {"root": root, "ckpt": ckpt, "video": video, "imf": out, "stats": stats}
    mp.undo()


def test_encode_writes_file_and_accounting(workdir, capsys):
    stats = json.loads(workdir["stats"].read_text())
    assert stats["num_frames"] == N_FRAMES and stats["total_bytes"] == workdir["imf"].stat().st_size
    for key in ("header_bits", "keyframe_bits", "token_bits", "bpp_total", "bpp_tokens", "kbps_total",
                "kbps_tokens", "encode_fps", "estimated_token_bits"):
        assert key in stats
    assert main(["codec", "info", str(workdir["imf"]), "--json"]) == 0
    header = json.loads(capsys.readouterr().out)
    assert header["frame_count"] == N_FRAMES and header["width"] == 64 and header["fps"] == "25/1"


def test_decode_without_ckpt_finds_the_model(workdir, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(workdir["root"] / "cache"))
    out = workdir["root"] / "out.mp4"
    assert main(["decode", str(workdir["imf"]), "-o", str(out), "--quiet"]) == 0
    info = probe(out)
    assert (info.width, info.height, info.num_frames) == (64, 64, N_FRAMES)


def test_target_kbps_picks_a_fitted_quality(workdir, tmp_path, capsys):
    out = tmp_path / "t.imf"
    assert main(["encode", str(workdir["video"]), "--ckpt", str(workdir["ckpt"]), "-o", str(out),
                 "--target-kbps", "1e6", "--quiet"]) == 0
    assert "token quality 5 for a target" in capsys.readouterr().out
    assert imf.codec.read_header(out).quality == 5


def _fails(argv, capsys, match):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert match in err and len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("damage", ["flip", "truncate", "version"])
def test_damaged_file_exits_2_and_writes_nothing(workdir, tmp_path, capsys, damage):
    data = bytearray(workdir["imf"].read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x04
        match = "CRC chain broken"
    elif damage == "truncate":
        data = data[: len(data) - 7]
        match = "truncated"
    else:
        data[8] = 9
        match = "unsupported .imf format version 9"
    bad = tmp_path / "bad.imf"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.mp4"
    _fails(["decode", str(bad), "-o", str(out), "--ckpt", str(workdir["ckpt"]), "--quiet"], capsys, match)
    assert list(tmp_path.iterdir()) == [bad]  # no output, no partial file


def test_wrong_model_and_unknown_model(workdir, tmp_path, capsys, monkeypatch):
    torch.manual_seed(1)
    other = tmp_path / "other"
    imf.IMF(imf.IMFConfig.preset("tiny-64")).save_pretrained(other)
    _fails(["decode", str(workdir["imf"]), "-o", str(tmp_path / "o.mp4"), "--ckpt", str(other), "--quiet"],
           capsys, "was encoded with model")
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "empty-cache"))
    _fails(["decode", str(workdir["imf"]), "-o", str(tmp_path / "o.mp4"), "--quiet"], capsys, "pass --ckpt")
    _fails(["encode", str(workdir["video"]), "--ckpt", str(other), "-o", str(tmp_path / "x.imf"), "--quiet"],
           capsys, "no codec tables")
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "x.imf").exists()


def test_decode_of_a_shipped_model_file_needs_no_registry(workdir, tmp_path, monkeypatch):
    """A file made with the shipped model decodes on a machine that never encoded or fitted anything (an
    empty cache): the shipped model's tables name its hash."""
    from imf.assets import shipped_model_path

    made = tmp_path / "shipped.imf"
    assert main(["encode", str(workdir["video"]), "-o", str(made), "--quality", "4", "--quiet"]) == 0
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "fresh-cache"))
    out = tmp_path / "shipped.mp4"
    assert main(["decode", str(made), "-o", str(out), "--quiet"]) == 0
    assert probe(out).num_frames == N_FRAMES
    assert imf.codec.read_header(made).model_hash == imf.codec.load_tables(shipped_model_path()).model_hash
