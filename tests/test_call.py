"""`imf call`: live calls on 127.0.0.1 with the shipped model; every socket and thread has a time limit.

A loopback call gives the frames (and, recorded, the bytes) of `imf encode` + `imf decode`; a sender that
disconnects, a receiver that goes away, garbage and a stream for another model end cleanly with one line;
a slow receiver makes the sender drop token frames, count them, and never keyframes."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import numpy as np
import pytest
import torch

import imf
from imf.assets import shipped_model_path
from imf.call import CallFailed, CallReceiver, send_call
from imf.call.protocol import (ACCEPTED, ACK, CALL_MAGIC, HELLO_BYTES, REFUSED, REPLY_BYTES, FrameClock,
                               decode_reply_head, encode_hello, encode_reply, now_us)
from imf.cli import main
from imf.codec import decode_file, encode_video, fit_codec, load_tables, read_header
from imf.codec.bitstream import record_spans
from imf.data.video import VideoWriter, iter_frames, probe

N = 20  # frames of the clip, a scene cut at frame CUT
CUT = 10
FPS = 25
LIMIT = 90.0  # seconds any one call may take here (a loaded 2-core machine); a hang fails instead of blocking


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 64x64 clip: a blob moving over one background, then a cut to another."""
    path = tmp_path_factory.mktemp("call") / "clip.mp4"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    with VideoWriter(path, FPS, 64, 64) as w:
        for t in range(N):
            background = (40, 60, 120) if t < CUT else (170, 60, 30)
            blob = np.exp(-((xx - 32 - 8 * np.sin(t / 3)) ** 2 + (yy - 30) ** 2) / 120.0)[..., None]
            img = np.array(background) * (1 - blob) + np.array([230, 190, 160]) * blob + rng.normal(0, 3, (64, 64, 3))
            w.write(np.clip(img, 0, 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def shipped():
    path = shipped_model_path()
    return imf.load_model(path).eval(), load_tables(path)


@pytest.fixture(scope="module")
def stream(clip, shipped, tmp_path_factory):
    """What a call sends, as a file: `imf encode --packet-frames 1` of the clip."""
    model, tables = shipped
    path = tmp_path_factory.mktemp("call_stream") / "clip.imf"
    encode_video(model, clip, path, tables=tables, packet_frames=1, progress=False)
    return path


def _receive_in_thread(model, tables, **kw):
    """A CallReceiver on 127.0.0.1 (a free port) running in a thread: (receiver, result dict, thread)."""
    receiver = CallReceiver(model, tables=tables, listen=("127.0.0.1", 0), **kw)
    result: dict = {}

    def run():
        try:
            result["stats"] = receiver.run(wait=LIMIT)
        except BaseException as e:  # handed to the test
            result["error"] = e
        finally:
            receiver.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return receiver, result, thread


def _join(thread, result):
    thread.join(LIMIT)
    assert not thread.is_alive(), "the receiver did not finish in time"
    if "error" in result:
        raise result["error"]
    return result["stats"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line(err: str, match: str) -> None:
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert match in last, err


def test_loopback_call_gives_the_frames_of_encode_and_decode(clip, shipped, stream, tmp_path, capsys):
    model, tables = shipped
    shown = {}
    out, rec = tmp_path / "call.mp4", tmp_path / "call.imf"
    receiver, result, thread = _receive_in_thread(model, tables, output=out, record=rec,
                                                  on_frame=lambda i, f: shown.__setitem__(i, f))
    port = receiver.address[1]
    sent_json = tmp_path / "send.json"
    rc = main(["call", "send", str(clip), "--to", f"127.0.0.1:{port}", "--fast", "--quiet", "--json", str(sent_json)])
    got = _join(thread, result)
    assert rc == 0, capsys.readouterr().err
    assert got.complete and got.error is None and got.frames_decoded == N and got.frames_dropped == 0

    # the same frames as `imf encode` + `imf decode` of one frame per packet (a call's packets), bit for bit,
    # and as those of the default 8 frames per packet, which the decoder synthesises 8 at a time: a float can
    # differ by ~1e-7 between batch sizes, so a pixel by at most one level
    ref = tmp_path / "ref.imf"
    encoded = encode_video(model, clip, ref, tables=tables, progress=False)
    assert sorted(shown) == list(range(N))
    for i, frame in enumerate(decode_file(stream, model, tables=tables)):
        assert np.array_equal(shown[i], frame), f"frame {i} differs"
    for i, frame in enumerate(decode_file(ref, model, tables=tables)):
        assert np.abs(shown[i].astype(int) - frame).max() <= 1, f"frame {i} differs"
    assert encoded.keyframe_indices == [0, CUT] and got.keyframes == 2  # the cut made a keyframe on the call too
    # the recorded call is the .imf file of one frame per packet, byte for byte
    assert rec.read_bytes() == stream.read_bytes()
    assert probe(out).num_frames == N

    # every byte counted, the same on both sides
    sent = json.loads(sent_json.read_text())
    assert sent["frames_sent"] == N and sent["frames_dropped"] == 0 and sent["complete"]
    assert sent["bytes_sent"] == got.bytes_received and sent["bytes_received"] == got.bytes_sent
    assert got.handshake_bytes + got.framing_bytes + got.keyframe_bytes + got.token_bytes == got.bytes_received
    assert sent["max_in_flight"] <= sent["window"]
    d = got.to_dict()
    assert d["kbps"] == pytest.approx(8 * got.bytes_received / (N / FPS) / 1000)
    assert sum(d["kbps_series"]) == pytest.approx(8 * got.bytes_received / 1000)
    assert d["latency_ms"]["count"] == N and d["latency_ms"]["median"] >= 0 and d["decode_ms"]["count"] == N - 2
    assert sent["encode_ms"]["count"] == N - 2 and sent["ack_latency_ms"]["count"] == N


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + LIMIT
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_receiver_keeps_what_it_decoded_when_the_sender_disconnects(stream, tmp_path, capsys):
    """A sender that vanishes after 5 frames, in the middle of the 6th message: exit 1, one line, the 5
    frames in the video and in a valid recording."""
    data = stream.read_bytes()
    spans = record_spans(data)
    port = _free_port()
    problems = []

    def sender():
        try:
            with _connect(port) as s:
                start = now_us()
                s.sendall(encode_hello(start, data[:100]))
                assert decode_reply_head(_read_exact(s, REPLY_BYTES))[2] == ACCEPTED
                clock = FrameClock(start)
                for i, (a, b) in enumerate(spans[:5]):
                    s.sendall(clock.encode(i, now_us()) + data[a:b])
                assert _read_exact(s, 5) == bytes([ACK]) * 5  # all shown (and nothing unread: a clean close)
                a, b = spans[5]
                s.sendall(clock.encode(5, now_us()) + data[a:(a + b) // 2])
        except BaseException as e:
            problems.append(e)

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    out, rec, js = tmp_path / "out.mp4", tmp_path / "rec.imf", tmp_path / "r.json"
    rc = main(["call", "receive", "--listen", f"127.0.0.1:{port}", "-o", str(out), "--record", str(rec),
               "--json", str(js), "--quiet", "--wait", str(LIMIT)])
    thread.join(LIMIT)
    assert not problems, problems
    err = capsys.readouterr().err
    assert rc == 1, err
    _one_line(err, "the sender disconnected after 5 frames")
    assert "kept the 5 frames decoded" in err
    assert probe(out).num_frames == 5
    stats = json.loads(js.read_text())
    assert stats["complete"] is False and stats["frames_decoded"] == 5 and stats["frames_captured"] is None
    assert read_header(rec).frame_count == 5
    model, tables = imf.load_model(shipped_model_path()), load_tables(shipped_model_path())
    assert len(list(decode_file(rec, model, tables=tables))) == 5


def test_sender_stops_with_a_message_when_the_receiver_goes_away(clip, tmp_path, capsys):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(LIMIT)
    port = server.getsockname()[1]

    def receiver():  # takes the call, shows three frames, hangs up
        conn, _ = server.accept()
        with conn:
            _read_exact(conn, HELLO_BYTES)
            conn.sendall(encode_reply(ACCEPTED))
            conn.recv(4096)
            conn.sendall(bytes([ACK]) * 3)
            time.sleep(0.2)
        server.close()

    thread = threading.Thread(target=receiver, daemon=True)
    thread.start()
    js = tmp_path / "s.json"
    rc = main(["call", "send", str(clip), "--to", f"127.0.0.1:{port}", "--fast", "--quiet", "--json", str(js)])
    thread.join(LIMIT)
    err = capsys.readouterr().err
    assert rc == 1, err
    _one_line(err, "imf call send: the receiver")
    stats = json.loads(js.read_text())
    assert stats["complete"] is False and stats["error"] and 1 <= stats["frames_sent"] < N


def _refusal(port: int, payload: bytes | None, hang_up: bool = False) -> str:
    """Send ``payload`` (None: nothing, just wait), hang up if asked, and return the refusal's reason ("" when
    the receiver just closed the connection)."""
    with _connect(port) as s:
        s.settimeout(LIMIT)
        if payload:
            s.sendall(payload)
        if hang_up:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(4096):  # the receiver closes after its answer
            reply += chunk
    if not reply:
        return ""
    magic, _, status, n = decode_reply_head(reply[:REPLY_BYTES])
    assert magic == CALL_MAGIC and status == REFUSED
    return reply[REPLY_BYTES:REPLY_BYTES + n].decode()


def test_garbage_is_refused_at_the_handshake_and_the_receiver_still_takes_the_call(clip, shipped, stream):
    model, tables = shipped
    notices = []
    receiver, result, thread = _receive_in_thread(model, tables, handshake_timeout=1.0, log=notices.append)
    port = receiver.address[1]
    preamble = bytearray(stream.read_bytes()[:100])
    preamble[20] ^= 1  # inside the model hash: the header CRC no longer matches
    assert "bad magic" in _refusal(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(100))
    assert "protocol version 99" in _refusal(port, CALL_MAGIC + struct.pack("<HQ", 99, 0) + bytes(100))
    assert "corrupted header" in _refusal(port, encode_hello(now_us(), bytes(preamble)))
    assert _refusal(port, None) == "" and _refusal(port, b"\x89IMF", hang_up=True) == ""  # silent; cut short
    stats = send_call(model, clip, ("127.0.0.1", port), tables=tables, realtime=False, max_frames=6)
    got = _join(thread, result)
    assert stats.complete and got.complete and got.frames_decoded == 6
    assert len(got.rejected) == len(notices) == 5
    assert "no hello within 1 s" in notices[3] and "closed during the handshake" in notices[4]


def test_a_stream_for_another_model_is_refused(clip, shipped, capsys):
    model, tables = shipped
    torch.manual_seed(1)
    other = imf.IMF(imf.IMFConfig.preset("tiny-64")).eval()
    frames = np.stack(list(iter_frames(clip, size=64)))
    other_tables = fit_codec(other, [frames], qualities=(6,), progress=False)
    notices = []
    receiver, result, thread = _receive_in_thread(other, other_tables, log=notices.append)
    rc = main(["call", "send", str(clip), "--to", f"127.0.0.1:{receiver.address[1]}", "--fast", "--quiet"])
    err = capsys.readouterr().err
    receiver.stop()
    with pytest.raises(CallFailed, match="1 connection"):
        _join(thread, result)
    assert rc == 2, err
    ours, theirs = imf.model_hash(model)[:16], imf.model_hash(other)[:16]
    _one_line(err, "refused the call: the call is for model " + ours)
    assert theirs in err and len(err.strip().splitlines()) == 1
    assert len(notices) == 1 and ours in notices[0]


def test_a_slow_receiver_makes_the_sender_drop_token_frames_and_count_them(clip, shipped, tmp_path):
    model, tables = shipped
    out = tmp_path / "slow.mp4"
    receiver, result, thread = _receive_in_thread(model, tables, output=out, display_delay=0.12)
    sent = send_call(model, clip, ("127.0.0.1", receiver.address[1]), tables=tables, realtime=True, window=2)
    got = _join(thread, result)
    assert sent.complete and got.complete, (sent.error, got.error)
    assert sent.dropped_window > 0 and sent.frames_sent + sent.frames_dropped == sent.frames_captured == N
    assert sent.max_in_flight <= 2  # the sender never had more than the window out
    assert sent.keyframes == got.keyframes == 2  # keyframes are never dropped (a cut on a dropped frame moves on)
    assert got.frames_decoded == sent.frames_sent and got.frames_dropped == sent.frames_dropped
    assert got.frames_captured == N and got.frames_written == N == probe(out).num_frames  # gaps repeat a frame
    assert got.frames_repeated == sent.frames_dropped


@pytest.mark.parametrize("argv, message", [
    (["call", "send", "v.mp4", "--to", "localhost"], "HOST:PORT"),
    (["call", "send", "v.mp4", "--to", "localhost:0"], "1..65535"),
    (["call", "receive", "--listen", "99999"], "PORT or HOST:PORT"),
    (["call", "send", "v.mp4", "--to", "h:1", "--window", "0"], "1..10000"),
])
def test_bad_addresses_and_numbers_are_refused_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_a_missing_source_is_a_one_line_error_before_any_connection(tmp_path, capsys):
    rc = main(["call", "send", str(tmp_path / "nope.mp4"), "--to", f"127.0.0.1:{_free_port()}", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "no such file" in err and len(err.strip().splitlines()) == 1


def _get(url: str, timeout: float = 10.0) -> tuple[int, str, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, "", b""


def test_a_call_watched_in_a_browser_shows_its_frames(clip, shipped, tmp_path, capsys):
    """--preview's BrowserViewer as the receiver's on_frame: the page, the Motion-JPEG stream while the call
    runs, and after it the latest frame, which is the call's last decoded frame (upscaled to 256 px)."""
    import io
    import urllib.request

    from PIL import Image

    from imf.call.viewer import BOUNDARY, BrowserViewer

    model, tables = shipped
    viewer = BrowserViewer("127.0.0.1", 0)
    try:
        assert _get(viewer.url + "frame.jpg")[0] == 503  # nothing decoded yet
        status, kind, page = _get(viewer.url)
        assert status == 200 and kind.startswith("text/html") and b'src="/stream"' in page
        stream = urllib.request.urlopen(viewer.url + "stream", timeout=LIMIT)
        assert stream.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        shown = {}

        def on_frame(i, frame):
            shown[i] = frame
            viewer(i, frame)

        receiver, result, thread = _receive_in_thread(model, tables, on_frame=on_frame)
        rc = main(["call", "send", str(clip), "--to", f"127.0.0.1:{receiver.address[1]}", "--fast", "--quiet"])
        got = _join(thread, result)
        assert rc == 0 and got.complete and got.frames_decoded == N
        first_part = stream.read(4096)  # at least one JPEG went out on the stream during the call
        assert first_part.startswith(f"--{BOUNDARY}\r\nContent-Type: image/jpeg".encode()) and b"\xff\xd8" in first_part
        stream.close()

        status, kind, jpeg = _get(viewer.url + "frame.jpg")
        assert status == 200 and kind == "image/jpeg"
        img = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        assert img.shape == (256, 256, 3)
        last = shown[N - 1].repeat(4, 0).repeat(4, 1).astype(float)
        assert np.abs(img - last).mean() < 4.0  # JPEG at quality 90 of the last frame
        assert _get(viewer.url + "nothing")[0] == 404
    finally:
        viewer.close()


def test_receive_show_without_a_display_and_preview_options(tmp_path, capsys, monkeypatch):
    """--show where there is no display: one line pointing to --preview, exit 2, before any model loads.
    --preview serves while waiting and closes with the receiver (here: no call comes within --wait)."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["call", "receive", "--listen", "127.0.0.1:0", "--show", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs a display" in err and "--preview" in err and len(err.splitlines()) == 1
    assert main(["call", "receive", "--listen", "127.0.0.1:0", "--preview", "0", "--wait", "0.5", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "watch the call at http://127.0.0.1:" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as bad:
        main(["call", "receive", "--listen", "127.0.0.1:0", "--preview", "x:y"])
    assert bad.value.code == 2 and "argument --preview: expected a port number" in capsys.readouterr().err


def test_receive_show_opens_a_window_on_a_display(monkeypatch):
    """--show's WindowViewer on a virtual display (Xvfb, from Debian's xvfb; .ci/run installs it): each frame is
    shown at 256 px in a Tk window, and closing it is clean."""
    import shutil
    import subprocess

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (Debian package xvfb): no display to open a window on")
    from imf.call.viewer import WindowViewer

    display = f":{90 + (int(time.time()) % 9)}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "640x480x24"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        monkeypatch.setenv("DISPLAY", display)
        for _ in range(50):  # Xvfb takes a moment to accept connections
            try:
                viewer = WindowViewer()
                break
            except Exception:
                time.sleep(0.1)
        else:
            pytest.fail("could not open a window on Xvfb")
        for i in range(3):
            viewer(i, np.full((64, 64, 3), 60 * i, np.uint8))
        assert viewer._label.winfo_width() >= 256 and viewer._label.winfo_height() >= 256
        viewer.close()
        viewer(3, np.zeros((64, 64, 3), np.uint8))  # a frame after the window closed is ignored
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
