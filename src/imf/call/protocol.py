"""The wire protocol of ``imf call``: an ``.imf`` stream over one TCP connection (docs/call.md).

Sender → receiver, once (the HELLO, 118 bytes)::

    magic    8 bytes   b"\\x89IMFCALL"
    version  u16       CALL_VERSION
    start    u64       the call's start time, microseconds since the Unix epoch (capture times count from it)
    preamble 100 bytes the .imf preamble (docs/imf-format.md): magic, format version, header (model and
                       codec-tables identity, size, fps, frame count 0, quality, entropy model, ...), CRC

Receiver → sender, once (the REPLY)::

    magic 8 bytes | version u16 | status u8 (0 accepted, 1 refused) | u16 n | n bytes UTF-8: why refused

Sender → receiver, then, one FRAME message per frame sent::

    uvarint  source frame index minus the previous message's (the first: the index itself)
    uvarint  capture time in ms since ``start``, minus the previous message's (both rounded: no drift)
    record   one .imf record, exactly as in a file: KEYFRAME, or TOKENS holding one frame; END last, whose
             index brings the count to the number of source frames captured (sent + dropped)

Receiver → sender during the call: one byte ``ACK`` per frame shown (in order), ``BYE`` after END.

The records keep the file's CRC chain, so the records received, behind the preamble with its frame
count patched, are an ``.imf`` file (:class:`RecordTape` lets :class:`imf.codec.bitstream.BitstreamWriter`
both write and check them). All integers are little-endian; uvarint is the file's LEB128.
"""

from __future__ import annotations

import socket
import struct
import time

from imf.codec.bitstream import MAGIC as IMF_MAGIC
from imf.codec.bitstream import PREAMBLE_BYTES
from imf.codec.bitstream import _uvarint as uvarint  # the file's LEB128, written once
from imf.errors import IMFError

CALL_MAGIC = b"\x89IMFCALL"
CALL_VERSION = 1
_HELLO = struct.Struct("<8sHQ")
HELLO_BYTES = _HELLO.size + PREAMBLE_BYTES  # 118
_REPLY = struct.Struct("<8sHBH")
REPLY_BYTES = _REPLY.size  # 13, then the reason
ACCEPTED, REFUSED = 0, 1
ACK, BYE = 0x06, 0x04
MAX_REASON_BYTES = 1000


class CallRefused(IMFError):
    """The receiver refused the stream (another model, other codec tables, another protocol version)."""


class CallFailed(Exception):
    """The network or the other side failed: unreachable, went away, sent garbage mid-call, timed out."""


class PeerClosed(CallFailed):
    """The other side closed the connection."""


class PeerTimeout(CallFailed):
    """Nothing arrived within the allowed time."""


# ------------------------------------------------------------------------------------------- messages
def encode_hello(start_us: int, preamble: bytes) -> bytes:
    if len(preamble) != PREAMBLE_BYTES or not preamble.startswith(IMF_MAGIC):
        raise ValueError("the hello carries a 100-byte .imf preamble")
    return _HELLO.pack(CALL_MAGIC, CALL_VERSION, start_us) + preamble


def check_hello_start(head: bytes) -> int:
    """The first 18 bytes of a hello -> its start time (µs); CallRefused naming what is wrong."""
    magic, version, start_us = _HELLO.unpack(head)
    if magic != CALL_MAGIC:
        raise CallRefused("not an imf call (bad magic bytes)")
    if version != CALL_VERSION:
        raise CallRefused(f"imf call protocol version {version}; this receiver speaks version {CALL_VERSION}")
    return start_us


def encode_reply(status: int, reason: str = "") -> bytes:
    text = reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
    return _REPLY.pack(CALL_MAGIC, CALL_VERSION, status, len(text)) + text


def decode_reply_head(head: bytes) -> tuple[bytes, int, int, int]:
    """The first REPLY_BYTES of a reply -> (magic, version, status, reason length)."""
    return _REPLY.unpack(head)


def frame_prefix(index_delta: int, time_delta_ms: int) -> bytes:
    return uvarint(index_delta) + uvarint(time_delta_ms)


class FrameClock:
    """Both sides' bookkeeping of the FRAME prefixes: absolute index and capture time from the deltas."""

    def __init__(self, start_us: int) -> None:
        self.start_us = start_us
        self.index = 0
        self.ms = 0
        self._first = True

    def encode(self, index: int, capture_us: int) -> bytes:
        ms = max(self.ms, round((capture_us - self.start_us) / 1000))  # capture times never go back
        first, self._first = self._first, False
        delta = index if first else index - self.index
        if delta < (0 if first else 1):
            raise ValueError(f"frame index {index} after {self.index}")
        out = frame_prefix(delta, ms - self.ms)
        self.index, self.ms = index, ms
        return out

    def decode(self, index_delta: int, time_delta_ms: int) -> tuple[int, int]:
        """-> (frame index, capture time µs since the epoch)."""
        self.index = index_delta if self._first else self.index + index_delta
        self._first = False
        self.ms += time_delta_ms
        return self.index, self.start_us + 1000 * self.ms


def now_us() -> int:
    """Wall-clock time in µs since the epoch: capture and display times (one clock on one machine; across
    machines the clocks must be synchronised for the receiver's latency, see docs/call.md)."""
    return time.time_ns() // 1000


# --------------------------------------------------------------------------------------------- I/O
class RecordTape:
    """A write-only file for :class:`imf.codec.bitstream.BitstreamWriter` that hands back what was written
    since the last :meth:`take`. The sender writes each record through a writer on a tape and sends the bytes
    taken; the receiver writes each record it received through its own and compares: equal bytes mean an
    intact CRC chain, before anything is decoded."""

    def __init__(self) -> None:
        self._pos = 0
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._pos + pos
        return self._pos

    def take(self) -> list[bytes]:
        """The writes since the last take, one item per write call."""
        out, self._chunks = self._chunks, []
        return out


class SocketReader:
    """Exact reads from a socket, each within a time limit; counts every byte received."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self.bytes_received = 0

    def _fill(self, timeout: float | None, deadline: float | None) -> None:
        wait = None if deadline is None else max(0.001, deadline - time.monotonic())
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise PeerTimeout(f"nothing received for {timeout:g} s") from None
        except OSError as e:  # a reset connection
            raise PeerClosed(f"the connection was reset ({e.strerror or e})") from None
        if not data:
            raise PeerClosed("the connection was closed")
        self._buf += data
        self.bytes_received += len(data)

    def read(self, n: int, timeout: float | None) -> bytes:
        """``n`` bytes, all of them within ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._buf) < n:
            self._fill(timeout, deadline)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_uvarint(self, timeout: float | None, max_bytes: int = 5) -> tuple[int, bytes]:
        """-> (value, its raw bytes); CallFailed for a varint longer than ``max_bytes``."""
        raw = bytearray()
        value = 0
        for shift in range(0, 7 * max_bytes, 7):
            (byte,) = self.read(1, timeout)
            raw.append(byte)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, bytes(raw)
        raise CallFailed(f"malformed stream (a length field longer than {max_bytes} bytes)")


def parse_hostport(text: str, *, default_host: str | None = None) -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT' or, with ``default_host``, 'PORT' -> (host, port); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep:
        if default_host is None:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        host, port = default_host, text
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"expected a port number in {text!r}") from None
    if not 0 <= number <= 65535 or (not host and default_host is None):
        raise ValueError(f"expected HOST:PORT with a port in 0..65535, got {text!r}")
    return host, number
