"""How much the web app takes from one upload (kept apart from the checks so the command line can read the
defaults without importing the video stack)."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """max_upload_mb: largest file taken; max_seconds / max_frames: longest video taken (both apply);
    max_pixels: largest image or video frame (width × height)."""

    max_upload_mb: float = 50.0
    max_seconds: float = 30.0
    max_frames: int = 900
    max_pixels: int = 4096 * 4096

    def describe(self) -> str:
        return (f"uploads up to {self.max_upload_mb:g} MB; videos up to {self.max_seconds:g} s and "
                f"{self.max_frames} frames")
