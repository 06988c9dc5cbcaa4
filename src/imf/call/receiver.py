"""The receiving side of a call: accept one call, decode each frame as soon as its message is whole.

:class:`CallReceiver` listens (the port is bound when it is built, so ``address`` is known at once) and
:meth:`CallReceiver.run` waits for a call. A connection that is not a call for this receiver's model is
refused at the handshake with a one-line reason sent back and logged (garbage, another protocol version, a
corrupted or non-canonical .imf preamble, another model, other codec tables), and the receiver goes on
waiting. Once a call is accepted, every record is checked against the .imf CRC chain before it is decoded
(:class:`imf.call.protocol.RecordTape`); keyframes become the reference, each token frame is
``reconstruct_frame`` of the decoder (:mod:`imf.codec.decoder`), frame by frame. After a frame is shown
(handed to ``on_frame`` and the output video) one ACK byte goes back, which is what bounds the sender.

Outputs: ``output`` (a video at the stream's frame rate; a gap of frames the sender dropped shows the last
frame again, as a call's screen freezes, so the video keeps the call's timing) and ``record`` (the .imf
file of the records received: with no drops, byte for byte what ``imf encode --packet-frames 1`` writes).
Both are written when the call ends, however it ends, with what was decoded; nothing if no frame arrived.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from imf.call.protocol import (ACCEPTED, ACK, BYE, HELLO_BYTES, REFUSED, CallFailed, CallRefused, FrameClock,
                               PeerClosed, PeerTimeout, RecordTape, SocketReader, check_hello_start, encode_reply,
                               now_us)
from imf.call.stats import FrameRecord, ReceiveStats
from imf.codec.bitstream import END, KEYFRAME, PREAMBLE_BYTES, RECORD_NAMES, BitstreamReader, BitstreamWriter
from imf.codec.keyframe import decode_keyframe
from imf.codec.tables import CodecTables
from imf.codec.token_codec import TokenCodec
from imf.errors import BitstreamError, CheckpointError, InputError
from imf.progress import progress_bar

_log = logging.getLogger(__name__)

DEFAULT_HANDSHAKE_TIMEOUT = 5.0
DEFAULT_TIMEOUT = 10.0
_STREAM = "the call stream"


class _Refused(Exception):
    pass


def _hang_up(conn: socket.socket, seconds: float = 0.5, limit: int = 1 << 16) -> None:
    """Close after reading what the peer still sends (briefly, boundedly): closing with unread bytes would
    reset the connection, and the peer could lose the refusal's reason sent just before."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(seconds)
        deadline, seen = time.monotonic() + seconds, 0
        while seen < limit and time.monotonic() < deadline:
            data = conn.recv(4096)
            if not data:
                break
            seen += len(data)
    except OSError:
        pass
    conn.close()


class CallReceiver:
    """Listen on ``listen`` = (host, port) (port 0: any free port, see ``address``) for one call.

    tables: the model's codec tables. output: a video file (mp4, mov, mkv) of what was shown. record: an
    .imf file of the stream. handshake_timeout: seconds a new connection has to send its hello. timeout:
    seconds of silence from the sender that end the call. display_delay: seconds added per frame shown
    (a slow display, for tests and demos). on_frame(index, frame uint8 (S, S, 3)): each frame shown.
    log: where one-line notices go (refused connections), default this module's logger. precision: of the
    frame synthesis, as ``imf.codec.decode_file``'s (the symbols do not depend on it; "fp32": the encoder's own
    frames).
    """

    def __init__(self, model, *, tables: CodecTables | None, listen: tuple[str, int] = ("", 0),
                 output: str | os.PathLike | None = None, record: str | os.PathLike | None = None, crf: int = 18,
                 handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT, timeout: float = DEFAULT_TIMEOUT,
                 display_delay: float = 0.0, on_frame: Callable[[int, np.ndarray], None] | None = None,
                 log: Callable[[str], None] | None = None, progress: bool = False, precision: str = "fp32") -> None:
        from imf.checkpoint import model_hash
        from imf.codec.decoder import codec_pipeline

        if tables is None:
            raise CheckpointError("a call needs the model's codec tables: tables=imf.codec.load_tables(CKPT_DIR)")
        self.model, self.tables = model.eval(), tables
        self.identity = model_hash(model)
        self.output = Path(output) if output is not None else None
        self.record = Path(record) if record is not None else None
        self.crf, self.handshake_timeout, self.timeout = crf, handshake_timeout, timeout
        self.display_delay, self.on_frame, self.progress = display_delay, on_frame, progress
        self.log = log or _log.warning
        self.pipe = codec_pipeline(model, precision)
        size = model.config.resolution
        blank = np.zeros((size, size, 3), np.uint8)  # warm-up: the first frame should not carry torch's first call
        self.pipe.decode_tokens(self.pipe.encode_tokens([blank]), self.pipe.prepare_reference(blank))
        host, port = listen
        try:
            self._server = socket.create_server((host, port))
        except OSError as e:
            raise InputError(f"cannot listen on {host or '*'}:{port} ({e.strerror or e})") from None
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._stopped = False

    def stop(self) -> None:
        """Stop waiting for a call (run() then raises CallFailed); a call in progress is not affected."""
        self._stopped = True

    def close(self) -> None:
        self._server.close()

    # ---- waiting for the call
    def run(self, wait: float | None = None) -> ReceiveStats:
        """Wait (up to ``wait`` seconds; None: until a call comes) for a call, take it to its end and return
        what it measured. ``error`` is set (``complete`` False) when the call broke off; CallFailed when no
        call came."""
        stats = ReceiveStats()
        deadline = None if wait is None else time.monotonic() + wait
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._stopped or (remaining is not None and remaining <= 0):
                    refused = f" ({len(stats.rejected)} connection(s) refused)" if stats.rejected else ""
                    raise CallFailed(("stopped before a call came" if self._stopped else
                                      f"no call came within {wait:g} s") + refused)
                self._server.settimeout(0.2 if remaining is None else max(0.01, min(0.2, remaining)))
                try:
                    conn, addr = self._server.accept()
                except socket.timeout:
                    continue
                peer = f"{addr[0]}:{addr[1]}"
                try:
                    header, start_us, reader, preamble = self._handshake(conn)
                except _Refused as e:
                    stats.rejected.append(f"{peer}: {e}")
                    self.log(f"refused a connection from {peer}: {e}")
                    _hang_up(conn)
                    continue
                break
        finally:
            self._server.close()
        stats.peer = peer
        self._call(conn, reader, header, start_us, preamble, stats)
        return stats

    def _handshake(self, conn: socket.socket):
        from imf.codec.decoder import check_model, check_tables

        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = SocketReader(conn)
        try:
            try:
                start_us = check_hello_start(reader.read(HELLO_BYTES - PREAMBLE_BYTES, self.handshake_timeout))
                preamble = reader.read(PREAMBLE_BYTES, self.handshake_timeout)
            except PeerClosed:
                raise _Refused("closed during the handshake") from None
            except PeerTimeout:
                raise _Refused(f"no hello within {self.handshake_timeout:g} s") from None
            try:
                header = BitstreamReader(io.BytesIO(preamble), name=_STREAM).header
                if header.model_hash != self.identity:
                    raise CallRefused(f"the call is for model {header.model_hash[:16]}, this receiver has model "
                                      f"{self.identity[:16]} (give it that model's --ckpt)")
                check_model(header, self.model, _STREAM, self.identity)
                check_tables(header, self.tables, _STREAM)
                tape = RecordTape()
                BitstreamWriter(tape, header)
                if b"".join(tape.take()) != preamble:  # the record chain is seeded from these bytes
                    raise CallRefused(f"{_STREAM} has a header this imf does not write (non-canonical fields)")
            except BitstreamError as e:
                raise CallRefused(str(e)) from None
        except CallRefused as e:
            try:
                conn.settimeout(1.0)
                conn.sendall(encode_reply(REFUSED, str(e)))
            except OSError:
                pass
            raise _Refused(str(e)) from None
        try:
            conn.settimeout(self.timeout)
            conn.sendall(encode_reply(ACCEPTED))
        except OSError as e:
            raise _Refused(f"went away during the handshake ({e.strerror or e})") from None
        return header, start_us, reader, preamble

    # ---- the call
    def _call(self, conn: socket.socket, reader: SocketReader, header, start_us: int, preamble: bytes,
              stats: ReceiveStats) -> None:
        from imf.codec.decoder import reconstruct_frame
        from imf.data.video import VideoWriter

        stats.header, stats.fps = header.to_dict(), float(header.fps)
        stats.handshake_bytes = HELLO_BYTES
        stats.bytes_sent = len(encode_reply(ACCEPTED))
        check = BitstreamWriter(tape := RecordTape(), header)  # the CRC chain, as a file writer would go on
        tape.take()
        rec_tmp = self.record.with_name(f".{self.record.name}.partial") if self.record else None
        rec_file = open(rec_tmp, "wb") if rec_tmp else None
        recording = BitstreamWriter(rec_file, header) if rec_file else None
        video = VideoWriter(self.output, header.fps, header.width, header.height, crf=self.crf) if self.output else None
        codec = TokenCodec(self.tables, header.quality, header.entropy)
        clock = FrameClock(start_us)
        max_record = header.width * header.height * 4 + 65536  # a lossy keyframe is never larger than raw pixels
        reference = last_shown = None
        shown_index = -1
        t0 = time.monotonic()
        stats.arrivals.append((0.0, HELLO_BYTES))
        bar = progress_bar(total=None, unit="frame", desc="call", enabled=self.progress)

        def show(index: int, frame: np.ndarray) -> None:
            nonlocal shown_index, last_shown
            if video is not None:
                for _ in range(index - shown_index - 1 if shown_index >= 0 else 0):  # the sender dropped these
                    video.write(last_shown)
                    stats.frames_repeated += 1
                video.write(frame)
                stats.frames_written = video.frames_written
            if self.on_frame is not None:
                self.on_frame(index, frame)
            if self.display_delay:
                time.sleep(self.display_delay)
            shown_index, last_shown = index, frame

        def send(byte: int) -> None:
            try:
                conn.sendall(bytes([byte]))
                stats.bytes_sent += 1
            except OSError:  # the sender is gone: the next read says so
                pass

        try:
            while True:
                n = stats.frames_decoded
                try:
                    d_index, raw_index = reader.read_uvarint(self.timeout)
                    d_time, raw_time = reader.read_uvarint(self.timeout)
                    kind = reader.read(1, self.timeout)
                    if kind[0] not in RECORD_NAMES:
                        raise CallFailed(f"{_STREAM}: unknown record type {kind[0]} after {n} frames (corrupted?)")
                    length, raw_len = reader.read_uvarint(self.timeout, max_bytes=4)
                    if length > max_record:
                        raise CallFailed(f"{_STREAM}: a {RECORD_NAMES[kind[0]]} record of {length} bytes after {n} "
                                         f"frames (corrupted?)")
                    payload = reader.read(length, self.timeout)
                    crc = reader.read(4, self.timeout)
                except PeerClosed as e:
                    reason = "reset the connection" if "reset" in str(e) else "disconnected"
                    raise CallFailed(f"the sender {reason} after {n} frames, before the end of the call") from None
                except PeerTimeout:
                    raise CallFailed(f"nothing from the sender for {self.timeout:g} s after {n} frames") from None
                if stats.messages_received and d_index == 0 and kind[0] != END:
                    raise CallFailed(f"{_STREAM}: a frame index that does not advance after {n} frames")
                index, capture_us = clock.decode(d_index, d_time)
                raw = kind + raw_len + payload + crc
                check.write_record(kind[0], payload)
                if b"".join(tape.take()) != raw:
                    raise CallFailed(f"{_STREAM}: a corrupted or foreign {RECORD_NAMES[kind[0]]} record after {n} "
                                     f"frames (CRC chain broken)")
                size = len(raw_index) + len(raw_time) + len(raw)
                stats.messages_received += 1
                stats.arrivals.append((time.monotonic() - t0, size))
                if kind[0] == END:
                    stats.framing_bytes += size
                    count = struct.unpack("<I", payload)[0] if length == 4 else None
                    if count != n:
                        raise CallFailed(f"{_STREAM}: the end record says {count} frames, {n} arrived")
                    stats.frames_captured = index
                    if video is not None and last_shown is not None:
                        for _ in range(index - shown_index - 1):  # frames dropped at the very end
                            video.write(last_shown)
                            stats.frames_repeated += 1
                        stats.frames_written = video.frames_written
                    send(BYE)
                    stats.complete = True
                    break
                start = time.perf_counter()
                try:
                    if kind[0] == KEYFRAME:
                        frame = decode_keyframe(payload, codec=header.keyframe_codec, width=header.width,
                                                height=header.height)
                        reference = self.pipe.prepare_reference(frame)
                        codec.reset()
                    else:
                        if reference is None:
                            raise CallFailed(f"{_STREAM}: a token record before any keyframe")
                        symbols = codec.decode_symbols(payload)
                        if len(symbols) != 1:
                            raise CallFailed(f"{_STREAM}: a token record of {len(symbols)} frames (a call sends one)")
                        frame = reconstruct_frame(self.pipe, codec, symbols[0], reference)
                except BitstreamError as e:
                    raise CallFailed(f"{e} (after {n} frames)") from None
                decode_ms = 1e3 * (time.perf_counter() - start)
                if recording is not None:
                    recording.write_record(kind[0], payload)
                show(index, frame)
                latency_ms = (now_us() - capture_us) / 1e3
                send(ACK)
                stats.frames.append(FrameRecord(index, "keyframe" if kind[0] == KEYFRAME else "tokens", size,
                                                decode_ms, latency_ms))
                stats.frames_decoded += 1
                stats.keyframes += kind[0] == KEYFRAME
                stats.framing_bytes += size - length
                if kind[0] == KEYFRAME:
                    stats.keyframe_bytes += length
                else:
                    stats.token_bytes += length
                bar.update(1)
        except CallFailed as e:
            stats.error = str(e)
        finally:
            bar.close()
            stats.seconds = time.monotonic() - t0
            stats.bytes_received = reader.bytes_received
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
            self._finish_outputs(video, recording, rec_file, rec_tmp, stats)

    def _finish_outputs(self, video, recording, rec_file, rec_tmp, stats: ReceiveStats) -> None:
        if video is not None:
            if video.frames_written:
                video.close()
            else:
                video.abort()
        if rec_file is not None:
            try:
                if stats.frames_decoded:
                    recording.finish(stats.frames_decoded)
                rec_file.close()
                if stats.frames_decoded:
                    os.replace(rec_tmp, self.record)
            finally:
                rec_tmp.unlink(missing_ok=True)
