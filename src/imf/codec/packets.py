"""Token packets: the quantized tokens of a few consecutive frames, range coded with one entropy model.

Payload layout: ``u8 n`` (frames in the packet, 1..255), then the range coder's 32-bit words,
little-endian. Within a packet, frames are coded in order, each as d symbols (plus escapes).

Entropy models (docs/imf-format.md; the paper's offline / online modes):
- ``static``: every frame's symbols with the per-dimension static table;
- ``temporal``: the residual of each symbol to the previous frame's symbol of the same dimension, with
  the per-dimension residual table. The first frame of a segment (after a keyframe) has no previous
  frame and uses the static table; a :class:`TokenCoder` carries the previous symbols across packets
  and forgets them at :meth:`TokenCoder.reset` (called at each keyframe), so segments decode on their own.
"""

from __future__ import annotations

import constriction
import numpy as np

from imf.codec.entropy import MAX_SYMBOL, decode_values, encode_values
from imf.codec.tables import QualityLevel
from imf.errors import BitstreamError

ENTROPY_MODES = ("static", "temporal")
MAX_PACKET_FRAMES = 255


class TokenCoder:
    """Stateful coder of token packets for one quality level and entropy mode (one per side)."""

    def __init__(self, level: QualityLevel, mode: str) -> None:
        if mode not in ENTROPY_MODES:
            raise ValueError(f"entropy mode must be one of {ENTROPY_MODES}, got {mode!r}")
        self.level = level
        self.mode = mode
        self.dim = level.quantizer.dim
        self._prev: np.ndarray | None = None  # (d,) int64: symbols of the previous frame in this segment

    def reset(self) -> None:
        """Start a new segment (a keyframe was sent): the next frame is coded without a previous one."""
        self._prev = None

    def _residual(self) -> bool:
        """Whether the next frame is coded as a residual to the previous frame's symbols."""
        return self.mode == "temporal" and self._prev is not None

    def encode_packet(self, symbols: np.ndarray) -> tuple[bytes, float]:
        """symbols (n, d) int -> (payload bytes, ideal code length in bits under the tables)."""
        symbols = np.asarray(symbols, dtype=np.int64)
        if symbols.ndim != 2 or symbols.shape[1] != self.dim or not 1 <= symbols.shape[0] <= MAX_PACKET_FRAMES:
            raise ValueError(f"a packet holds 1..{MAX_PACKET_FRAMES} frames of {self.dim} symbols, got {symbols.shape}")
        if np.abs(symbols).max() > MAX_SYMBOL:
            raise ValueError(f"symbols must lie within +-{MAX_SYMBOL}")
        encoder = constriction.stream.queue.RangeEncoder()
        estimate = 0.0
        for row in symbols:
            residual = self._residual()
            table = self.level.temporal if residual else self.level.static
            values = row - self._prev if residual else row
            estimate += table.bits(values)
            encode_values(encoder, table, values)
            self._prev = row
        words = np.asarray(encoder.get_compressed(), dtype="<u4")
        return bytes([symbols.shape[0]]) + words.tobytes(), estimate

    def decode_packet(self, payload: bytes) -> np.ndarray:
        """payload -> symbols (n, d) int64; BitstreamError if it cannot be a packet of this coder."""
        if len(payload) < 5 or (len(payload) - 1) % 4 != 0:  # the range coder always emits >= 1 word
            raise BitstreamError(f"token packet of {len(payload)} bytes is not 1 + a positive multiple of 4")
        n = payload[0]
        if n == 0:
            raise BitstreamError("token packet holds 0 frames")
        words = np.frombuffer(payload, dtype="<u4", offset=1).astype(np.uint32)
        try:
            decoder = constriction.stream.queue.RangeDecoder(words)
        except Exception as e:  # pragma: no cover - constriction accepts any uint32 array
            raise BitstreamError(f"token packet cannot be read ({type(e).__name__})") from None
        out = np.empty((n, self.dim), dtype=np.int64)
        for i in range(n):
            residual = self._residual()
            values = decode_values(decoder, self.level.temporal if residual else self.level.static)
            row = values + self._prev if residual else values
            if np.abs(row).max() > MAX_SYMBOL:
                raise BitstreamError("token packet decodes to a symbol out of range (corrupted data)")
            out[i] = row
            self._prev = row
        return out
