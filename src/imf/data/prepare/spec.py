"""What a metadata parser gives ``imf data prepare``: one ``ClipSpec`` per clip of the data set."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from imf.data.video import VIDEO_EXTS
from imf.errors import InputError

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class ClipSpec:
    """One clip to cut out of a raw video.

    clip: the data set's clip id. video: the raw video's id, looked up as a file stem under --videos
    (a YouTube id for the three data sets). split: "train", "val" or "test". person: an identity where the
    metadata names one, else None.
    start, stop: the clip's span [start, stop) in ``unit``: "frame" (frame numbers of the raw video, as
    decoded from its start) or "second" (seconds from the start of the video). fps: the frame rate of the
    output for "second" spans (the raw frame nearest each output instant); None: every raw frame of the span.
    box: (x0, y0, x1, y1) of the face region; box_space: the (width, height) it is measured in, (1, 1) for
    fractions of the frame, None for pixels of the raw video as decoded. square: the crop is the square
    of side ``max`` (or ``min``) of the box's sides around its centre, moved (and shrunk) into the frame.
    extra: JSON-able metadata carried into the manifest (attributes, annotation details).
    """

    clip: str
    video: str
    split: str
    person: str | None
    start: float
    stop: float
    unit: str
    fps: float | None
    box: tuple[float, float, float, float]
    box_space: tuple[float, float] | None
    square: str = "max"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.unit not in ("frame", "second"):
            raise ValueError(f"clip {self.clip}: unit must be 'frame' or 'second', got {self.unit!r}")
        if self.split not in SPLIT_NAMES:
            raise ValueError(f"clip {self.clip}: split must be one of {SPLIT_NAMES}, got {self.split!r}")
        if not self.stop > self.start >= 0:
            raise ValueError(f"clip {self.clip}: empty or negative span [{self.start}, {self.stop})")
        x0, y0, x1, y1 = self.box
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"clip {self.clip}: empty face box {self.box}")
        if self.square not in ("max", "min"):
            raise ValueError(f"clip {self.clip}: square must be 'max' or 'min', got {self.square!r}")


@dataclass
class ParsedMeta:
    """A parser's result: the clips, lists to write under DIR/splits/ (file name -> lines), and one line
    per metadata entry that could not be read (reported; the other entries go on)."""

    clips: list[ClipSpec]
    lists: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def split_from_path(relative: Path, id_folders: int = 0) -> str | None:
    """"test" or "train" when a folder of the metadata's path says so: a folder name with the word "test"
    (``vox1_test_txt``, ``VFHQ-Test``, ``test``) or "dev" / "train" (``vox2_dev_txt``, ``train``); None when
    none does. The last ``id_folders`` folders are ids (an identity, a YouTube id), never read as a hint."""
    folders = relative.parts[:-1]
    for part in folders[: len(folders) - id_folders]:
        words = set(re.split(r"[^a-z0-9]+", part.lower()))
        if "test" in words:
            return "test"
        if words & {"dev", "train"}:
            return "train"
    return None


def parse_text_files(meta: str | os.PathLike, what: str,
                     parse_one: Callable[[Path, Path], ClipSpec]) -> ParsedMeta:
    """Every ``*.txt`` file under ``meta`` (a folder, searched recursively, or one file), in sorted order,
    through ``parse_one(path, path relative to meta)``; a file it cannot read (ValueError, OSError) is
    a problem line, not an error. ``what`` names the metadata in the errors."""
    root = Path(meta)
    if not root.exists():
        raise InputError(f"{root}: no such file or folder ({what})")
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*.txt") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"{root}: no .txt file ({what})")
    clips, problems = [], []
    for path in files:
        rel = path.relative_to(root) if root.is_dir() else Path(path.name)
        try:
            clips.append(parse_one(path, rel))
        except (ValueError, OSError) as e:
            problems.append(f"{rel}: {e}")
    return ParsedMeta(clips, {}, problems)


def index_videos(folder: str | os.PathLike) -> dict[str, Path]:
    """Raw videos under ``folder`` (searched recursively) by file stem; the first in sorted order wins."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() in VIDEO_EXTS and path.is_file() and not path.name.startswith("."):
            found.setdefault(path.stem, path)
    return found
