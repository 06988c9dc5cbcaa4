"""Intra coding of keyframes (the reference frames) with a standard still-image codec via Pillow.

Frames are uint8 (H, W, 3) RGB arrays. Codecs: ``webp`` (libwebp, lossy) and ``avif`` (when this
Pillow has AVIF support, ``PIL.features.check("avif")``). ``quality`` is the codec's own 0..100 knob.
The encoder decodes its own keyframe bytes and uses that image as the reference (closed loop), so
encoder and decoder hold the same reference.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, features

from imf.errors import BitstreamError

KEYFRAME_CODECS = ("webp", "avif")
_PIL_FORMAT = {"webp": "WEBP", "avif": "AVIF"}
DEFAULT_KEYFRAME_CODEC = "webp"
DEFAULT_KEYFRAME_QUALITY = 90


def keyframe_codec_available(codec: str) -> bool:
    return codec in KEYFRAME_CODECS and bool(features.check(codec))


def _check_codec(codec: str) -> None:
    if codec not in KEYFRAME_CODECS:
        raise ValueError(f"keyframe codec must be one of {KEYFRAME_CODECS}, got {codec!r}")
    if not features.check(codec):
        raise BitstreamError(f"this Pillow cannot code {codec.upper()} keyframes (PIL.features.check({codec!r}) is False)")


def encode_keyframe(frame: np.ndarray, *, codec: str = DEFAULT_KEYFRAME_CODEC,
                    quality: int = DEFAULT_KEYFRAME_QUALITY) -> bytes:
    """uint8 (H, W, 3) -> compressed image bytes."""
    _check_codec(codec)
    if not 0 <= int(quality) <= 100:
        raise ValueError(f"keyframe quality must be in [0, 100], got {quality!r}")
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"a keyframe is (H, W, 3) uint8, got shape {frame.shape}")
    buf = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buf, _PIL_FORMAT[codec], quality=int(quality))
    return buf.getvalue()


def decode_keyframe(data: bytes, *, codec: str, width: int, height: int) -> np.ndarray:
    """Compressed image bytes -> uint8 (height, width, 3); BitstreamError if not such an image."""
    _check_codec(codec)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[codec]])
            # The size is known from the header alone: check it before decoding any pixels.
            if img.size != (width, height):
                raise BitstreamError(f"keyframe is {img.size[0]}x{img.size[1]}, the header says {width}x{height}")
            out = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except BitstreamError:
        raise
    except Exception as e:  # Pillow signals bad image data with many exception types
        raise BitstreamError(f"keyframe is not a valid {codec.upper()} image ({type(e).__name__})") from None
    return out.copy()
