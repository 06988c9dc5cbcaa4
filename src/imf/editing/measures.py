"""Head pose and expression measures from 68 facial landmarks, and the built-in condition extractor.

Head pose (degrees) comes from a perspective-n-point fit (``cv2.solvePnP``) of six landmarks against
a generic 3D face (the widely used six-point model: nose tip, chin, outer eye corners, mouth corners,
in millimetre-like units), with a pinhole camera whose focal length is the frame's longer side and whose
principal point is the frame's centre (no distortion). The 3D model is written in the camera's frame for
a frontal face (x to the image's right, y down, z away from the camera), so a frontal face has R = I.
With the fitted rotation written R = R_y(−yaw) · R_x(−pitch) · R_z(roll):

- yaw > 0: the face turns towards the image's right (the nose points right, the subject's own left);
- pitch > 0: the face looks up;
- roll > 0: the face is rotated clockwise as seen in the image.

Expression measures (unitless, rotation of the face in the image plane does not change them):

- eye: the eye aspect ratio (Soukupová & Čech, 2016), mean of both eyes:
  (|p2 − p6| + |p3 − p5|) / (2 |p1 − p4|); about 0.25–0.35 open, below 0.15 closed.
- mouth: inner-lip mouth aspect ratio, the mean of the three inner-lip vertical gaps (61–67, 62–66,
  63–65) over the inner mouth width (60–64); about 0 closed, 0.3–1 open.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from imf.editing.landmarks import NUM_LANDMARKS, FaceLandmarker
from imf.errors import ConfigError

POSE_NAMES = ("yaw", "pitch", "roll")
EXPRESSION_NAMES = ("eye", "mouth")
LANDMARK_MEASURES = POSE_NAMES + EXPRESSION_NAMES
MEASURE_UNITS = {"yaw": "deg", "pitch": "deg", "roll": "deg", "eye": "ratio", "mouth": "ratio"}

# Landmark indices (dlib 68-point layout) and the generic face, in camera axes for a frontal face.
_PNP_INDICES = (30, 8, 36, 45, 48, 54)  # nose tip, chin, outer eye corners (image left, right), mouth corners
_FACE_MODEL_3D = np.array([
    (0.0, 0.0, 0.0),  # nose tip
    (0.0, 330.0, 65.0),  # chin
    (-225.0, -170.0, 135.0),  # outer corner of the eye on the image's left
    (225.0, -170.0, 135.0),  # outer corner of the eye on the image's right
    (-150.0, 150.0, 125.0),  # mouth corner on the image's left
    (150.0, 150.0, 125.0),  # mouth corner on the image's right
], dtype=np.float64)
_EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))  # p1..p6 of each eye
_INNER_LIP_GAPS = ((61, 67), (62, 66), (63, 65))


def camera_matrix(height: int, width: int) -> np.ndarray:
    """(3, 3) pinhole intrinsics: focal length = the longer side, principal point = the centre."""
    f = float(max(height, width))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def pose_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) rotation of the head in camera axes for angles in degrees (the module's conventions)."""
    return Rotation.from_euler("YXZ", [-yaw, -pitch, roll], degrees=True).as_matrix()


def head_pose(points: np.ndarray, height: int, width: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 68 landmarks (68, 2) in a frame of height × width pixels."""
    image_pts = np.ascontiguousarray(points[list(_PNP_INDICES)], dtype=np.float64)  # (6, 2)
    k = camera_matrix(height, width)
    # Initial guess: frontal, at the distance where the model's outer-eye span matches the image's.
    eye_span = float(np.linalg.norm(image_pts[3] - image_pts[2]))
    z = k[0, 0] * 450.0 / max(eye_span, 1e-6)
    nose = image_pts[0]
    tvec = np.array([[(nose[0] - k[0, 2]) * z / k[0, 0]], [(nose[1] - k[1, 2]) * z / k[1, 1]], [z]])
    rvec = np.zeros((3, 1))
    ok, rvec, tvec = cv2.solvePnP(_FACE_MODEL_3D, image_pts, k, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return float("nan"), float("nan"), float("nan")
    r, _ = cv2.Rodrigues(rvec)
    a, b, c = Rotation.from_matrix(r).as_euler("YXZ", degrees=True)  # R = R_y(a) R_x(b) R_z(c)
    return float(-a), float(-b), float(c)


def eye_aspect_ratio(points: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes (see the module docstring)."""
    ratios = []
    for p1, p2, p3, p4, p5, p6 in _EYES:
        vertical = np.linalg.norm(points[p2] - points[p6]) + np.linalg.norm(points[p3] - points[p5])
        ratios.append(vertical / (2.0 * max(np.linalg.norm(points[p1] - points[p4]), 1e-6)))
    return float(np.mean(ratios))


def mouth_aspect_ratio(points: np.ndarray) -> float:
    """Inner-lip mouth aspect ratio (see the module docstring)."""
    gap = np.mean([np.linalg.norm(points[a] - points[b]) for a, b in _INNER_LIP_GAPS])
    return float(gap / max(np.linalg.norm(points[60] - points[64]), 1e-6))


def landmark_measures(points: np.ndarray, height: int, width: int) -> dict[str, float]:
    """Every built-in measure (``LANDMARK_MEASURES``) of one face's 68 landmarks."""
    if points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected ({NUM_LANDMARKS}, 2) landmarks, got {points.shape}")
    yaw, pitch, roll = head_pose(points, height, width)
    return {"yaw": yaw, "pitch": pitch, "roll": roll, "eye": eye_aspect_ratio(points),
            "mouth": mouth_aspect_ratio(points)}


class LandmarkConditions:
    """The built-in ``ConditionExtractor``: any of yaw, pitch, roll (degrees), eye, mouth (ratios),
    measured from dlib's 68 landmarks of the most confident face. Returns None when no face is found.

    Frames smaller than ``min_side`` (e.g. 64×64 model outputs) are enlarged for detection; the measures
    do not depend on the frame's size.
    """

    version = 1  # bump when a measure's definition changes (invalidates cached conditions)

    def __init__(self, names: tuple[str, ...] | list[str] = LANDMARK_MEASURES, min_side: int = 160,
                 landmarker: FaceLandmarker | None = None):
        names = tuple(names)
        unknown = [n for n in names if n not in LANDMARK_MEASURES]
        if unknown or not names:
            raise ConfigError(f"no built-in landmark measure named {unknown or '(none given)'}; "
                              f"known: {', '.join(LANDMARK_MEASURES)}")
        self.names = names
        self.landmarker = landmarker or FaceLandmarker(min_side=min_side)
        self.identity = f"dlib68-v{self.version}:" + ",".join(names)

    @property
    def dim(self) -> int:
        return len(self.names)

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """(dim,) float64 of the measures in ``names`` order, or None when no face is found."""
        face = self.landmarker(frame)
        if face is None:
            return None
        values = landmark_measures(face.points, frame.shape[0], frame.shape[1])
        out = np.array([values[n] for n in self.names], dtype=np.float64)
        return out if np.all(np.isfinite(out)) else None
