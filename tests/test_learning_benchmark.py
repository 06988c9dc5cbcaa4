"""benchmarks/learning.py on a tiny synthetic corpus: both subcommands write their files, the baselines are
the hand-computed ones, and deleted or broken checkpoints are skipped."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import imf
from imf.train.checkpointing import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
S = 64
CLIPS = (("train/p1_000", "p1", "train", 10), ("heldout_frames/p1_tail_000", "p1", "heldout_frames", 7),
         ("heldout_people/p2_000", "p2", "heldout_people", 7))


def benchmark():
    spec = importlib.util.spec_from_file_location("learning_benchmark", ROOT / "benchmarks" / "learning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clip_frames(n: int, seed: int) -> np.ndarray:
    """(n, S, S, 3) uint8: a noisy image brightening over time."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 180, (S, S, 3))
    return np.stack([np.clip(base + 7 * t + rng.integers(-8, 9, (S, S, 3)), 0, 255) for t in range(n)]).astype(np.uint8)


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    """A corpus folder of png frame folders (lossless, so the baselines can be computed by hand)."""
    root, frames, entries = tmp_path / "corpus", {}, []
    for seed, (path, person, split, n) in enumerate(CLIPS):
        frames[split] = clip_frames(n, seed)
        (root / path).mkdir(parents=True)
        for t, f in enumerate(frames[split]):
            Image.fromarray(f).save(root / path / f"{t:04d}.png")
        entries.append({"clip": f"{person}.mp4", "person": person, "split": split, "source_frames": [0, n],
                        "frames": n, "fps": 25.0, "seconds": n / 25, "path": path})
    (root / "manifest.json").write_text(json.dumps({"complete": True, "clips": entries, "stills": []}))
    return root, frames


def psnr(pred: np.ndarray, truth: np.ndarray) -> float:
    """PSNR of the mean MSE over frames, uint8 in [0, 255] mapped to [0, 1]."""
    return 10 * math.log10(1 / np.mean((pred / 255.0 - truth / 255.0) ** 2))


def test_curve_and_report_on_a_tiny_corpus(tmp_path, corpus, monkeypatch, capsys):
    root, frames = corpus
    learning = benchmark()
    torch.manual_seed(0)
    config = imf.IMFConfig.preset("tiny-64")
    model = imf.IMF(config).eval()
    model.save_pretrained(tmp_path / "model")
    run, out = tmp_path / "run", tmp_path / "out"
    # a checkpoint as the trainer writes it (only what the EMA generator needs), a broken one, and one that is
    # listed but deleted before it is loaded (keep-last-K)
    ckpt = save_checkpoint(run, 3, {"step": 3, "ema": model.state_dict(),
                                    "config": json.dumps({"model": config.to_dict()})}, keep=2)
    (run / "checkpoints" / "step_00000005.pt").write_bytes(b"half a checkpoint")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / f"events.out.tfevents.{int(ckpt.stat().st_mtime) - 120}.host.1.0").touch()
    listed = learning.list_checkpoints
    monkeypatch.setattr(learning, "list_checkpoints", lambda r: [run / "checkpoints" / "step_00000001.pt", *listed(r)])

    common = ["--corpus", str(root), "--out", str(out), "--mean-frames", "5"]
    learning.main(["curve", "--run", str(run), "--frames-per-clip", "4", *common])
    assert "skipped step_00000001.pt" in capsys.readouterr().out
    data = json.loads((out / "learning_curve.json").read_text())
    assert (out / "learning_curve.png").stat().st_size > 0
    assert [p["step"] for p in data["curve"]] == [3] and data["curve"][0]["minutes"] == pytest.approx(2, abs=0.05)
    assert data["machine"]["torch_threads"] >= 1
    # frames 0, 2, 4, 6 of the 7 (0 is the reference); mean frame: training frames 0, 2, 4, 6, 8 (10 // 5 = 2)
    mean = frames["train"][::2].astype(np.float64).mean(0)
    for split in ("heldout_frames", "heldout_people"):
        x = frames[split][[2, 4, 6]].astype(np.float64)
        point = data["curve"][0]["splits"][split]
        assert point["copy"]["psnr"] == pytest.approx(psnr(frames[split][:1], x), abs=1e-3)
        assert point["copy"]["l1"] == pytest.approx(np.abs(x - frames[split][0]).mean() / 255, abs=1e-5)
        assert point["mean_frame"]["psnr"] == pytest.approx(psnr(mean, x), abs=1e-3)
        assert point["copy"] == data["baselines"][split]["copy"]
    learning.main(["curve", "--run", str(run), "--frames-per-clip", "4", *common])  # nothing new: unchanged
    assert [p["step"] for p in json.loads((out / "learning_curve.json").read_text())["curve"]] == [3]

    try:  # LPIPS and dlib where their weights are at hand (they are fetched on first use)
        from imf.eval.lpips import LPIPS

        LPIPS("alex")
        lpips = "alex"
    except Exception:
        lpips = "none"
    identity = [] if learning.identity_scorer() is not None else ["--no-identity"]
    learning.main(["report", "--model", str(tmp_path / "model"), "--lpips", lpips, "--swap-frames", "2", *identity,
                   *common])
    report = json.loads((out / "learning_report.json").read_text())
    assert (out / "learning_frames.png").stat().st_size > 0
    people = report["splits"]["heldout_people"]["summary"]
    assert people["copy"]["frames"] == 6
    assert people["copy"]["psnr"] == pytest.approx(psnr(frames["heldout_people"][:1], frames["heldout_people"][1:]),
                                                   abs=1e-3)
    assert ("lpips" in people["model"]) == (lpips != "none")
    assert set(report["goals"]) == {"heldout_people", "heldout_frames", "all_met"}
    assert isinstance(report["goals"]["heldout_frames"]["met"], bool)
    for split in ("heldout_frames", "heldout_people"):  # each goal reads its own split's figures
        summary = report["splits"][split]["summary"]
        assert report["goals"][split]["gain_over_copy_db"] == pytest.approx(
            summary["model"]["psnr"] - summary["copy"]["psnr"])
    assert (report["swap_test"] is None) == bool(identity)
    assert report["table"][0].startswith("split")


def test_compare_frames_shows_each_model_on_the_same_frames(corpus, tmp_path, tiny_model):
    """benchmarks/compare_frames.py: a model folder and a training checkpoint, one row each under the truth;
    the JSON's PSNR is the mean over the shown frames."""
    from imf.eval.metrics import psnr_uint8
    from imf.pipeline import Pipeline

    spec = importlib.util.spec_from_file_location("compare_frames", ROOT / "benchmarks" / "compare_frames.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root, frames = corpus
    model_dir = tmp_path / "model"
    tiny_model.save_pretrained(model_dir)
    ckpt = save_checkpoint(tmp_path / "run", 3, {"step": 3, "ema": tiny_model.state_dict(),
                                                 "config": json.dumps({"model": tiny_model.config.to_dict()})}, keep=2)
    out = tmp_path / "cmp" / "frames.png"
    module.main([str(root / "heldout_people" / "p2_000"), "--models", str(model_dir), str(ckpt),
                 "--labels", "a", "b", "--count", "3", "--scale", "2", "--out", str(out)])
    image = Image.open(out)
    assert image.size == (4 * S * 2, 3 * S * 2)  # reference + 3 frames; truth + 2 models
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["frames"] == [1, 3, 6]
    clip = frames["heldout_people"]
    rebuilt = list(Pipeline(tiny_model.eval(), device="cpu", precision="fp32").reconstruct(clip[[1, 3, 6]], clip[0]))
    expected = np.mean([psnr_uint8(r, clip[i]) for r, i in zip(rebuilt, (1, 3, 6))])
    assert info["mean_psnr_db"]["a"] == pytest.approx(expected) and info["mean_psnr_db"]["b"] == pytest.approx(expected)
    with pytest.raises(SystemExit):
        module.main([str(root / "heldout_people" / "p2_000"), "--models", str(model_dir), "--labels", "a", "b",
                     "--out", str(out)])
