"""VMAF through ffmpeg's libvmaf on two tiny generated videos."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

from imf.errors import InputError
from imf.eval import vmaf as vmaf_mod


def _make_video(path: Path, size: str, crf: int, frames: int = 6) -> Path:
    cmd = [vmaf_mod.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
           "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10", "-frames:v", str(frames),
           "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    if not vmaf_mod.vmaf_available():
        pytest.skip("this ffmpeg binary has no libvmaf")
    d = tmp_path_factory.mktemp("vmaf")
    return {
        "ref": _make_video(d / "ref.mp4", "64x64", crf=0),
        "bad": _make_video(d / "bad.mp4", "64x64", crf=48),
        "small": _make_video(d / "small.mp4", "48x32", crf=0),
    }


def test_vmaf_identical_high_distorted_lower(videos):
    same = vmaf_mod.vmaf(videos["ref"], videos["ref"])
    worse = vmaf_mod.vmaf(videos["ref"], videos["bad"])
    assert same is not None and worse is not None
    assert 90 < same <= 100
    assert 0 <= worse < same - 20


def test_vmaf_errors_are_user_errors(videos, tmp_path):
    with pytest.raises(InputError, match="width must match"):
        vmaf_mod.vmaf(videos["ref"], videos["small"])
    with pytest.raises(InputError, match="no such video"):
        vmaf_mod.vmaf(videos["ref"], tmp_path / "missing.mp4")


def test_vmaf_without_libvmaf_returns_none(monkeypatch, tmp_path, caplog):
    a = tmp_path / "a.mp4"
    a.write_bytes(b"not looked at")
    monkeypatch.setattr(vmaf_mod, "vmaf_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger=vmaf_mod.__name__):
        assert vmaf_mod.vmaf(a, a) is None
    assert len(caplog.records) == 1 and "VMAF skipped" in caplog.records[0].getMessage()
