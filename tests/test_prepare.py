"""`imf data prepare`: each data set's metadata parser on small files in the published formats, and a fake
"raw" video (made from the carphone sample clip) cut into shards end to end: the frames are exactly the
raw video's frames of each span, cropped and resized; missing and broken videos are reported, not fatal;
a re-run skips the finished clips and cleans what an interrupted run left."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imf.cli import main
from imf.data.crop import CropBox
from imf.data.prepare import celebvhq, prepare_dataset, vfhq, voxceleb
from imf.data.prepare.cut import crop_square, cut_clip
from imf.data.prepare.spec import ClipSpec
from imf.data.shards import ShardReader, load_shard_folder
from imf.data.video import VideoWriter, iter_frames, resize_center_crop
from imf.errors import InputError

SIZE = 32
RAW_ID = "abcDEF_12-3"  # a YouTube-like id (with _ and -)
N_RAW = 60  # frames of the fake raw video, at 25 fps (2.4 s)


# ------------------------------------------------------------------------------------ metadata files
def vfhq_txt(video: str = RAW_ID, crop: str | None = "40 10 130 110", frames: range = range(40, 55)) -> str:
    lines = [f"Video: {video}", "H: 144", "W: 176", "FPS: 25", "PERSON ID: 0", "CLIP: 0", "",
             "FRAME INDEX X0 Y0 X1 Y1 [Landmarks (5 Points)]", ""]
    lines += [f"{i:08d} 00000000 60 30 110 95 70 50 95 50 82 62 72 80 92 80" for i in frames]
    if crop:
        lines.append(f"CROP BBOX: {crop}")
    return "\n".join(lines) + "\n"


def vox_txt(identity: str, reference: str, first: int, last: int, box=(0.25, 0.1, 0.5, 0.6)) -> str:
    lines = [f"Identity  : \t{identity}", f"Reference : \t{reference}", "Offset    : \t1",
             "FV Conf   : \t16.647\t(1)", "ASD Conf  : \t4.465\t", "", "FRAME \tX \tY \tW \tH "]
    lines += [f"{i:06d} \t{box[0]:.3f} \t{box[1]:.3f} \t{box[2]:.3f} \t{box[3]:.3f} \t" for i in range(first, last + 1)]
    return "\n".join(lines) + "\n"


def celebvhq_json(clips: dict[str, tuple[str, float, float]]) -> dict:
    return {"meta_info": {"appearance_mapping": ["blurry", "male"], "action_mapping": ["talk"],
                          "emotion_mapping": ["neutral"]},
            "clips": {name: {"ytb_id": yt, "duration": {"start_sec": t0, "end_sec": t1},
                             "bbox": {"top": 0.05, "bottom": 0.75, "left": 0.3, "right": 0.7},
                             "attributes": {"appearance": [0, 1], "action": [1],
                                            "emotion": {"sep_flag": False, "labels": "neutral"}},
                             "version": "v0.1"} for name, (yt, t0, t1) in clips.items()}}


# ------------------------------------------------------------------------------------------ parsers
def test_vfhq_parser(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "VFHQ-Test").mkdir()
    (tmp_path / "train" / f"Clip+{RAW_ID}+P1+C0+F39-55.txt").write_text(vfhq_txt())
    (tmp_path / "VFHQ-Test" / "Clip+xyz+P0+C3+F9-30.txt").write_text(vfhq_txt("xyz", crop=None, frames=range(10, 30)))
    (tmp_path / "train" / "Clip+bad+P0+C0+F1-9.txt").write_text("H: 144\nW: 176\n00000002 0 1 2\n")
    parsed = vfhq.parse(tmp_path)
    b, a = parsed.clips  # in path order: VFHQ-Test/ before train/
    assert (a.clip, a.video, a.person, a.split) == (f"Clip+{RAW_ID}+P1+C0+F39-55", RAW_ID, f"{RAW_ID}+P1", "train")
    assert (a.start, a.stop, a.unit, a.fps) == (40, 55, "frame", None)  # VFHQ's F+1 .. F-1, inclusive
    assert a.box == (40, 10, 130, 110) and a.box_space == (176, 144)
    assert (b.split, b.start, b.stop) == ("test", 10, 30)
    assert b.box == pytest.approx((45, 10.5, 125, 114.5))  # no CROP BBOX: face boxes' union grown 30 %
    assert len(parsed.problems) == 1 and "Clip+bad+P0+C0+F1-9" in parsed.problems[0]
    # the crop in pixels of the raw video, scaled when it is not H x W, square of the longer side
    assert crop_square(a, 176, 144) == CropBox(35, 10, 100)
    assert crop_square(a, 352, 288) == CropBox(70, 20, 200)


def test_celebvhq_parser_and_validation_draw(tmp_path):
    clips = {f"{yt}_{k}": (yt, 1.0 + k, 2.0 + k) for yt in ("vidA", "vidB", "vidC", "-vidD") for k in range(2)}
    data = celebvhq_json(clips)
    data["clips"]["broken_0"] = {"ytb_id": "vidE", "duration": {"start_sec": 1.0}}  # no end_sec
    (tmp_path / "celebvhq_info.json").write_text(json.dumps(data))
    parsed = celebvhq.parse(tmp_path, val_videos=2, seed=3)
    assert len(parsed.clips) == 8 and len(parsed.problems) == 1 and "broken_0" in parsed.problems[0]
    val = parsed.lists["celebvhq_val_videos.txt"]
    assert len(val) == 2 and val == sorted(val)
    assert {c.video for c in parsed.clips if c.split == "val"} == set(val)  # whole source videos
    assert parsed.lists == celebvhq.parse(tmp_path / "celebvhq_info.json", val_videos=2, seed=3).lists  # seeded
    c = next(c for c in parsed.clips if c.clip == "vidB_1")
    assert (c.video, c.start, c.stop, c.unit, c.fps, c.person) == ("vidB", 2.0, 3.0, "second", None, None)
    assert c.box == pytest.approx((0.28, 0.03, 0.72, 0.77)) and c.box_space == (1, 1) and c.square == "min"
    assert c.extra["attributes"]["action"] == [1]
    # the official crop: grown 0.02, then the square of the shorter side in pixels
    assert crop_square(c, 200, 100) == CropBox(63, 3, 74)
    (tmp_path / "val.txt").write_text("# chosen by hand\nvidC\nvidA_0\n")
    by_hand = celebvhq.parse(tmp_path, val_list=tmp_path / "val.txt")
    assert sorted(c.clip for c in by_hand.clips if c.split == "val") == ["vidA_0", "vidC_0", "vidC_1"]
    with pytest.raises(InputError, match="celebvhq_info.json"):
        celebvhq.parse(tmp_path / "nothing")


def test_voxceleb_parser(tmp_path):
    dev = tmp_path / "vox1_dev_txt" / "txt" / "id10001" / "1zcIwhmdeo4"
    test = tmp_path / "vox1_test_txt" / "txt" / "id10270" / "5r0dWxy17C8"
    loose = tmp_path / "more" / "id10500" / "testVideo01"  # a YouTube id with "test" in it is no split hint
    vox1_test_id = tmp_path / "more" / "id10271" / "abc"
    for folder in (dev, test, loose, vox1_test_id):
        folder.mkdir(parents=True)
    (dev / "00001.txt").write_text(vox_txt("id10001", "1zcIwhmdeo4", 245, 300))
    (test / "00002.txt").write_text(vox_txt("id10270", "5r0dWxy17C8", 10, 60, box=(100, 40, 120, 130)))
    (loose / "00003.txt").write_text(vox_txt("id10500", "testVideo01", 5, 9))
    (loose / "00004.txt").write_text("Identity  : \tid10500\n")
    (vox1_test_id / "00005.txt").write_text(vox_txt("id10271", "abc", 5, 9))
    parsed = voxceleb.parse(tmp_path)
    by_id = {c.clip: c for c in parsed.clips}
    a = by_id["id10001/1zcIwhmdeo4/00001"]
    assert (a.video, a.person, a.split, a.unit, a.fps) == ("1zcIwhmdeo4", "id10001", "train", "second", 25.0)
    assert (a.start, a.stop) == (245 / 25, 301 / 25)
    assert a.box == pytest.approx((0.2, 0.04, 0.8, 0.76)) and a.box_space == (1, 1)  # union grown 10 %
    b = by_id["id10270/5r0dWxy17C8/00002"]
    assert b.split == "test" and b.box_space is None and b.box == pytest.approx((88, 27, 232, 183))  # pixels
    assert by_id["id10500/testVideo01/00003"].split == "train"
    assert by_id["id10271/abc/00005"].split == "test"  # no folder hint: VoxCeleb1's test identities id10270-id10309
    assert len(parsed.problems) == 1 and "00004.txt" in parsed.problems[0]


# ---------------------------------------------------------------------------------------- raw videos
@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Raw videos: RAW_ID (60 frames of the carphone sample, 176x144 at 25 fps), the same frames each shown
    twice at 50 fps, and a file that is not a video."""
    folder = tmp_path_factory.mktemp("raw")
    try:
        from imf.data.samples import sample_path

        frames = list(iter_frames(sample_path("carphone_pristine.mp4"), stop=N_RAW))
    except Exception:  # no sample here and no way to fetch it: a synthetic clip of the same size
        yy, xx = np.mgrid[:144, :176]
        frames = [np.stack([(xx + 3 * i) % 256, (yy + 2 * i) % 256, np.full_like(xx, 7 * i % 256)], -1).astype(np.uint8)
                  for i in range(N_RAW)]
    sub = folder / "some" / "subfolder"
    sub.mkdir(parents=True)
    with VideoWriter(sub / f"{RAW_ID}.mp4", 25, 176, 144, crf=12, preset="veryfast") as w:
        for f in frames:
            w.write(f)
    with VideoWriter(folder / "fifty.mkv", 50, 176, 144, crf=12, preset="veryfast") as w:
        for f in frames[:30]:
            w.write(f)
            w.write(f)
    (folder / "brokenVid.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing after" * 10)
    decoded = {"25": list(iter_frames(sub / f"{RAW_ID}.mp4")), "50": list(iter_frames(folder / "fifty.mkv"))}
    return folder, decoded


def expected(raw_frames, spec: ClipSpec, indices) -> list[np.ndarray]:
    box = crop_square(spec, 176, 144)
    return [resize_center_crop(raw_frames[i][box.y: box.y + box.side, box.x: box.x + box.side], SIZE) for i in indices]


def shard_frames(out: Path) -> dict[str, list[np.ndarray]]:
    reader = ShardReader()
    return {c["clip"]: reader.frames(c, list(range(c["frames"]))) for c in load_shard_folder(out).clips}


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_vfhq_end_to_end_missing_broken_and_resume(raw, tmp_path, capsys):
    videos, decoded = raw
    meta = tmp_path / "meta"
    (meta / "VFHQ-Test").mkdir(parents=True)
    (meta / f"Clip+{RAW_ID}+P0+C0+F39-55.txt").write_text(vfhq_txt())  # frames 40..54: decoding seeks
    (meta / f"Clip+{RAW_ID}+P0+C1+F1-12.txt").write_text(vfhq_txt(crop="0 0 176 144"))
    (meta / "VFHQ-Test" / f"Clip+{RAW_ID}+P1+C0+F50-70.txt").write_text(vfhq_txt())  # past the end: 51..59
    (meta / "Clip+missingVid+P0+C0+F1-12.txt").write_text(vfhq_txt("missingVid"))
    (meta / "Clip+brokenVid+P0+C0+F1-12.txt").write_text(vfhq_txt("brokenVid"))
    (meta / f"Clip+{RAW_ID}+P0+C2+F80-90.txt").write_text(vfhq_txt())  # the video has no such frames
    out = tmp_path / "shards"
    assert main(["data", "prepare", "vfhq", "--meta", str(meta), "--videos", str(videos), "--out", str(out),
                 "--size", str(SIZE), "--workers", "0", "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("imf data prepare vfhq: 3 of 6 clips") and "1 missing video(s) (1 clips)" in line
    assert "1 broken video(s) (1 clips)" in line and "1 failed clip(s)" in line
    report = json.loads((out / "report.json").read_text())
    assert report["missing_videos"] == {"missingVid": ["Clip+missingVid+P0+C0+F1-12"]}
    assert list(report["broken_videos"]) == ["brokenVid"] and "not a readable video" in report["broken_videos"]["brokenVid"]["reason"]
    assert list(report["failed_clips"]) == [f"Clip+{RAW_ID}+P0+C2+F80-90"]
    assert report["truncated_clips"] == {f"Clip+{RAW_ID}+P1+C0+F50-70": "9 of 19 frames"}

    got = shard_frames(out)
    specs = {c.clip: c for c in vfhq.parse(meta).clips}
    for name, frames in got.items():
        spec = specs[name]
        assert same(frames, expected(decoded["25"], spec, range(int(spec.start), min(int(spec.stop), N_RAW)))), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["size"] == SIZE and set(manifest["splits"]) == {"train", "test"}
    entry = next(c for c in manifest["clips"] if c["clip"] == f"Clip+{RAW_ID}+P0+C0+F39-55")
    assert (entry["person"], entry["source"], entry["frames"], entry["fps"], entry["split"]) == \
           (f"{RAW_ID}+P0", RAW_ID, 15, 25.0, "train")
    assert (out / "splits" / "test.txt").read_text() == f"Clip+{RAW_ID}+P1+C0+F50-70\n"

    # re-run: nothing to redo; an interrupted run's leftovers are removed; a new clip is all that is cut
    (out / "train-000009.tar.partial").write_bytes(b"half a shard")
    (out / "train-000007.tar").write_bytes(b"a shard whose index was never written")
    (meta / f"Clip+{RAW_ID}+P2+C0+F19-30.txt").write_text(vfhq_txt())
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    result = prepare_dataset("vfhq", meta, videos, out, size=SIZE, progress=False)
    assert (result.new, result.written, result.clips) == (1, 4, 7)
    assert not (out / "train-000009.tar.partial").exists() and not (out / "train-000007.tar").exists()
    assert all((out / name).stat().st_mtime_ns == t for name, t in before.items() if (out / name).exists())
    assert sorted(p.name for p in out.glob("*.tar")) == ["test-000000.tar", "train-000000.tar", "train-000001.tar"]
    assert same(shard_frames(out)[f"Clip+{RAW_ID}+P2+C0+F19-30"], expected(decoded["25"], specs[f"Clip+{RAW_ID}+P0+C0+F39-55"], range(20, 30)))
    with pytest.raises(InputError, match="other settings"):
        prepare_dataset("vfhq", meta, videos, out, size=SIZE * 2, progress=False)


def test_celebvhq_end_to_end_with_workers(raw, tmp_path):
    videos, decoded = raw
    clips = {"A_0": (RAW_ID, 1.0, 1.6), "A_1": (RAW_ID, 0.2, 0.6), "B_0": ("fifty", 0.1, 0.5), "C_0": ("gone", 1, 2)}
    meta = tmp_path / "celebvhq_info.json"
    meta.write_text(json.dumps(celebvhq_json(clips)))
    out = tmp_path / "shards"
    result = prepare_dataset("celebvhq", meta, videos, out, size=SIZE, workers=2, progress=False,
                             val_videos=1, seed=0)
    assert (result.written, result.new, list(result.report["missing_videos"])) == (3, 3, ["gone"])
    specs = {c.clip: c for c in celebvhq.parse(meta, val_videos=1, seed=0).clips}
    got = shard_frames(out)
    assert same(got["A_0"], expected(decoded["25"], specs["A_0"], range(25, 40)))  # [1.0 s, 1.6 s) at 25 fps
    assert same(got["A_1"], expected(decoded["25"], specs["A_1"], range(5, 15)))
    assert same(got["B_0"], expected(decoded["50"], specs["B_0"], range(5, 25)))  # its own 50 fps
    val = (out / "splits" / "celebvhq_val_videos.txt").read_text().split()
    assert len(val) == 1 and {c["clip"] for c in load_shard_folder(out).clips if c["split"] == "val"} == \
           {name for name, (yt, _, _) in clips.items() if yt == val[0] and yt != "gone"}


def test_voxceleb_end_to_end_resamples_to_25_fps(raw, tmp_path):
    videos, decoded = raw
    track = tmp_path / "vox2_dev_txt" / "txt" / "id00017" / "fifty"
    track.mkdir(parents=True)
    (track / "00001.txt").write_text(vox_txt("id00017", "fifty", 3, 20))
    (track / "00002.txt").write_text(vox_txt("id00017", "fifty", 25, 40))  # the video ends at frame 29 (25 fps)
    out = tmp_path / "shards"
    result = prepare_dataset("voxceleb", tmp_path, videos, out, size=SIZE, progress=False)
    assert result.written == 2 and not result.report["failed_clips"]
    specs = {c.clip: c for c in voxceleb.parse(tmp_path).clips}
    got = shard_frames(out)
    # 25 fps out of a 50 fps video: output frame k is the raw frame at (first + k) / 25 s, raw frame 2 (first + k)
    assert same(got["id00017/fifty/00001"], expected(decoded["50"], specs["id00017/fifty/00001"], range(6, 42, 2)))
    assert same(got["id00017/fifty/00002"], expected(decoded["50"], specs["id00017/fifty/00002"], range(50, 60, 2)))
    assert load_shard_folder(out).clips[0]["person"] == "id00017"


def test_cut_never_raises_and_the_cli_refuses_an_empty_result(raw, tmp_path):
    videos, _ = raw
    spec = ClipSpec("c", "v", "train", None, 0, 10, "frame", None, (0, 0, 10, 10), None)
    result = cut_clip(spec, tmp_path / "none.mp4", SIZE)
    assert result.frames is None and result.broken and "not a readable video" in result.error
    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "Clip+missingVid+P0+C0+F1-12.txt").write_text(vfhq_txt("missingVid"))
    assert main(["data", "prepare", "vfhq", "--meta", str(meta), "--videos", str(videos), "--out",
                 str(tmp_path / "out"), "--workers", "0", "--quiet"]) == 2
    assert main(["data", "prepare", "vfhq", "--meta", str(meta), "--videos", str(videos), "--out",
                 str(tmp_path / "out"), "--val-videos", "3"]) == 2
