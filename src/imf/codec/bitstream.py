"""The ``.imf`` container: magic, version, header, then CRC-checked records (docs/imf-format.md).

Layout (all integers little-endian)::

    magic    8 bytes  b"\\x89IMF\\r\\n\\x1a\\n"
    version  u16      FORMAT_VERSION
    header   86 bytes model sha256 (32) | codec-tables sha256 (32) | width u16 | height u16 |
                      fps numerator u32 | fps denominator u32 | frame count u32 | quality u8 |
                      entropy model u8 (0 static, 1 temporal) | keyframe codec u8 (0 webp, 1 avif) |
                      flags u8 (0) | token dimension u16
    crc      u32      zlib.crc32 of version + header
    records  ...      type u8 | payload length (unsigned LEB128, at most 4 bytes) | payload |
                      u32 zlib.crc32 of type + length + payload, seeded with the previous record's CRC

The record CRCs form a chain: the first is seeded with the CRC of version + header with its frame count
set to 0 (the writer patches the count at the end), each next one with the CRC of the record before it.
A record moved, dropped, duplicated or taken from another file breaks the chain at the next record (END
always follows), so such files are rejected instead of decoding to wrong frames; the chain costs no bytes.
Version 1 files (records checked one by one) are refused with a message.

Record types: KEYFRAME (payload: intra-coded image bytes; the frame itself is that image),
TOKENS (a token packet, see :mod:`imf.codec.packets`; one frame per token), END (payload: u32 frame
count; nothing may follow it). The writer patches the header's frame count when it finishes.

:class:`BitstreamReader` validates everything and raises :class:`imf.errors.BitstreamError` with a
one-line message for any malformed input; every loop is bounded by the file size, so it cannot hang.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO, Iterator

from imf.codec.keyframe import KEYFRAME_CODECS
from imf.codec.packets import ENTROPY_MODES
from imf.errors import BitstreamError

# What a real video can be: header values outside these ranges are corruption, rejected before any work.
MIN_SIDE, MAX_SIDE = 8, 8192
MIN_FPS, MAX_FPS = 0.01, 1000.0
MAX_TOKEN_DIM = 4096

MAGIC = b"\x89IMF\r\n\x1a\n"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<32s32sHHIIIBBBBH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
PREAMBLE_BYTES = len(MAGIC) + _U16.size + _HEADER.size + _U32.size  # 100

KEYFRAME, TOKENS, END = 1, 2, 15
RECORD_NAMES = {KEYFRAME: "keyframe", TOKENS: "token packet", END: "end"}
MAX_RECORD_BYTES = (1 << 28) - 1


@dataclass(frozen=True)
class ImfHeader:
    """What the file header says. Hashes are lowercase hex sha256 strings."""

    model_hash: str
    codec_hash: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    quality: int
    entropy: str  # "static" | "temporal"
    keyframe_codec: str  # "webp" | "avif"
    token_dim: int
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return {"version": self.version, "model_hash": self.model_hash, "codec_hash": self.codec_hash,
                "width": self.width, "height": self.height, "fps": f"{self.fps.numerator}/{self.fps.denominator}",
                "frame_count": self.frame_count, "quality": self.quality, "entropy": self.entropy,
                "keyframe_codec": self.keyframe_codec, "token_dim": self.token_dim}


def _pack_header(h: ImfHeader) -> bytes:
    fps = Fraction(h.fps).limit_denominator(1 << 20)
    body = _HEADER.pack(bytes.fromhex(h.model_hash), bytes.fromhex(h.codec_hash), h.width, h.height,
                        fps.numerator, fps.denominator, h.frame_count, h.quality,
                        ENTROPY_MODES.index(h.entropy), KEYFRAME_CODECS.index(h.keyframe_codec), 0, h.token_dim)
    versioned = _U16.pack(FORMAT_VERSION) + body
    return MAGIC + versioned + _U32.pack(zlib.crc32(versioned))


def _chain_seed(version_bytes: bytes, body: bytes) -> int:
    """CRC that seeds the record chain: version + header body with the frame count (offset 76, u32) zeroed."""
    count_at = 32 + 32 + 2 + 2 + 4 + 4
    return zlib.crc32(version_bytes + body[:count_at] + b"\0\0\0\0" + body[count_at + 4:])


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class BitstreamWriter:
    """Writes an .imf file to a seekable binary file; counts the bytes of each kind.

    header_bytes counts the preamble, every record's type/length/CRC and the END record;
    keyframe_bytes and token_bytes count record payloads.
    """

    def __init__(self, f: BinaryIO, header: ImfHeader) -> None:
        if len(header.model_hash) != 64 or len(header.codec_hash) != 64:
            raise ValueError("model_hash and codec_hash must be 64 hex characters (sha256)")
        self.f = f
        self.header = header
        self._start = f.tell()
        preamble = _pack_header(header)
        f.write(preamble)
        self._chain = _chain_seed(preamble[len(MAGIC):len(MAGIC) + _U16.size],
                                  preamble[len(MAGIC) + _U16.size:len(MAGIC) + _U16.size + _HEADER.size])
        self.header_bytes = PREAMBLE_BYTES
        self.keyframe_bytes = 0
        self.token_bytes = 0

    def write_record(self, kind: int, payload: bytes) -> None:
        if kind not in RECORD_NAMES or len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"bad record: type {kind}, {len(payload)} bytes")
        head = bytes([kind]) + _uvarint(len(payload))
        crc = zlib.crc32(payload, zlib.crc32(head, self._chain))
        self._chain = crc
        self.f.write(head + payload + _U32.pack(crc))
        framing = len(head) + _U32.size
        if kind == KEYFRAME:
            self.keyframe_bytes += len(payload)
        elif kind == TOKENS:
            self.token_bytes += len(payload)
        else:
            framing += len(payload)
        self.header_bytes += framing

    def finish(self, frame_count: int) -> None:
        """Write the END record and patch the header's frame count."""
        self.write_record(END, _U32.pack(frame_count))
        end = self.f.tell()
        self.header = ImfHeader(**{**self.header.__dict__, "frame_count": frame_count})
        self.f.seek(self._start)
        self.f.write(_pack_header(self.header))
        self.f.seek(end)

    @property
    def total_bytes(self) -> int:
        return self.header_bytes + self.keyframe_bytes + self.token_bytes


@dataclass(frozen=True)
class Record:
    kind: int
    payload: bytes
    offset: int  # byte offset of the record in the file
    end: int  # byte offset just past its CRC


class BitstreamReader:
    """Reads and validates an .imf stream from a seekable binary file (header on construction)."""

    def __init__(self, f: BinaryIO, name: str = "input") -> None:
        self.f = f
        self.name = name
        try:
            start = f.tell()
            self._size = f.seek(0, io.SEEK_END) - start
            f.seek(start)
        except (OSError, ValueError) as e:
            raise BitstreamError(f"{name}: cannot read ({e})") from None
        self._pos = 0
        self.header = self._read_header()
        self._ended = False

    def _read(self, n: int, what: str) -> bytes:
        if n > self._size - self._pos:
            raise BitstreamError(f"{self.name}: truncated in {what} at byte {self._pos} "
                                 f"(needs {n} bytes, {self._size - self._pos} left)")
        data = self.f.read(n)
        if len(data) != n:
            raise BitstreamError(f"{self.name}: truncated in {what} at byte {self._pos}")
        self._pos += n
        return data

    def _read_header(self) -> ImfHeader:
        magic = self.f.read(len(MAGIC)) if self._size >= len(MAGIC) else b""
        if magic != MAGIC:
            raise BitstreamError(f"{self.name}: not an .imf file (bad magic bytes)")
        self._pos = len(MAGIC)
        raw_version = self._read(_U16.size, "the version")
        (version,) = _U16.unpack(raw_version)
        if version == 1:
            raise BitstreamError(f"{self.name}: an .imf file of format version 1, whose records are not bound to "
                                 f"their place; this imf reads version {FORMAT_VERSION}: encode the video again")
        if version != FORMAT_VERSION:
            raise BitstreamError(f"{self.name}: unsupported .imf format version {version} "
                                 f"(this imf reads version {FORMAT_VERSION})")
        body = self._read(_HEADER.size, "the header")
        (crc,) = _U32.unpack(self._read(_U32.size, "the header"))
        if zlib.crc32(raw_version + body) != crc:
            raise BitstreamError(f"{self.name}: corrupted header (CRC mismatch)")
        self._chain = _chain_seed(raw_version, body)
        (model_hash, codec_hash, width, height, fps_num, fps_den, frame_count, quality, entropy,
         kf_codec, flags, token_dim) = _HEADER.unpack(body)
        problems = []
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            problems.append(f"size {width}x{height} (each side in {MIN_SIDE}..{MAX_SIDE})")
        if fps_num == 0 or fps_den == 0 or not MIN_FPS <= fps_num / fps_den <= MAX_FPS:
            problems.append(f"fps {fps_num}/{fps_den} (a frame rate in {MIN_FPS}..{MAX_FPS})")
        if fps_den > 1 << 20:  # what the writer's limit_denominator can produce
            problems.append(f"fps denominator {fps_den} (at most 2^20)")
        if not 1 <= quality <= 12:
            problems.append(f"quality {quality} (1..12)")
        if not 1 <= token_dim <= MAX_TOKEN_DIM:
            problems.append(f"token dim {token_dim} (1..{MAX_TOKEN_DIM})")
        if entropy >= len(ENTROPY_MODES):
            problems.append(f"entropy model {entropy}")
        if kf_codec >= len(KEYFRAME_CODECS):
            problems.append(f"keyframe codec {kf_codec}")
        if flags != 0:
            problems.append(f"flags {flags}")
        if problems:
            raise BitstreamError(f"{self.name}: invalid header ({'; '.join(problems)})")
        return ImfHeader(model_hash.hex(), codec_hash.hex(), width, height, Fraction(fps_num, fps_den),
                         frame_count, quality, ENTROPY_MODES[entropy], KEYFRAME_CODECS[kf_codec], token_dim,
                         version)

    def _read_length(self) -> tuple[int, bytes]:
        raw = bytearray()
        value = 0
        for shift in range(0, 28, 7):
            (byte,) = self._read(1, "a record length")
            raw.append(byte)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, bytes(raw)
        raise BitstreamError(f"{self.name}: corrupted record length at byte {self._pos - 4}")

    def records(self) -> Iterator[Record]:
        """Yield KEYFRAME and TOKENS records in order; validate END (its frame count is checked by the caller)."""
        while not self._ended:
            offset = self._pos
            if offset == self._size:
                raise BitstreamError(f"{self.name}: truncated (ends at byte {offset} without an end record)")
            kind = self._read(1, "a record type")
            if kind[0] not in RECORD_NAMES:
                raise BitstreamError(f"{self.name}: unknown record type {kind[0]} at byte {offset} (corrupted file?)")
            length, raw_len = self._read_length()
            payload = self._read(length, f"a {RECORD_NAMES[kind[0]]} record")
            (crc,) = _U32.unpack(self._read(_U32.size, f"a {RECORD_NAMES[kind[0]]} record"))
            if zlib.crc32(payload, zlib.crc32(kind + raw_len, self._chain)) != crc:
                raise BitstreamError(f"{self.name}: corrupted, reordered or foreign {RECORD_NAMES[kind[0]]} record "
                                     f"at byte {offset} (CRC chain broken)")
            self._chain = crc
            if kind[0] == END:
                if length != _U32.size:
                    raise BitstreamError(f"{self.name}: malformed end record at byte {offset}")
                self.end_frame_count = _U32.unpack(payload)[0]
                if self._pos != self._size:
                    raise BitstreamError(f"{self.name}: {self._size - self._pos} unexpected bytes after the end record")
                self._ended = True
                return
            yield Record(kind[0], payload, offset, self._pos)


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) byte offsets of every record of a valid .imf file, the END record last: for tools and
    tests that rearrange whole records. BitstreamError if ``data`` is not a valid file."""
    spans = [(r.offset, r.end) for r in BitstreamReader(io.BytesIO(data)).records()]
    return spans + [(spans[-1][1] if spans else PREAMBLE_BYTES, len(data))]
