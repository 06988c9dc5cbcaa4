"""Showing a call as it is decoded: in a window (Tk, where a display exists) or as a page served to a browser.

Both are ``on_frame(index, frame)`` callables for ``CallReceiver``; they run in the receiver's thread and never
block it for long (a slow viewer costs frames on the browser side, not delay in the call).

- ``BrowserViewer``: the standard library's HTTP server on a thread; ``/`` is a page with the live picture,
  ``/stream`` a Motion-JPEG stream (``multipart/x-mixed-replace``, which every browser shows as video),
  ``/frame.jpg`` the latest frame. No display is needed: open the printed address, also from another machine
  when bound to a public address. Hand-written on ``http.server`` because the stream is ~40 lines and the
  web framework of ``imf serve`` (Gradio) has no push of frames from outside its event loop.
- ``WindowViewer``: a Tk window (tkinter, standard library) updated in place; refused with one line where there
  is no display.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from imf.errors import InputError

BOUNDARY = "imfframe"
SHOW_SIDE = 256
"""Frames are shown at least this many pixels wide (the small models' 64² frames would be a thumbnail)."""


def _scaled(frame: np.ndarray) -> Image.Image:
    img = Image.fromarray(frame)
    if img.width < SHOW_SIDE:
        factor = -(-SHOW_SIDE // img.width)  # ceil: whole pixels, nearest neighbour (no invented detail)
        img = img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    return img


def _jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    _scaled(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>imf call</title></head>
<body style="background:#111;color:#ddd;font-family:sans-serif;text-align:center">
<p>imf call: live</p><img src="/stream" alt="the call" style="image-rendering:pixelated;max-width:95vw">
</body></html>"""


class BrowserViewer:
    """Serve the decoded frames on http://HOST:PORT/ (port 0: any free port, see ``url``) until ``close``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._frame: np.ndarray | None = None  # the latest frame; JPEG-encoded only when a browser asks
        self._jpeg: tuple[int, bytes] | None = None  # (index, bytes) of the last encoding
        self._index = -1
        self._changed = threading.Condition()
        self._closed = False
        viewer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # no line per request on the receiver's stderr
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/":
                    body = _PAGE.encode()
                    self._head(200, "text/html; charset=utf-8", len(body))
                    self.wfile.write(body)
                elif self.path == "/frame.jpg":
                    with viewer._changed:
                        jpeg = viewer._latest_jpeg()
                    if jpeg is None:
                        self._head(503, "text/plain", 0)
                        return
                    self._head(200, "image/jpeg", len(jpeg))
                    self.wfile.write(jpeg)
                elif self.path == "/stream":
                    self._stream()
                else:
                    self._head(404, "text/plain", 0)

            def _head(self, code: int, kind: str, length: int | None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Cache-Control", "no-store")
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def _stream(self) -> None:
                self._head(200, f"multipart/x-mixed-replace; boundary={BOUNDARY}", None)
                seen = -1
                try:
                    while True:
                        with viewer._changed:
                            viewer._changed.wait_for(lambda: viewer._closed or viewer._index != seen, timeout=1.0)
                            if viewer._closed:
                                return
                            jpeg, seen = viewer._latest_jpeg(), viewer._index
                        if jpeg is None:
                            continue
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                         f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                        self.wfile.flush()
                except OSError:  # the browser went away
                    return

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise InputError(f"cannot serve the preview on {host}:{port} ({e.strerror or e})") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="imf-call-viewer")
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def _latest_jpeg(self) -> bytes | None:
        """The latest frame as JPEG, encoded once per frame however many browsers watch (lock held)."""
        if self._frame is None:
            return None
        if self._jpeg is None or self._jpeg[0] != self._index:
            self._jpeg = (self._index, _jpeg(self._frame))
        return self._jpeg[1]

    def __call__(self, index: int, frame: np.ndarray) -> None:
        # the receiver's thread only hands the frame over: with no browser watching, nothing is encoded
        with self._changed:
            self._frame, self._index = frame, index
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()


class WindowViewer:
    """A Tk window showing each frame as it comes (call it from the thread that made it)."""

    def __init__(self, title: str = "imf call") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise InputError("--show needs a display (DISPLAY is not set); use --preview [HOST:]PORT to watch the "
                             "call in a browser instead")
        try:
            import tkinter

            from PIL import ImageTk
        except ImportError as e:
            raise InputError(f"--show needs tkinter ({e}); use --preview [HOST:]PORT instead") from None
        try:
            self._root = tkinter.Tk()
        except tkinter.TclError as e:
            raise InputError(f"--show cannot open a window ({e}); use --preview [HOST:]PORT instead") from None
        self._root.title(title)
        self._label = tkinter.Label(self._root)
        self._label.pack()
        self._photo_type = ImageTk.PhotoImage
        self._photo = None
        self._open = True
        self._root.protocol("WM_DELETE_WINDOW", self._closed_by_user)

    def _closed_by_user(self) -> None:
        self._open = False  # the call goes on (and is still written); only the window is gone
        self._root.destroy()

    def __call__(self, index: int, frame: np.ndarray) -> None:
        if not self._open:
            return
        self._photo = self._photo_type(_scaled(frame))  # kept: Tk shows a PhotoImage only while it is referenced
        self._label.configure(image=self._photo)
        self._root.update()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._root.destroy()
