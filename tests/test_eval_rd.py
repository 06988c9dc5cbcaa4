"""End-to-end RD study and self-reconstruction evaluation with a random-weight tiny-64 model.

Kept small (3–4 frames, 2 points per codec, cheap metrics) so that the file runs in well under a minute
on 2 CPU cores; the numbers are meaningless, the plumbing is what is checked.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import imf
from imf.eval.rd import OURS, reach_notes, RDPoint, run_rd, write_lossless

FPS = 24000 / 1001


def _clip(n: int, h: int = 64, w: int = 80) -> np.ndarray:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    frames = []
    for t in range(n):
        base = np.stack([128 + 80 * np.sin((xx + 3 * t) / 8), 128 + 80 * np.cos((yy + t) / 6),
                         128 + 50 * np.sin((xx - yy + t) / 10)], -1)
        frames.append(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny-64 checkpoint with codec tables (qualities 2 and 8) and an 80×64 clip (centre-cropped to 64²)."""
    from imf.codec.fit import fit_codec

    root = tmp_path_factory.mktemp("rd")
    torch.manual_seed(0)
    model = imf.IMF(imf.IMFConfig.preset("tiny-64")).eval()
    ckpt = root / "ckpt"
    model.save_pretrained(ckpt)
    clip = _clip(6)
    fit_codec(model, [clip[:, :, 8:72]], qualities=(2, 8), progress=False).save(ckpt)
    video = write_lossless(clip, FPS, root / "clip.mkv")
    return ckpt, video, clip


def test_lossless_intermediate_is_exact(setup):
    from imf.data.video import iter_frames, probe

    _, video, clip = setup
    assert np.array_equal(np.stack(list(iter_frames(video))), clip)
    assert probe(video).fps == pytest.approx(FPS, rel=1e-4)


def test_rd_run_holds_every_codec(setup, tmp_path):
    ckpt, video, _ = setup
    out = tmp_path / "rd"
    asked = ["x264", "x265", "av1", "vvc"]
    run_rd(ckpt, [video], out, codecs=asked + ["nosuchcodec"],
           crfs={"x264": [30, 45], "x265": [30, 45], "av1": [50, 63], "vvc": [45, 60]},
           max_frames=3, metrics=("psnr", "lpips_alex"), with_vmaf=False, progress=False)
    data = json.loads((out / "rd.json").read_text())
    codecs = {p["codec"] for p in data["points"]}
    assert codecs == {OURS, *asked}
    assert any("unknown codec 'nosuchcodec'" in n for n in data["notes"])
    for p in data["points"]:
        assert p["num_frames"] == 3 and p["size"] == 64
        assert set(p["quality"]) == {"psnr", "lpips_alex"}
        assert p["bpp"] > 0 and p["kbps"] > 0
        assert p["bpp"] == pytest.approx(p["rate_bits"] / (3 * 64 * 64))
    ours = [p for p in data["points"] if p["codec"] == OURS]
    assert sorted(p["value"] for p in ours) == [2, 8]
    assert all(p["extra"]["num_keyframes"] == 1 for p in ours)
    assert all(p["rates"]["bpp_tokens"] < p["rates"]["bpp_total"] for p in ours)
    for codec in asked:  # a higher CRF/QP never costs more bits
        pts = sorted((p for p in data["points"] if p["codec"] == codec), key=lambda p: p["value"])
        assert pts[1]["rate_bits"] < pts[0]["rate_bits"]
        assert all(p["extra"]["payload_bytes"] <= p["extra"]["file_bytes"] for p in pts)
    # BD rows for every codec and metric, each with a value or a reason.
    assert {(r["anchor"], r["metric"]) for r in data["bd"]} == {(c, m) for c in asked for m in ("psnr", "lpips_alex")}
    assert all((r["bd_rate_percent"] is not None) or r["bd_rate_note"] for r in data["bd"])
    with open(out / "rd_points.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["points"]) == 2 + 4 * 2
    assert (out / "rd_report.md").read_text().count("| IMF (ours) |") == 2
    for name in ("rd_clip_lpips_bpp.png", "rd_clip_psnr_kbps.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reach_notes_say_when_a_codec_cannot_go_as_low():
    def pt(codec, kbps):
        return RDPoint("v.mp4", codec, codec, "q", 1, 10, 64, 25.0, 1, 0.1, kbps, {}, {})

    points = [pt(OURS, 1.0), pt(OURS, 2.0), pt("x265", 8.0), pt("x265", 20.0), pt("x264", 1.5)]
    notes = reach_notes(points, "v.mp4", ["x265", "x264"])
    assert len(notes) == 2
    assert "x265's lowest rate" in notes[0] and "share no rate range" in notes[0]
    assert "x264's lowest rate" in notes[1] and "only our codec has points" in notes[1]


def test_imf_eval_cli_json_has_the_metrics(setup, tmp_path):
    from imf.cli import main

    ckpt, video, _ = setup
    out_json, out_md, cmp = tmp_path / "e.json", tmp_path / "e.md", tmp_path / "cmp"
    code = main(["eval", "--ckpt", str(ckpt), str(video), "--json", str(out_json), "--markdown", str(out_md),
                 "--max-frames", "4", "--ref-frame", "1", "--no-fid", "--compare", str(cmp), "--quiet"])
    assert code == 0
    data = json.loads(out_json.read_text())
    expected = {"l1", "psnr", "ssim", "ms_ssim", "lpips_vgg", "lpips_alex"}
    assert set(data["mean"]) == expected and set(data["copy_mean"]) == expected
    (video_row,) = data["videos"]
    assert video_row["num_frames"] == 3 and video_row["ref_frame"] == 1
    assert all(np.isfinite(v) for v in data["mean"].values())
    assert data["mean"] != data["copy_mean"]
    assert data["fid"] is None and any("FID" in n for n in data["notes"])
    md = out_md.read_text()
    assert "| IMF (ours) |" in md and "| Copy the reference (floor) |" in md
    from imf.data.video import probe

    side = probe(cmp / "clip_compare.mp4")
    assert (side.width, side.height, side.num_frames) == (3 * 64, 64, 3)


def test_imf_eval_rejects_a_bad_reference_frame(setup, capsys):
    from imf.cli import main

    ckpt, video, _ = setup
    code = main(["eval", "--ckpt", str(ckpt), str(video), "--max-frames", "3", "--ref-frame", "5", "--no-fid", "--quiet"])
    assert code == 2
    assert "--ref-frame 5" in capsys.readouterr().err


def test_bd_table_reports_what_it_cannot_fit_instead_of_crashing():
    from imf.eval.rd import bd_table

    def pt(codec, bits, psnr):
        return RDPoint("v.mp4", codec, codec, "q", 1, 10, 64, 25.0, bits, bits / 1e4, bits / 1e3, {},
                       {"psnr": psnr})

    points = [pt(OURS, 1000, 20.0), pt(OURS, 2000, float("inf")), pt("x264", 1500, 21.0), pt("x264", 3000, 25.0)]
    rows = bd_table(points, "v.mp4", "x264", ["psnr"])
    assert rows and all(r["bd_rate_percent"] is None and "not computed" in r["bd_rate_note"] for r in rows)


def test_per_frame_psnr_is_finite_on_an_exact_frame():
    from imf.eval.reconstruct_eval import FrameScorer

    x = torch.rand(2, 3, 32, 32)
    scores = FrameScorer(["psnr", "l1"], device="cpu").score(x, x.clone())
    assert np.allclose(scores["psnr"], 100.0) and np.all(scores["l1"] == 0)
