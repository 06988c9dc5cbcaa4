"""Bit accounting of an encoded .imf file.

Every bit of the file is counted in exactly one of: ``header_bits`` (magic, version, header, and each
record's type, length and CRC, and the end record), ``keyframe_bits`` (intra-coded reference images)
and ``token_bits`` (entropy-coded token packets, including each packet's frame-count byte and the
range coder's final word). ``header_bits + keyframe_bits + token_bits == 8 * total_bytes``.

Rates: ``bpp_total`` counts every bit of the file, ``bpp_tokens`` only the token packets (as the paper
counts, which leaves out the reference frames), both per pixel of all coded frames
(``num_frames * width * height``); ``kbps_*`` are the same bits per second at the clip's frame rate.
``estimated_token_bits`` is the ideal code length of the coded symbols under the integer entropy
tables; the range coder's output is within a fraction of a percent plus about one 32-bit word per packet.
``copy_check``: the decoder-side PSNR of the token-coded frames beside copying their keyframe
(``imf.eval.domain.CopyComparison``; None when every frame was a keyframe).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from imf.eval.domain import CopyComparison


@dataclass
class EncodeStats:
    total_bytes: int
    header_bits: int
    keyframe_bits: int
    token_bits: int
    num_frames: int
    num_keyframes: int
    num_packets: int
    width: int
    height: int
    fps: float
    quality: int
    entropy: str
    keyframe_codec: str
    keyframe_quality: int
    estimated_token_bits: float
    encode_seconds: float
    keyframe_indices: list[int] = dataclasses.field(default_factory=list)
    copy_check: CopyComparison | None = None

    @property
    def num_token_frames(self) -> int:
        return self.num_frames - self.num_keyframes

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def _per_pixel(self, bits: float) -> float:
        pixels = self.num_frames * self.width * self.height
        return bits / pixels if pixels else 0.0

    def _kbps(self, bits: float) -> float:
        return bits / self.duration / 1000.0 if self.duration > 0 else 0.0

    @property
    def bpp_total(self) -> float:
        return self._per_pixel(8 * self.total_bytes)

    @property
    def bpp_tokens(self) -> float:
        return self._per_pixel(self.token_bits)

    @property
    def kbps_total(self) -> float:
        return self._kbps(8 * self.total_bytes)

    @property
    def kbps_tokens(self) -> float:
        return self._kbps(self.token_bits)

    @property
    def token_bits_per_frame(self) -> float:
        """Token-packet bits per token-coded frame (frames that are not keyframes)."""
        return self.token_bits / self.num_token_frames if self.num_token_frames else 0.0

    @property
    def encode_fps(self) -> float:
        return self.num_frames / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in ("num_token_frames", "bpp_total", "bpp_tokens", "kbps_total", "kbps_tokens",
                     "token_bits_per_frame", "encode_fps"):
            out[name] = getattr(self, name)
        return out

    def summary(self) -> str:
        """A few lines of bit accounting for people."""
        kb = 8 * self.total_bytes
        return "\n".join([
            f"{self.num_frames} frames {self.width}x{self.height} @ {self.fps:.3f} fps, "
            f"{self.num_keyframes} keyframe(s) ({self.keyframe_codec} q{self.keyframe_quality}), "
            f"token quality {self.quality}, {self.entropy} entropy model",
            f"total     {self.total_bytes} bytes = {kb} bits: {self.bpp_total:.5f} bpp, {self.kbps_total:.3f} kbps",
            f"keyframes {self.keyframe_bits} bits ({100 * self.keyframe_bits / max(kb, 1):.1f}%)",
            f"tokens    {self.token_bits} bits ({100 * self.token_bits / max(kb, 1):.1f}%): "
            f"{self.token_bits_per_frame:.1f} bits/frame, {self.bpp_tokens:.6f} bpp, {self.kbps_tokens:.3f} kbps "
            f"(entropy-model estimate {self.estimated_token_bits:.0f} bits)",
            f"headers   {self.header_bits} bits ({100 * self.header_bits / max(kb, 1):.1f}%)",
            f"encoded at {self.encode_fps:.1f} frames/s",
        ])
