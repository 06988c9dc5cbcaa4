"""``TokenCodec``: the token stream of one quality level and entropy mode, in CompressAI's shape.

    codec = TokenCodec(tables, quality=6, entropy="temporal")
    payload, tokens_hat = codec.compress(tokens)      # tokens (n, d) float -> bytes, the decoder's tokens
    tokens_hat = decoder_codec.decompress(payload)    # the same (n, d) tokens on the other side

Quantisation (:mod:`.quantizer`) and range coding (:mod:`.packets`) behind one object. With the temporal
entropy model a codec carries the previous frame's symbols from one packet to the next: the encoder's and
the decoder's codec must see the same packets in the same order and ``reset()`` at the same keyframes. The
video encoder and decoder (:mod:`.encoder`, :mod:`.decoder`) are built on it; ``quantize`` /
``encode_symbols`` let the encoder reconstruct each frame closed loop before its packet is full.
"""

from __future__ import annotations

import numpy as np
import torch

from imf.codec.packets import ENTROPY_MODES, TokenCoder
from imf.codec.tables import CodecTables


class TokenCodec:
    def __init__(self, tables: CodecTables, quality: int, entropy: str = "temporal") -> None:
        if entropy not in ENTROPY_MODES:
            raise ValueError(f"entropy mode must be one of {ENTROPY_MODES}, got {entropy!r}")
        self.quality, self.entropy = quality, entropy
        self.level = tables.level(quality)  # CheckpointError naming the fitted qualities
        self.quantizer = self.level.quantizer
        self._coder = TokenCoder(self.level, entropy)

    @property
    def dim(self) -> int:
        return self.quantizer.dim

    def reset(self) -> None:
        """A keyframe was sent: the next frame is coded without a previous one (both sides)."""
        self._coder.reset()

    # ---- the two halves, for a closed-loop encoder
    def quantize(self, tokens: torch.Tensor | np.ndarray) -> np.ndarray:
        """(n, d) float tokens -> (n, d) int64 symbols."""
        return self.quantizer.quantize(tokens)

    def dequantize(self, symbols: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """(n, d) int symbols -> (n, d) float32 tokens, what the decoder reconstructs from."""
        return self.quantizer.dequantize(symbols, device=device)

    def encode_symbols(self, symbols: np.ndarray) -> tuple[bytes, float]:
        """(n, d) symbols of 1..255 consecutive frames -> (packet bytes, ideal code length in bits)."""
        return self._coder.encode_packet(symbols)

    def decode_symbols(self, payload: bytes) -> np.ndarray:
        """packet bytes -> (n, d) int64 symbols; BitstreamError if it cannot be a packet of this codec."""
        return self._coder.decode_packet(payload)

    # ---- CompressAI's shape
    def compress(self, tokens: torch.Tensor | np.ndarray) -> tuple[bytes, torch.Tensor]:
        """(n, d) tokens of consecutive frames -> (packet bytes, (n, d) tokens the decoder will get)."""
        symbols = self.quantize(tokens)
        payload, _ = self.encode_symbols(symbols)
        device = tokens.device if isinstance(tokens, torch.Tensor) else "cpu"
        return payload, self.dequantize(symbols, device)

    def decompress(self, payload: bytes, device: torch.device | str = "cpu") -> torch.Tensor:
        """packet bytes -> (n, d) float32 tokens."""
        return self.dequantize(self.decode_symbols(payload), device)
