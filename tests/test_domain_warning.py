"""The out-of-domain warning (imf.eval.domain): the comparison itself, and `imf reconstruct`, `imf encode` and
`imf eval` printing it once when a random tiny-64 model loses to copying the reference, and not otherwise."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

import imf
from imf.cli import main
from imf.data.video import VideoWriter
from imf.eval.domain import CopyComparer, CopyComparison, out_of_domain_message, warn_if_out_of_domain

N = 8
WARNING = "below copying the reference frame"


def face_like(i: int, w: int = 80, h: int = 64) -> np.ndarray:
    """Frame i of a talking-head-like clip: a skin-coloured ellipse on a gradient, its 'mouth' opening."""
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 200 // w + 30, y * 150 // h + 50, np.full_like(x, 110)], -1).astype(np.uint8)
    frame[((x - w / 2) / 20) ** 2 + ((y - h / 2) / 26) ** 2 < 1] = (220, 170, 140)
    frame[40:42 + i % 4, w // 2 - 6 : w // 2 + 6] = (120, 40, 50)
    return frame


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("domain")
    torch.manual_seed(0)
    imf.IMF(imf.IMFConfig.preset("tiny-64")).save_pretrained(root / "ckpt")
    clip = root / "clip.mp4"
    with VideoWriter(clip, 25, 80, 64, preset="veryfast") as w:
        for i in range(N):
            w.write(face_like(i))
    return {"root": root, "ckpt": str(root / "ckpt"), "clip": str(clip)}


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if WARNING in line]


# ------------------------------------------------------------------------------------------ the comparison
def test_comparer_matches_a_hand_computed_psnr():
    frame = np.full((4, 4, 3), 100, np.uint8)
    out = np.full((4, 4, 3), 110, np.uint8)  # error 10 everywhere: MSE 100
    ref = np.full((4, 4, 3), 80, np.uint8)  # error 20: MSE 400
    c = CopyComparer("x")
    c.add(frame, out, ref)
    c.add(frame, frame, ref)  # a perfect frame: the mean MSE is 50, not 0
    r = c.result()
    assert r.frames == 2 and r.name == "x"
    assert r.model_psnr == pytest.approx(10 * math.log10(255**2 / 50))
    assert r.copy_psnr == pytest.approx(10 * math.log10(255**2 / 400))
    assert not r.model_loses
    assert CopyComparer().result() is None
    with pytest.raises(ValueError, match="shapes differ"):
        c.add(frame, out[:2], ref)


def test_message_is_one_line_and_only_when_the_model_loses():
    lose, win = CopyComparison(12.34, 18.06, 10, "a.mp4"), CopyComparison(25.0, 18.0, 10, "b.mp4")
    line = out_of_domain_message([lose])
    assert line == ("warning: on this video the model scores 12.3 dB PSNR, below copying the reference frame "
                    "(18.1 dB): the subject may be outside what the model learned")
    several = out_of_domain_message([lose, win, None])
    assert "1 of 2 videos (a.mp4)" in several and "\n" not in several
    assert out_of_domain_message([win]) is None
    buf = io.StringIO()
    assert warn_if_out_of_domain(win, file=buf) is False and buf.getvalue() == ""
    assert warn_if_out_of_domain(None, file=buf) is False
    assert warn_if_out_of_domain(lose, file=buf) is True and buf.getvalue() == line + "\n"


# ------------------------------------------------------------------------------------------ the commands
def test_reconstruct_warns_once_for_a_random_model(work, capsys):
    out = work["root"] / "recon.mp4"
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--quiet"]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("warning: on this video the model scores"), lines


def test_reconstruct_stays_quiet_when_the_model_wins(work, capsys, monkeypatch):
    from imf.data.video import to_tensor
    from imf.pipeline import Pipeline

    original = Pipeline.decode_stream

    def perfect(self, frames, reference, source_token=None):  # outputs = the true frames
        for x, _ in original(self, frames, reference, source_token):
            yield x, to_tensor(x)[0]

    monkeypatch.setattr(Pipeline, "decode_stream", perfect)
    out = work["root"] / "perfect.mp4"
    assert main(["reconstruct", "--ckpt", work["ckpt"], work["clip"], "-o", str(out), "--quiet"]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_encode_warns_once_from_its_closed_loop(work, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))  # the codec's model registry
    ckpt = tmp_path / "ckpt"
    torch.manual_seed(0)
    imf.IMF(imf.IMFConfig.preset("tiny-64")).save_pretrained(ckpt)
    assert main(["codec", "fit", "--ckpt", str(ckpt), "--data", work["clip"], "--qualities", "5", "--quiet"]) == 0
    out, stats = tmp_path / "clip.imf", tmp_path / "stats.json"
    assert main(["encode", work["clip"], "--ckpt", str(ckpt), "-o", str(out), "--quality", "5", "--quiet",
                 "--json", str(stats)]) == 0
    assert len(_warnings(capsys.readouterr().err)) == 1
    import json

    check = json.loads(stats.read_text())["copy_check"]
    assert check["frames"] == N - 1 and check["model_psnr"] < check["copy_psnr"]


def test_eval_warns_once(work, capsys):
    assert main(["eval", "--ckpt", work["ckpt"], work["clip"], work["clip"], "--no-fid", "--quiet"]) == 0
    lines = _warnings(capsys.readouterr().err)
    assert len(lines) == 1 and "2 of 2 videos (clip.mp4, clip.mp4)" in lines[0], lines
