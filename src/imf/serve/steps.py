"""Progress of a long job, as the tabs report it: ``progress(fraction, desc="...")``, the call signature of
``gradio.Progress`` (the app passes one; tests and scripts pass nothing). The library's own frame loops
advance a tqdm bar, which Gradio tracks too (``gr.Progress(track_tqdm=True)``)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, progress: float | None, desc: str | None = None) -> object: ...


def no_progress(progress: float | None, desc: str | None = None) -> None:
    """The progress of a job nobody watches."""


class FrameCounter:
    """A tqdm-like ``update(n)`` for library functions that advance a bar they are given: reports the
    fraction of ``total`` frames done as ``desc``."""

    def __init__(self, progress: Progress, total: int, desc: str) -> None:
        self.progress, self.total, self.desc, self.n = progress, max(int(total), 1), desc, 0

    def update(self, n: int = 1) -> None:
        self.n += n
        self.progress(min(self.n / self.total, 1.0), desc=f"{self.desc} ({self.n}/{self.total} frames)")
