"""What a call measured, on each side: frames, every byte on the wire, rates, latency, coding times.

Bytes are those of the call protocol (:mod:`imf.call.protocol`): the hello and the reply, every FRAME
message (its index / capture-time prefix and its whole .imf record: type, length, payload, CRC) and every
ACK / BYE byte. TCP/IP headers lie below the protocol and are not in these counts; ``*_with_tcpip`` adds
an estimate of them, ``TCP_IP_HEADER_BYTES`` per message (IPv4 + TCP with timestamps, one segment per
message, as TCP_NODELAY sends them; acknowledgements riding on the reverse traffic are not counted).

Rates (kbps) are over the media time of the call, ``frames captured / fps``; ``kbps_series`` is the rate
in each second of wall-clock time since the hello. Latency is the receiver's capture → shown time per
frame (one clock on loopback, see docs/call.md); the sender's ``ack_latency_ms`` is capture → the ACK
back at the sender (one clock, includes the return trip).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TCP_IP_HEADER_BYTES = 52  # IPv4 20 + TCP 20 + the timestamps option 12


def summarize(values: list[float]) -> dict[str, float] | None:
    """median, p95, mean, max of a list (None when empty)."""
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean()),
            "max": float(a.max()), "count": int(a.size)}


def _kbps(nbytes: float, seconds: float) -> float:
    return 8.0 * nbytes / seconds / 1000.0 if seconds > 0 else 0.0


def _ms(stat: dict[str, float] | None, key: str = "median") -> str:
    return f"{stat[key]:.1f}" if stat else "-"


@dataclass
class SendStats:
    peer: str
    source: str
    fps: float
    realtime: bool
    window: int
    quality: int
    entropy: str
    frames_captured: int = 0
    frames_sent: int = 0
    keyframes: int = 0
    dropped_late: int = 0  # the encoder fell behind the source's clock: a newer frame was already due
    dropped_window: int = 0  # `window` frames were in flight (sent, not yet shown): the link or receiver lags
    max_in_flight: int = 0
    messages_sent: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    encode_ms: list[float] = field(default_factory=list)  # token frames: E_T + quantise + range code
    keyframe_encode_ms: list[float] = field(default_factory=list)
    ack_latency_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    complete: bool = False
    error: str | None = None

    @property
    def frames_dropped(self) -> int:
        return self.dropped_late + self.dropped_window

    @property
    def media_seconds(self) -> float:
        return self.frames_captured / self.fps if self.fps > 0 else 0.0

    @property
    def kbps(self) -> float:
        return _kbps(self.bytes_sent, self.media_seconds)

    @property
    def kbps_with_tcpip(self) -> float:
        return _kbps(self.bytes_sent + TCP_IP_HEADER_BYTES * self.messages_sent, self.media_seconds)

    @property
    def kbps_upstream(self) -> float:
        return _kbps(self.bytes_received, self.media_seconds)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in ("encode_ms", "keyframe_encode_ms", "ack_latency_ms"):
            out[name] = summarize(out.pop(name))
        for name in ("frames_dropped", "media_seconds", "kbps", "kbps_with_tcpip", "kbps_upstream"):
            out[name] = getattr(self, name)
        return out

    def summary(self) -> str:
        enc, key, ack = (summarize(v) for v in (self.encode_ms, self.keyframe_encode_ms, self.ack_latency_ms))
        return "\n".join([
            f"call to {self.peer}: {self.frames_captured} frames captured at {self.fps:.3f} fps"
            f"{'' if self.realtime else ' (as fast as the receiver takes them)'}, {self.frames_sent} sent "
            f"({self.keyframes} keyframe(s)), {self.frames_dropped} dropped "
            f"({self.dropped_window} with {self.window} frames in flight, {self.dropped_late} late)",
            f"sent {self.bytes_sent} bytes: {self.kbps:.2f} kbps (every byte of the call; "
            f"~{self.kbps_with_tcpip:.1f} kbps with TCP/IP headers), acks back {self.kbps_upstream:.2f} kbps",
            f"encode per frame: median {_ms(enc)} ms, p95 {_ms(enc, 'p95')} ms (keyframes {_ms(key)} ms); "
            f"capture -> acknowledged: median {_ms(ack)} ms, p95 {_ms(ack, 'p95')} ms",
        ])


@dataclass
class FrameRecord:
    """One frame the receiver decoded."""

    index: int  # source frame index
    kind: str  # "keyframe" | "tokens"
    bytes: int  # its FRAME message: prefix + record
    decode_ms: float
    latency_ms: float  # capture -> shown


@dataclass
class ReceiveStats:
    peer: str = ""
    header: dict[str, Any] = field(default_factory=dict)
    fps: float = 0.0
    rejected: list[str] = field(default_factory=list)  # one line per connection refused before the call
    frames_captured: int | None = None  # from the END message; None if the call broke off
    frames_decoded: int = 0
    keyframes: int = 0
    frames_written: int = 0  # to the output video: decoded frames, and a repeat of the last one per gap
    frames_repeated: int = 0
    messages_received: int = 0
    bytes_received: int = 0  # every byte, including a message cut off by a disconnect
    bytes_sent: int = 0
    handshake_bytes: int = 0  # the hello
    framing_bytes: int = 0  # FRAME prefixes, records' type / length / CRC, the END message
    keyframe_bytes: int = 0
    token_bytes: int = 0
    frames: list[FrameRecord] = field(default_factory=list)
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (s since the hello, bytes) per message
    seconds: float = 0.0
    complete: bool = False
    error: str | None = None

    @property
    def last_index(self) -> int:
        return self.frames[-1].index if self.frames else -1

    @property
    def frames_dropped(self) -> int:
        """Source frames that never arrived (the sender dropped them): known in full once END arrived."""
        seen = self.frames_captured if self.frames_captured is not None else self.last_index + 1
        return max(0, seen - self.frames_decoded)

    @property
    def media_seconds(self) -> float:
        seen = self.frames_captured if self.frames_captured is not None else self.last_index + 1
        return seen / self.fps if self.fps > 0 else 0.0

    @property
    def kbps(self) -> float:
        return _kbps(self.bytes_received, self.media_seconds)

    @property
    def kbps_with_tcpip(self) -> float:
        return _kbps(self.bytes_received + TCP_IP_HEADER_BYTES * (self.messages_received + 1), self.media_seconds)

    @property
    def kbps_upstream(self) -> float:
        return _kbps(self.bytes_sent, self.media_seconds)

    @property
    def kbps_series(self) -> list[float]:
        """kbps in each second of wall-clock time since the hello (the hello in the first)."""
        if not self.arrivals:
            return []
        per_second = np.zeros(int(max(t for t, _ in self.arrivals)) + 1)
        for t, n in self.arrivals:
            per_second[int(t)] += n
        return [float(8 * b / 1000) for b in per_second]

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        del out["arrivals"]
        token = [f for f in self.frames if f.kind == "tokens"]
        out["latency_ms"] = summarize([f.latency_ms for f in self.frames])
        out["decode_ms"] = summarize([f.decode_ms for f in token])
        out["keyframe_decode_ms"] = summarize([f.decode_ms for f in self.frames if f.kind == "keyframe"])
        out["token_frame_bytes"] = summarize([float(f.bytes) for f in token])
        for name in ("frames_dropped", "media_seconds", "kbps", "kbps_with_tcpip", "kbps_upstream", "kbps_series"):
            out[name] = getattr(self, name)
        return out

    def summary(self) -> str:
        d = self.to_dict()
        lat, dec, key, series = d["latency_ms"], d["decode_ms"], d["keyframe_decode_ms"], d["kbps_series"]
        captured = "?" if self.frames_captured is None else self.frames_captured
        return "\n".join([
            f"call from {self.peer}: {captured} frames captured, {self.frames_decoded} decoded "
            f"({self.keyframes} keyframe(s)), {self.frames_dropped} dropped by the sender",
            f"received {self.bytes_received} bytes: {self.kbps:.2f} kbps (every byte of the call: "
            f"{self.handshake_bytes} handshake, {self.framing_bytes} framing, {self.keyframe_bytes} keyframes, "
            f"{self.token_bytes} tokens; ~{self.kbps_with_tcpip:.1f} kbps with TCP/IP headers), "
            f"acks back {self.kbps_upstream:.2f} kbps; per second of the call {min(series, default=0):.2f} to "
            f"{max(series, default=0):.2f} kbps",
            f"latency capture -> shown: median {_ms(lat)} ms, p95 {_ms(lat, 'p95')} ms, max {_ms(lat, 'max')} ms; "
            f"decode per frame: median {_ms(dec)} ms, p95 {_ms(dec, 'p95')} ms (keyframes {_ms(key)} ms)",
        ])
