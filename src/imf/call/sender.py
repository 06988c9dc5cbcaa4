"""The sending side of a call: capture, encode causally, send over TCP, never buffer without bound.

Per source frame, in order (docs/call.md):
1. capture: a file is played at its own frame rate (frame i is due i / fps after the first), or as fast as
   the receiver takes frames (``realtime=False``); a camera delivers frames at its own pace. A frame whose
   successor is already due is stale and dropped (``dropped_late``: the encoder fell behind the clock).
2. keyframe decision, as the file encoder makes it (:mod:`imf.codec.encoder`): the first frame, a scene cut
   (every captured frame goes through the detector, a cut on a dropped frame makes the next frame sent a
   keyframe), every ``max_keyframe_interval`` frames. There is no look-ahead and no closed-loop decode: the
   token of a frame depends on that frame alone, and the keyframe is the intra-coded image.
3. flow control: a frame is *in flight* from the moment it is queued until the receiver's ACK says it was
   shown. With ``window`` frames in flight a token frame is dropped (``dropped_window``) before it is entropy
   coded, so the temporal entropy model of both sides stays in step: each token is decoded on its own given
   the reference (``imf.codec.decoder.reconstruct_frame``), and the receiver's codec only ever sees the
   packets that were sent. Keyframes are never dropped: they wait for room. With ``realtime=False`` token
   frames wait too (no drops), so the call gives exactly the frames of ``imf encode --packet-frames 1`` +
   ``imf decode``.
   The send queue therefore never holds more than ``window`` frames (+ END).
4. the frame goes out as a FRAME message (:mod:`imf.call.protocol`): its index, its capture time, one .imf
   record (one frame per record: nothing waits for a packet to fill).
"""

from __future__ import annotations

import itertools
import os
import queue
import socket
import struct
import threading
import time
from fractions import Fraction

from imf.call.protocol import (ACCEPTED, ACK, BYE, CALL_MAGIC, CALL_VERSION, CallFailed, CallRefused, FrameClock,
                               PeerClosed, RecordTape, REPLY_BYTES, SocketReader, decode_reply_head, encode_hello,
                               now_us)
from imf.call.source import FrameSource, open_source
from imf.call.stats import SendStats
from imf.codec.bitstream import END, KEYFRAME, TOKENS, BitstreamWriter, ImfHeader
from imf.codec.keyframe import DEFAULT_KEYFRAME_CODEC, DEFAULT_KEYFRAME_QUALITY, encode_keyframe
from imf.codec.quantizer import DEFAULT_QUALITY
from imf.codec.scenecut import DEFAULT_SCENE_CUT_THRESHOLD, SceneCutDetector
from imf.codec.tables import CodecTables
from imf.codec.token_codec import TokenCodec
from imf.errors import CheckpointError, ConfigError, InputError
from imf.progress import progress_bar

DEFAULT_WINDOW = 8
DEFAULT_TIMEOUT = 10.0


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection (TCP_NODELAY: small messages go out at once), retried until ``timeout`` while the
    receiver is not listening yet. CallFailed when it never answers; InputError for an unknown host."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic()))
            break
        except socket.gaierror as e:
            raise InputError(f"cannot find the host {host!r} ({e.strerror})") from None
        except (ConnectionRefusedError, socket.timeout, OSError) as e:
            if time.monotonic() >= deadline:
                reason = "connection refused" if isinstance(e, ConnectionRefusedError) else (e.strerror or str(e))
                raise CallFailed(f"no receiver at {host}:{port} ({reason}; tried for {timeout:g} s)") from None
            time.sleep(0.1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_reply(reader: SocketReader, peer: str, timeout: float) -> None:
    """The receiver's answer to the hello: returns when accepted, CallRefused with its reason otherwise."""
    try:
        head = reader.read(REPLY_BYTES, timeout)
    except PeerClosed:
        raise CallFailed(f"{peer} closed the connection during the handshake (is it an imf call receiver?)") from None
    magic, version, status, n = decode_reply_head(head)
    if magic != CALL_MAGIC:
        raise CallFailed(f"{peer} is not an imf call receiver (bad reply)")
    reason = reader.read(n, timeout).decode("utf-8", "replace") if n else ""
    if status != ACCEPTED:
        raise CallRefused(f"the receiver at {peer} refused the call: {reason or 'no reason given'}")
    if version != CALL_VERSION:
        raise CallFailed(f"{peer} speaks imf call protocol version {version}, this sender {CALL_VERSION}")


class _Link:
    """The connection once accepted: a writer thread drains the bounded send queue, a reader thread counts
    the receiver's ACKs; the main thread asks for room in the window."""

    def __init__(self, sock: socket.socket, window: int, timeout: float) -> None:
        self.sock, self.window, self.timeout = sock, window, timeout
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=window + 2)  # frames in flight + END + stop
        self.cond = threading.Condition()
        self.frames_queued = self.acked = self.max_in_flight = 0
        self.bytes_sent = self.bytes_received = self.messages_sent = 0
        self.ack_times_us: list[int] = []
        self.bye = self.closing = False
        self.failure: str | None = None
        sock.settimeout(timeout)
        self._threads = [threading.Thread(target=self._write_loop, name="imf-call-send", daemon=True),
                         threading.Thread(target=self._read_loop, name="imf-call-acks", daemon=True)]
        for t in self._threads:
            t.start()

    def fail(self, message: str) -> None:
        with self.cond:
            if self.failure is None and not self.closing:
                self.failure = message
            self.cond.notify_all()

    def _write_loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            try:
                self.sock.sendall(item)
            except socket.timeout:
                self.fail(f"the receiver stopped reading (nothing went out for {self.timeout:g} s)")
                return
            except OSError as e:
                self.fail(f"the receiver went away ({e.strerror or e})")
                return
            with self.cond:
                self.bytes_sent += len(item)
                self.messages_sent += 1

    def _read_loop(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:  # the window wait notices a receiver that shows nothing
                continue
            except OSError as e:
                self.fail(f"the receiver went away ({e.strerror or e})")
                return
            with self.cond:
                if not data:
                    if not self.bye:
                        self.fail(f"the receiver closed the call after showing {self.acked} frames")
                    self.cond.notify_all()
                    return
                self.bytes_received += len(data)
                for byte in data:
                    if byte == ACK and self.acked < self.frames_queued:
                        self.acked += 1
                        self.ack_times_us.append(now_us())
                    elif byte == BYE:
                        self.bye = True
                    else:
                        self.fail(f"the receiver sent unexpected data (byte {byte:#04x})")
                        return
                self.cond.notify_all()

    def in_flight(self) -> int:
        with self.cond:
            return self.frames_queued - self.acked

    def wait_for_room(self) -> None:
        """Until fewer than ``window`` frames are in flight; CallFailed on a failure or no ACK for ``timeout``."""
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while self.failure is None and self.frames_queued - self.acked >= self.window:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.failure = f"the receiver showed no frame for {self.timeout:g} s"
                    break
                self.cond.wait(remaining)
            if self.failure is not None:
                raise CallFailed(self.failure)

    def put(self, message: bytes, *, frame: bool) -> None:
        with self.cond:
            if self.failure is not None:
                raise CallFailed(self.failure)
            if frame:
                self.frames_queued += 1
                self.max_in_flight = max(self.max_in_flight, self.frames_queued - self.acked)
        self.queue.put(message, timeout=self.timeout)  # never waits: the window bounds what is queued

    def finish(self, end_message: bytes) -> None:
        """Send END and wait (up to ``timeout``) for the receiver's BYE: every frame sent was shown."""
        self.put(end_message, frame=False)
        self.queue.put(None, timeout=self.timeout)
        deadline = time.monotonic() + self.timeout
        with self.cond:
            while self.failure is None and not self.bye:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.failure = f"the receiver did not confirm the end of the call within {self.timeout:g} s"
                    break
                self.cond.wait(remaining)
            if self.failure is not None:
                raise CallFailed(self.failure)

    def close(self) -> None:
        with self.cond:
            self.closing = True
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for t in self._threads:
            t.join(timeout=2.0)
        self.sock.close()


def _check(model, tables: CodecTables | None, quality: int, entropy: str, keyframe_codec: str,
           keyframe_quality: int, scene_cut_threshold: float | None, max_keyframe_interval: int | None,
           window: int, identity: str) -> None:
    from imf.codec.encoder import _check_options  # the file encoder's checks, with one frame per packet

    if tables is None:
        raise CheckpointError("a call needs the model's codec tables: tables=imf.codec.load_tables(CKPT_DIR)")
    if window < 1:
        raise ConfigError(f"window must be at least 1 frame, got {window}")
    _check_options(quality, entropy, 1, max_keyframe_interval, None, scene_cut_threshold, keyframe_codec,
                   keyframe_quality, tables, model, identity)


def send_call(
    model,
    source: str | os.PathLike | FrameSource,
    to: tuple[str, int],
    *,
    tables: CodecTables | None,
    quality: int = DEFAULT_QUALITY,
    entropy: str = "temporal",
    keyframe_codec: str = DEFAULT_KEYFRAME_CODEC,
    keyframe_quality: int = DEFAULT_KEYFRAME_QUALITY,
    scene_cut_threshold: float | None = DEFAULT_SCENE_CUT_THRESHOLD,
    max_keyframe_interval: int | None = None,
    window: int = DEFAULT_WINDOW,
    realtime: bool = True,
    max_frames: int | None = None,
    connect_timeout: float = DEFAULT_TIMEOUT,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = False,
) -> SendStats:
    """Call the receiver at ``to`` = (host, port) and stream ``source`` (a video file, frame folder or
    /dev/videoN) to it; see the module doc. Returns the sender's stats, with ``error`` set (and
    ``complete`` False) when the receiver went away mid-call.

    CallRefused (a user error) when the receiver refuses the stream (another model, other tables);
    CallFailed when no receiver answers; InputError for an unreadable source.
    """
    from imf.checkpoint import model_hash
    from imf.codec.decoder import codec_pipeline

    identity = model_hash(model)
    _check(model, tables, quality, entropy, keyframe_codec, keyframe_quality, scene_cut_threshold,
           max_keyframe_interval, window, identity)
    size = model.config.resolution
    src = source if isinstance(source, FrameSource) else open_source(source, size)
    frames = iter(src.frames)
    first = next(frames, None)
    if first is None:
        raise InputError(f"{src.name}: no frames to send")
    model.eval()
    pipe = codec_pipeline(model, "fp32")  # as the file encoder: E_T's output decides the symbols
    pipe.encode_tokens([first])  # warm-up: the first frame's latency should not carry torch's first call
    codec = TokenCodec(tables, quality, entropy)
    fps = Fraction(src.fps).limit_denominator(1001)
    header = ImfHeader(identity, tables.identity(), size, size, fps, 0, quality, entropy, keyframe_codec, tables.dim)
    tape = RecordTape()
    writer = BitstreamWriter(tape, header)
    preamble = b"".join(tape.take())

    host, port = to
    peer = f"{host}:{port}"
    stats = SendStats(peer=peer, source=src.name, fps=float(fps), realtime=realtime, window=window,
                      quality=quality, entropy=entropy)
    pace = realtime and not src.live  # a camera keeps its own time
    sock = connect(host, port, connect_timeout)
    start_us, start_mono = now_us(), time.monotonic()
    hello = encode_hello(start_us, preamble)
    reader = SocketReader(sock)
    try:
        sock.settimeout(timeout)
        sock.sendall(hello)
        read_reply(reader, peer, timeout)
    except (CallRefused, CallFailed):
        sock.close()
        raise
    except OSError as e:
        sock.close()
        raise CallFailed(f"the handshake with {peer} failed ({e.strerror or e})") from None
    link = _Link(sock, window, timeout)
    clock = FrameClock(start_us)
    detector = SceneCutDetector(scene_cut_threshold)
    period = 1.0 / float(fps)
    capture_us: list[int] = []
    key_due, last_key = True, None
    count = 0
    wall = time.perf_counter()
    try:
        with progress_bar(total=src.num_frames if max_frames is None else max_frames, unit="frame", desc="call",
                          enabled=progress) as bar:
            t_first = None
            for i, frame in enumerate(itertools.islice(itertools.chain([first], frames), max_frames)):
                count = i + 1
                bar.update(1)
                key_due |= detector.is_cut(frame)
                if max_keyframe_interval is not None and last_key is not None and i - last_key >= max_keyframe_interval:
                    key_due = True
                if pace:
                    t_first = time.monotonic() if t_first is None else t_first
                    due = t_first + i * period
                    wait = due - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    elif -wait > period:  # frame i + 1 is due already: this one is stale
                        stats.dropped_late += 1
                        continue
                    captured = start_us + round(1e6 * (due - start_mono))
                else:
                    captured = now_us()
                if key_due:
                    link.wait_for_room()  # a keyframe is never dropped
                    t0 = time.perf_counter()
                    data = encode_keyframe(frame, codec=keyframe_codec, quality=keyframe_quality)
                    writer.write_record(KEYFRAME, data)
                    codec.reset()
                    stats.keyframe_encode_ms.append(1e3 * (time.perf_counter() - t0))
                    stats.keyframes += 1
                    key_due, last_key = False, i
                else:
                    if realtime and link.in_flight() >= window:
                        stats.dropped_window += 1  # before coding: the entropy coder never sees it
                        continue
                    link.wait_for_room()
                    t0 = time.perf_counter()
                    symbols = codec.quantize(pipe.encode_tokens([frame]))  # (1, d)
                    payload, _ = codec.encode_symbols(symbols)
                    writer.write_record(TOKENS, payload)
                    stats.encode_ms.append(1e3 * (time.perf_counter() - t0))
                link.put(clock.encode(i, captured) + b"".join(tape.take()), frame=True)
                capture_us.append(captured)
                stats.frames_sent += 1
            stats.frames_captured = count
            writer.write_record(END, struct.pack("<I", stats.frames_sent))
            link.finish(clock.encode(count, max(now_us(), capture_us[-1])) + b"".join(tape.take()))
            stats.complete = True
    except CallFailed as e:
        stats.frames_captured = count
        stats.error = str(e)
    finally:
        link.close()
        stats.seconds = time.perf_counter() - wall
        stats.max_in_flight = link.max_in_flight
        stats.messages_sent = link.messages_sent + 1  # + the hello
        stats.bytes_sent = len(hello) + link.bytes_sent
        stats.bytes_received = reader.bytes_received + link.bytes_received
        stats.ack_latency_ms = [(a - c) / 1e3 for a, c in zip(link.ack_times_us, capture_us)]
    return stats
