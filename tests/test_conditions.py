"""Control conditions for the token editor: landmark measures, head pose, condition files, --set parsing."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from imf.editing.conditions import (ConcatConditions, ConditionExtractor, check_track, parse_set,
                                    read_condition_file, reorder, write_condition_csv)
from imf.editing.measures import (_FACE_MODEL_3D, _PNP_INDICES, LANDMARK_MEASURES, camera_matrix, eye_aspect_ratio,
                                  head_pose, mouth_aspect_ratio, pose_rotation)
from imf.errors import ConfigError, InputError

NAMES = LANDMARK_MEASURES  # yaw, pitch, roll, eye, mouth


# ------------------------------------------------------------------------------------ head pose
def _project(yaw, pitch, roll, size=256, t=(10.0, -20.0, 2000.0)):
    """68 landmarks (only the six PnP ones filled) of the generic face posed at the given angles."""
    rvec, _ = cv2.Rodrigues(pose_rotation(yaw, pitch, roll))
    pts, _ = cv2.projectPoints(_FACE_MODEL_3D, rvec, np.array(t), camera_matrix(size, size), None)
    landmarks = np.zeros((68, 2))
    landmarks[list(_PNP_INDICES)] = pts[:, 0]
    return landmarks


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (20.0, -10.0, 5.0), (-35.0, 15.0, -12.0), (45.0, 5.0, 25.0)])
def test_head_pose_recovers_projected_angles(angles):
    got = head_pose(_project(*angles), 256, 256)
    np.testing.assert_allclose(got, angles, atol=0.05)


def test_pose_sign_conventions_match_the_docs():
    # independent of head_pose: where the nose lands in the image for each documented sign
    eye_mid = lambda p: (p[36] + p[45]) / 2  # noqa: E731
    turned_right = _project(20.0, 0.0, 0.0)
    assert turned_right[30, 0] > eye_mid(turned_right)[0] + 5  # yaw > 0: the nose points to the image's right
    looking_up = _project(0.0, 20.0, 0.0)
    frontal = _project(0.0, 0.0, 0.0)
    # pitch > 0: the face looks up, so the nose tip rises towards the eyes (image y decreases)
    assert (looking_up[30, 1] - eye_mid(looking_up)[1]) < (frontal[30, 1] - eye_mid(frontal)[1]) - 5
    clockwise = _project(0.0, 0.0, 20.0)
    assert clockwise[45, 1] > clockwise[36, 1] + 5  # roll > 0: clockwise, the image-right eye drops


def test_eye_and_mouth_ratios_on_known_shapes():
    p = np.zeros((68, 2))
    for base, x0 in ((36, 0.0), (42, 30.0)):  # p1..p6 of each eye: width 10, opening 4
        p[base:base + 6] = [(x0, 0), (x0 + 3, -2), (x0 + 7, -2), (x0 + 10, 0), (x0 + 7, 2), (x0 + 3, 2)]
    assert eye_aspect_ratio(p) == pytest.approx(0.4)
    p[60], p[64] = (0, 50), (20, 50)  # inner mouth: width 20, gaps of 6
    p[61], p[62], p[63] = (5, 47), (10, 47), (15, 47)
    p[67], p[66], p[65] = (5, 53), (10, 53), (15, 53)
    assert mouth_aspect_ratio(p) == pytest.approx(0.3)


# ------------------------------------------------------------------------------------ dlib on a real face
@pytest.fixture(scope="module")
def astronaut():
    from PIL import Image

    from imf.data.samples import sample_path

    return np.asarray(Image.open(sample_path("astronaut.png")).convert("RGB"))


@pytest.fixture(scope="module")
def extractor():
    pytest.importorskip("dlib")
    from imf.editing.measures import LandmarkConditions

    return LandmarkConditions()


def test_extractor_on_astronaut_gives_plausible_pose_and_expression(astronaut, extractor):
    assert isinstance(extractor, ConditionExtractor) and extractor.names == NAMES and extractor.dim == 5
    values = extractor(astronaut)
    assert values is not None and values.shape == (5,)
    yaw, pitch, roll, eye, mouth = values
    assert max(abs(yaw), abs(pitch), abs(roll)) < 30  # a near-frontal portrait (face above the image centre)
    assert 0.2 < eye < 0.45  # eyes open
    assert 0.0 <= mouth < 0.4  # lips near closed


def test_extractor_on_face_crop_is_frontal_and_mirrors(astronaut, extractor):
    from imf.data.crop import crop_image

    crop, _ = crop_image(astronaut, size=256)
    yaw, pitch, roll, eye, mouth = extractor(crop)
    assert max(abs(yaw), abs(pitch), abs(roll)) < 15
    # a mirrored face turns and tilts the other way; pitch and openness stay
    m_yaw, m_pitch, m_roll, m_eye, m_mouth = extractor(np.ascontiguousarray(crop[:, ::-1]))
    assert m_yaw == pytest.approx(-yaw, abs=3) and m_roll == pytest.approx(-roll, abs=3)
    assert m_pitch == pytest.approx(pitch, abs=3) and m_eye == pytest.approx(eye, abs=0.05)
    # the 64×64 model-size frame gives nearly the same measures once enlarged for detection
    small, _ = crop_image(astronaut, size=64)
    np.testing.assert_allclose(extractor(small)[:3], [yaw, pitch, roll], atol=6)


def test_extractor_finds_no_face_in_noise(extractor):
    rng = np.random.default_rng(0)
    assert extractor(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)) is None
    with pytest.raises(InputError, match="uint8 RGB"):
        extractor(np.zeros((64, 64), np.uint8))


def test_missing_dlib_names_the_install(monkeypatch):
    from imf.editing.landmarks import DlibMissing, import_dlib

    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(DlibMissing, match="pip install dlib-bin"):
        import_dlib()


def test_unknown_landmark_measure_is_a_config_error():
    from imf.editing.measures import LandmarkConditions

    with pytest.raises(ConfigError, match="smile"):
        LandmarkConditions(("yaw", "smile"))


# ------------------------------------------------------------------------------------ other extractors
class _Fixed:
    def __init__(self, names, value):
        self.names, self.value = tuple(names), value

    @property
    def dim(self):
        return len(self.names)

    def __call__(self, frame):
        return self.value


def test_concat_conditions_joins_names_and_propagates_none():
    frame = np.zeros((8, 8, 3), np.uint8)
    both = ConcatConditions(_Fixed(["a"], np.array([1.0])), _Fixed(["b", "c"], np.array([2.0, 3.0])))
    assert both.names == ("a", "b", "c") and both.dim == 3
    np.testing.assert_array_equal(both(frame), [1.0, 2.0, 3.0])
    assert ConcatConditions(_Fixed(["a"], np.array([1.0])), _Fixed(["b"], None))(frame) is None
    with pytest.raises(ValueError, match="repeat"):
        ConcatConditions(_Fixed(["a"], None), _Fixed(["a"], None))


# ------------------------------------------------------------------------------------ condition files
def test_npy_of_wrong_dimension_is_a_clear_error(tmp_path):
    path = tmp_path / "track.npy"
    np.save(path, np.zeros((10, 3), np.float32))
    with pytest.raises(InputError, match=r"track\.npy has 3 value\(s\) per frame, but 5 are expected \(yaw, pitch"):
        read_condition_file(path, NAMES)
    np.save(path, np.zeros((10, 5), np.float32))
    track = read_condition_file(path, NAMES)
    assert track.values.shape == (10, 5) and track.names == NAMES


def test_csv_round_trip_subset_and_errors(tmp_path):
    path = tmp_path / "track.csv"
    values = np.array([[10.0, np.nan], [-5.5, 0.25]])
    write_condition_csv(path, values, ("yaw", "mouth"))
    track = read_condition_file(path)
    assert track.names == ("yaw", "mouth")
    np.testing.assert_array_equal(np.isnan(track.values), np.isnan(values))
    np.testing.assert_allclose(track.values[1], values[1])
    check_track(track, NAMES, "track.csv", allow_subset=True)
    full = reorder(track, NAMES)
    assert full.shape == (2, 5) and full[1, 0] == -5.5 and full[1, 4] == 0.25 and np.isnan(full[1, 1])
    with pytest.raises(InputError, match=r"missing condition\(s\) \['pitch', 'roll', 'eye'\]"):
        check_track(track, NAMES, "track.csv")

    path.write_text("yaw,smile\n1,2\n")
    with pytest.raises(InputError, match=r"unknown condition name\(s\) \['smile'\]"):
        check_track(read_condition_file(path), NAMES, "track.csv", allow_subset=True)
    path.write_text("yaw,pitch\n1,abc\n")
    with pytest.raises(InputError, match=r"line 2, column 'pitch': 'abc' is not a number"):
        read_condition_file(path)
    path.write_text("1,2\n3,4\n")
    with pytest.raises(InputError, match="header"):
        read_condition_file(path)
    other = tmp_path / "track.txt"
    other.write_text("yaw\n1\n")
    with pytest.raises(InputError, match=r"\.npy or \.csv"):
        read_condition_file(other)


def test_parse_set():
    assert parse_set("yaw=15, pitch=-5,mouth=0.6", NAMES) == {"yaw": 15.0, "pitch": -5.0, "mouth": 0.6}
    with pytest.raises(InputError, match="unknown condition 'yow'"):
        parse_set("yow=15", NAMES)
    with pytest.raises(InputError, match="not a number"):
        parse_set("yaw=left", NAMES)
    with pytest.raises(InputError, match="given twice"):
        parse_set("yaw=1,yaw=2", NAMES)
    with pytest.raises(InputError, match="NAME=VALUE"):
        parse_set("yaw", NAMES)
