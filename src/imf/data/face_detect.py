"""An offline frontal-face detector: OpenCV's Haar cascade, with scikit-image's LBP cascade as fallback.

The Haar cascade (``haarcascade_frontalface_default.xml``) ships in ``cv2.data`` of the OpenCV 4.x
wheels. OpenCV 5 moved ``CascadeClassifier`` out of the main wheel; there the LBP frontal-face cascade
shipped inside scikit-image (``skimage.data.lbp_frontal_face_cascade_filename()``) is used instead. It is
slower and gives more false positives, which the temporal filtering of ``imf.data.crop`` absorbs.
Nothing is downloaded.

Boxes are in pixels of the image given to ``detect``: (x, y) top-left corner, w × h.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imf.errors import InputError


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left (x, y), width w, height h."""

    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def area(self) -> float:
        return self.w * self.h

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def _haar_classifier():
    if not hasattr(cv2, "CascadeClassifier"):
        return None
    xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    if not xml.is_file():
        return None
    classifier = cv2.CascadeClassifier(str(xml))
    return None if classifier.empty() else classifier


def _lbp_cascade():
    try:
        from skimage.data import lbp_frontal_face_cascade_filename
        from skimage.feature import Cascade
    except ImportError:
        return None
    return Cascade(lbp_frontal_face_cascade_filename())


class FaceDetector:
    """Finds frontal faces in RGB uint8 images (H, W, 3).

    max_side: images are shrunk so their longer side is at most this before detection (speed);
    min_face: smallest face side as a fraction of the image's shorter side.
    backend: "auto" (Haar if this OpenCV has it, else LBP), "haar" or "lbp".
    """

    def __init__(self, max_side: int = 320, min_face: float = 0.1, backend: str = "auto") -> None:
        if backend not in ("auto", "haar", "lbp"):
            raise ValueError(f"backend must be 'auto', 'haar' or 'lbp', got {backend!r}")
        self.max_side, self.min_face = max_side, min_face
        self._haar = _haar_classifier() if backend in ("auto", "haar") else None
        self._lbp = _lbp_cascade() if self._haar is None and backend in ("auto", "lbp") else None
        if self._haar is None and self._lbp is None:
            raise InputError(
                f"no face detector available for backend {backend!r}: OpenCV's Haar cascade needs "
                f"opencv-python-headless<5 (found {cv2.__version__}); the fallback needs scikit-image"
            )
        self.backend = "haar" if self._haar is not None else "lbp"

    def detect(self, image: np.ndarray) -> list[Box]:
        """Faces in ``image`` (uint8 (H, W, 3) RGB), largest first, in its pixel coordinates."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        grey = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2GRAY)
        side = min(grey.shape)
        min_px = max(20, int(self.min_face * side))
        if min_px > side:
            return []
        if self._haar is not None:
            found = self._haar.detectMultiScale(
                cv2.equalizeHist(grey), scaleFactor=1.1, minNeighbors=5, minSize=(min_px, min_px)
            )
            raw = [(float(x), float(y), float(bw), float(bh)) for x, y, bw, bh in found]
        else:
            found = self._lbp.detect_multi_scale(
                img=grey, scale_factor=1.1, step_ratio=1, min_size=(min_px, min_px), max_size=(side, side),
                min_neighbor_number=4,
            )
            raw = [(float(d["c"]), float(d["r"]), float(d["width"]), float(d["height"])) for d in found]
        boxes = [Box(x / scale, y / scale, bw / scale, bh / scale) for x, y, bw, bh in raw]
        return sorted(boxes, key=lambda b: b.area, reverse=True)
