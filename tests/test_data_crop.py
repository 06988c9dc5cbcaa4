"""Face-centred crops (imf.data.crop) and the `imf data crop` command."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imf.cli import main
from imf.data import crop as crop_module
from imf.data.crop import (CropBox, CropConfig, colour_histogram, crop_image, crop_video, feather_mask,
                           histogram_distance, paste_crop)
from imf.data.face_detect import FaceDetector
from imf.data.video import VideoWriter, iter_frames, probe

skimage_data = pytest.importorskip("skimage.data")

# The astronaut's face in skimage.data.astronaut() (512 × 512): roughly x 170-260, y 50-150.
FACE_X, FACE_Y = (170, 260), (50, 150)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def two_shots(astronaut, tmp_path_factory):
    """24 frames 320×240 panning over the astronaut; at frame 12 a cut to a green colour grade."""
    frames = [np.ascontiguousarray(astronaut[40 + 2 * i : 280 + 2 * i, 60 + 3 * i : 380 + 3 * i]) for i in range(24)]
    frames[12:] = [(f * np.array([0.3, 1.0, 0.3])).astype(np.uint8) for f in frames[12:]]
    path = tmp_path_factory.mktemp("crop") / "astro.mp4"
    with VideoWriter(path, 25, 320, 240, preset="veryfast") as writer:
        for f in frames:
            writer.write(f)
    return path


class NoFaces:
    """A detector stand-in that finds nothing (fast), for testing shot detection alone."""

    def detect(self, image):
        return []


def test_histogram_distance():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 255, np.uint8)
    assert histogram_distance(colour_histogram(a), colour_histogram(a)) == 0.0
    assert histogram_distance(colour_histogram(a), colour_histogram(b)) == pytest.approx(1.0)


def test_shot_cut_is_found(two_shots):
    starts, detections, n = crop_module._analyse(two_shots, CropConfig(detect_every=5), NoFaces(), 24, False)
    assert (starts, n) == ([0, 12], 24)
    assert [i for i, _ in detections] == [0, 5, 10, 12, 17, 22]  # every 5 frames and at each shot start
    starts, _, _ = crop_module._analyse(two_shots, CropConfig(cut_threshold=1.0), NoFaces(), 24, False)
    assert starts == [0]


def test_plan_absorbs_short_lived_boxes():
    face = crop_module.Box(100, 100, 50, 50)
    elsewhere = crop_module.Box(300, 20, 40, 40)
    dets = [(0, face), (5, face), (10, elsewhere), (15, face), (20, face), (25, face)]
    [segment] = crop_module._plan_shot(0, 30, dets, min_iou=0.3)
    assert (segment.start, segment.stop, segment.face) == (0, 30, face)
    moved = [(0, face), (5, face), (10, face), (15, elsewhere), (20, elsewhere), (25, elsewhere), (30, elsewhere)]
    first, second = crop_module._plan_shot(0, 40, moved, min_iou=0.3)
    assert (first.start, first.stop, second.start, second.stop) == (0, 15, 15, 40)
    assert second.face == elsewhere


def test_crop_image_finds_the_face_and_pastes_back(astronaut):
    crop, box = crop_image(astronaut, size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    cx, cy = box.x + box.side / 2, box.y + box.side / 2
    assert FACE_X[0] <= cx <= FACE_X[1] and FACE_Y[0] <= cy <= FACE_Y[1], box
    assert 100 <= box.side <= 300
    pasted = paste_crop(astronaut, crop, box)
    outside = np.ones(astronaut.shape[:2], bool)
    outside[box.y : box.y + box.side, box.x : box.x + box.side] = False
    np.testing.assert_array_equal(pasted[outside], astronaut[outside])
    inside = np.abs(pasted[~outside].astype(int) - astronaut[~outside]).mean()
    assert 0 < inside < 20  # the same picture, blurred by the round trip through 64 × 64
    with pytest.raises(Exception, match="no face"):
        crop_image(np.full((200, 200, 3), 128, np.uint8), size=64)


# ------------------------------------------------------------------------------ soft-mask paste-back
def _hard_paste_as_before(image, crop, box):
    """paste_crop as it was before the soft mode (the reference the hard mode must match bit for bit)."""
    back = np.asarray(Image.fromarray(crop).resize((box.side, box.side), Image.Resampling.BICUBIC))
    out = image.copy()
    out[box.y : box.y + box.side, box.x : box.x + box.side] = back
    return out


@pytest.mark.parametrize("side,feather", [(64, 0.15), (101, 0.3), (40, 0.5)])
def test_feather_mask_is_one_inside_zero_on_the_border_and_monotone(side, feather):
    m = feather_mask(side, feather)
    assert m.shape == (side, side) and m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
    c = side // 2
    assert m[c, c] == 1.0 and m[c - 1 : side - c + 1, c - 1 : side - c + 1].min() == 1.0  # the middle is 1
    for border in (m[0], m[-1], m[:, 0], m[:, -1]):  # every border pixel, corners included, is 0
        assert np.all(border == 0)
    ramp = int(feather * side)
    assert 0 < m[c, ramp // 2] < 1  # a soft edge, not a step
    # monotone from the border to the middle along rows, columns and the diagonal
    half = m[: c + 1, : c + 1]
    assert np.all(np.diff(half, axis=0) >= 0) and np.all(np.diff(half, axis=1) >= 0)
    assert np.all(np.diff(np.diag(half)) >= 0)
    np.testing.assert_array_equal(m, m[::-1, ::-1])  # symmetric: the other half mirrors it
    np.testing.assert_array_equal(m, m.T)
    assert np.all(feather_mask(side, 0.0) == 1.0)  # feather 0: the hard square
    with pytest.raises(ValueError, match="feather"):
        feather_mask(side, 0.6)


def test_soft_paste_of_the_frame_itself_changes_nothing():
    flat = np.full((90, 120, 3), 137, np.uint8)
    box = CropBox(20, 10, 64)
    same = np.full((64, 64, 3), 137, np.uint8)  # an all-same crop equal to the frame
    for feather in (0.05, 0.15, 0.5):
        np.testing.assert_array_equal(paste_crop(flat, same, box, "soft", feather), flat)
    # a textured frame whose crop is its own region at the box's size (no resampling): unchanged too
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    own = np.ascontiguousarray(frame[box.y : box.y + 64, box.x : box.x + 64])
    np.testing.assert_array_equal(paste_crop(frame, own, box), frame)


def test_hard_paste_is_bit_identical_to_before(astronaut):
    rng = np.random.default_rng(1)
    for box, size in [(CropBox(150, 30, 160), 64), (CropBox(0, 0, 512), 256), (CropBox(300, 351, 161), 64)]:
        crop = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        hard = paste_crop(astronaut, crop, box, mode="hard")
        np.testing.assert_array_equal(hard, _hard_paste_as_before(astronaut, crop, box))
        soft = paste_crop(astronaut, crop, box)  # the default is soft, and it is different
        assert not np.array_equal(soft, hard)
        outside = np.ones(astronaut.shape[:2], bool)
        outside[box.y : box.y + box.side, box.x : box.x + box.side] = False
        np.testing.assert_array_equal(soft[outside], astronaut[outside])  # both leave the rest alone
    with pytest.raises(ValueError, match="paste mode"):
        paste_crop(astronaut, crop, box, mode="blend")


def _seam(image: np.ndarray, box: CropBox) -> float:
    """Mean absolute gradient across the box's border: the steps between each border pixel of the box and its
    neighbour outside, on all four sides."""
    im = image.astype(np.float64)
    x0, y0, x1, y1 = box.x, box.y, box.x + box.side, box.y + box.side
    steps = [im[y0:y1, x0] - im[y0:y1, x0 - 1], im[y0:y1, x1 - 1] - im[y0:y1, x1],
             im[y0, x0:x1] - im[y0 - 1, x0:x1], im[y1 - 1, x0:x1] - im[y1, x0:x1]]
    return float(np.mean([np.abs(s).mean() for s in steps]))


def test_soft_paste_leaves_a_smaller_seam_than_hard():
    # a frame with a smooth shading, and a generated crop that is brighter and differently shaded (as a
    # crop from the model is never exactly the frame it goes back into)
    yy, xx = np.mgrid[0:160, 0:200]
    frame = np.stack([60 + 0.3 * xx, 80 + 0.2 * yy, 90 + 0.1 * (xx + yy)], axis=-1).astype(np.uint8)  # (160, 200, 3)
    box = CropBox(50, 40, 80)
    cy, cx = np.mgrid[0:64, 0:64]
    crop = np.stack([170 + cx, 150 + 0.5 * cy, 140 + 0 * cx], axis=-1).astype(np.uint8)  # (64, 64, 3)
    hard, soft = paste_crop(frame, crop, box, "hard"), paste_crop(frame, crop, box, "soft")
    assert _seam(hard, box) > 50
    assert _seam(soft, box) < 0.1 * _seam(hard, box)
    # inside, no step either: the largest jump between neighbours is far below the hard square's
    band = lambda im: np.abs(np.diff(im.astype(int), axis=1)).max()  # noqa: E731
    assert band(soft) < 0.3 * band(hard)
    centre = (slice(box.y + 30, box.y + 50), slice(box.x + 30, box.x + 50))
    np.testing.assert_array_equal(soft[centre], hard[centre])  # the middle of the crop is the crop itself


def test_cli_crop_writes_face_clips(two_shots, astronaut, tmp_path, capsys):
    image = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(image)
    out = tmp_path / "out"
    assert main(["data", "crop", str(two_shots), str(image), "--out", str(out), "--size", "64",
                 "--detect-every", "4"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed
    first = out / "astro_000.mp4"
    info = probe(first)
    assert (info.width, info.height, info.num_frames) == (64, 64, 12)  # the first shot, up to the cut
    assert sorted(p.name for p in out.iterdir()) == ["astro_000.mp4", "astro_001.mp4", "astronaut.png"]
    assert probe(out / "astro_001.mp4").num_frames == 12
    # The crop is centred on the face: the face detector finds it again, large, in the cropped frames.
    face = FaceDetector().detect(next(iter_frames(first, size=None)))
    assert face and face[0].w > 20
    assert Image.open(out / "astronaut.png").size == (64, 64)


def test_no_face_is_reported_and_skipped(tmp_path, capsys):
    blank = tmp_path / "blank.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(blank, 25, 96, 64, preset="veryfast") as writer:
        for _ in range(10):
            writer.write(rng.integers(100, 140, (64, 96, 3), dtype=np.uint8))
    result = crop_video(blank, tmp_path / "out", CropConfig(size=32), progress=False)
    assert result.clips == [] and "no face" in result.skipped[0]
    assert not (tmp_path / "out").exists()
    assert main(["data", "crop", str(blank), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert "skipped blank.mp4 frames 0-9: no face found" in captured.out
    assert "no face found in any input" in captured.err


def test_cli_bad_input_exits_2(tmp_path, capsys):
    assert main(["data", "crop", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.mp4: no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"garbage" * 200)
    assert main(["data", "crop", str(junk), "--out", str(tmp_path / "o")]) == 2
    assert "not a readable video" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a bad number is refused while parsing
        main(["data", "crop", str(junk), "--out", str(tmp_path / "o"), "--size", "0"])
    assert e.value.code == 2 and "16..4096" in capsys.readouterr().err
    assert main(["data"]) == 2
