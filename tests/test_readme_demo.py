"""The README's Python example runs as written, and `imf demo` (the README's first command) works with
the shipped model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

import imf
from imf.assets import shipped_model_path
from imf.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(block.strip().splitlines()) <= 8
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    recon, tokens = scope["recon"], scope["tokens"]
    assert tokens.shape == (4, 32) and recon.shape == (4, 3, 64, 64)
    model, frames = scope["model"], scope["frames"]
    with torch.no_grad():
        full = model(frames, frames[:1].expand(4, -1, -1, -1))
    torch.testing.assert_close(recon, full, atol=1e-5, rtol=0)


def test_shipped_model_is_small_fp16_and_has_codec_tables():
    path = shipped_model_path()
    size = sum(p.stat().st_size for p in path.iterdir())
    assert size <= 10 * 2**20, f"shipped model is {size / 2**20:.1f} MB"
    from safetensors import safe_open

    with safe_open(str(path / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F16", "I64"}
    model = imf.load_model(path)
    assert model.config == imf.IMFConfig.preset("tiny-64")
    from imf.codec.tables import has_tables

    assert has_tables(path)


def test_demo_runs_and_the_shipped_model_beats_copying(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--max-frames", "24"]) == 0
    out = capsys.readouterr().out
    assert "outputs in" in out
    result = json.loads((tmp_path / "demo.json").read_text())
    held = result["held_out"]
    # held-out frames (never trained on): the model must beat copying the reference
    assert held["psnr"] > held["copy_psnr"] and held["l1"] < held["copy_l1"]
    assert result["codec"]["num_frames"] == 24
    for name in ("reconstruction.mp4", "clip.imf", "decoded.mp4"):
        assert (tmp_path / name).stat().st_size > 0
