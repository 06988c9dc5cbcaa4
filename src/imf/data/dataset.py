"""Training pairs for IMF: a reference and a current frame of the same clip.

Sources may be video files, frame folders (png/jpg), folders holding videos or frame folders (searched
recursively), or ``.txt`` list files naming one source per line (relative to the list's folder; blank
lines and ``#`` comments ignored). Each clip is decoded once into a frame cache at the model resolution
(``imf.data.frame_cache``); items are read from its memmap.

Indexing: one item per usable *current* frame of every clip in the split (so an epoch visits each frame
once as the current frame); its reference is drawn uniformly among the frames of the same clip and split
range at a distance d with ``min_distance <= d <= max_distance``, either side.

Splits (``split`` = "train", "val" or "all"):
- ``split_by="clip"``: whole clips go to validation, chosen by a hash of their path relative to the
  source they were found under (stable across machines and when clips are added):
  ``max(1, round(val_fraction * clips))`` clips when there are at least two.
- ``split_by="frames"``: every clip is cut in time; train = the first ``floor((1 - val_fraction) * N)``
  frames, val = the rest. Pairs never cross the cut.

A clip that is unreadable, corrupt or too short for one pair is logged (``logging.warning``) and skipped
when the dataset is built; if no clip is left, InputError. Random choices use torch's global generator,
which DataLoader seeds per worker; memmaps are opened lazily in each worker (the dataset pickles light).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from imf.data.augment import augment_pair
from imf.data.frame_cache import frame_cache
from imf.data.video import VIDEO_EXTS, is_image_file
from imf.errors import ConfigError, InputError
from imf.strict import check_types, from_mapping, require
from imf.progress import progress_bar

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "all")
SPLIT_BY = ("clip", "frames")


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class DataConfig:
    """How training pairs are made. Stored in the training YAML under ``data:``.

    size: frames are centre-cropped and resized to size × size.
    min_distance, max_distance: frame distance between reference and current (None = anywhere in the clip).
    split_by: "clip" or "frames" (see the module docstring); val_fraction: share held out for validation.
    hflip_prob: chance of flipping both frames of a pair horizontally.
    brightness, contrast, saturation: colour jitter strengths s (factor drawn from [1 - s, 1 + s]),
    the same for both frames of a pair; 0 turns it off.
    stills: folders (or image files) of still face photos (e.g. ``imf data corpus``'s ``DIR/stills``)
    mixed into the training set as pseudo-video pairs (``imf.data.stills``), or None.
    stills_ratio: share of the training items that are still pairs, in (0, 1) when ``stills`` is set,
    0 otherwise. stills_warp: multiplier of the stills' geometric warp strengths (1 = rotation ±12°,
    scale ±12 %, shift ±8 %, mild perspective and thin-plate-like warp; 0 = colour jitter only).
    shard_pairs_per_clip, shard_window: only for shard folders (``imf data prepare``; the streaming loader of
    ``imf.data.shard_pairs``): pairs drawn from each clip per pass over the shards, and how many clips' pairs
    are shuffled together (a window of clips read in turn). Splits of shard folders are whole clips, named
    by the data set's metadata, so ``split_by`` and ``val_fraction`` do not apply to them.
    """

    size: int = 64
    min_distance: int = 1
    max_distance: int | None = None
    split_by: str = "clip"
    val_fraction: float = 0.2
    hflip_prob: float = 0.5
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    stills: list[str] | str | None = None
    stills_ratio: float = 0.0
    stills_warp: float = 1.0
    shard_pairs_per_clip: int = 16
    shard_window: int = 32

    def __post_init__(self) -> None:
        st = self.stills
        if isinstance(st, os.PathLike):
            st = os.fspath(st)
        elif isinstance(st, (list, tuple)):
            st = [os.fspath(x) if isinstance(x, os.PathLike) else x for x in st]
        object.__setattr__(self, "stills", st)
        check_types(self, "data")
        if isinstance(self.stills, str):
            object.__setattr__(self, "stills", [self.stills])  # a list, as YAML writes it back
        require("data", self, {
            "size": (lambda v: v >= 8, "must be at least 8"),
            "min_distance": (lambda v: v >= 0, "must be >= 0"),
            "max_distance": (lambda v: v is None or v >= max(self.min_distance, 1),
                             "must be null or an integer >= max(min_distance, 1)"),
            "split_by": (lambda v: v in SPLIT_BY, f"must be one of {SPLIT_BY}"),
            "val_fraction": (lambda v: 0 <= v < 1, "must be in [0.0, 1.0)"),
            "hflip_prob": (lambda v: 0 <= v <= 1, "must be in [0.0, 1.0]"),
            "brightness": (lambda v: 0 <= v < 1, "must be in [0.0, 1.0)"),
            "contrast": (lambda v: 0 <= v < 1, "must be in [0.0, 1.0)"),
            "saturation": (lambda v: 0 <= v <= 1, "must be in [0.0, 1.0]"),
            "stills": (lambda v: v is None or (len(v) > 0 and all(v)), "must be null or a non-empty list of folders"),
            "stills_warp": (lambda v: 0 <= v <= 3, "must be a number in [0, 3]"),
            "shard_pairs_per_clip": (lambda v: v >= 1, "must be at least 1"),
            "shard_window": (lambda v: v >= 1, "must be at least 1"),
        })
        r = self.stills_ratio
        if self.stills is None and r != 0:
            raise ConfigError(f"data.stills_ratio is {r} but data.stills is not set: name the stills folder(s)")
        if self.stills is not None and not 0 < r < 1:
            raise ConfigError(f"data.stills_ratio must be in (0, 1) when data.stills is set, got {r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        """Build from a mapping (e.g. YAML); unknown keys raise ConfigError naming them."""
        return from_mapping(cls, d, "data config")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ClipSource:
    """A clip to read: ``path`` (video file or frame folder) and ``key`` (its path relative to the source
    it was found under; used for the clip split)."""

    path: Path
    key: str


def _walk(root: Path, folder: Path, out: list[ClipSource]) -> None:
    children = sorted(folder.iterdir(), key=lambda p: p.name)
    if any(c.is_file() and is_image_file(c) for c in children):
        out.append(ClipSource(folder, folder.relative_to(root).as_posix() if folder != root else folder.name))
        return
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            _walk(root, child, out)
        elif child.suffix.lower() in VIDEO_EXTS:
            out.append(ClipSource(child, child.relative_to(root).as_posix()))


def find_clips(sources: Iterable[str | os.PathLike]) -> list[ClipSource]:
    """Expand sources (videos, frame folders, folders of videos, .txt lists) into clips, in a stable order.

    A missing source given directly raises InputError; a missing entry of a list file is logged and skipped.
    """
    clips: list[ClipSource] = []

    def add(source: Path, from_list: bool) -> None:
        if not source.exists():
            if from_list:
                log.warning("skipping %s (listed in a clip list): no such file or folder", source)
                return
            raise InputError(f"{source}: no such file or folder")
        if source.is_dir():
            _walk(source, source, clips)
        elif source.suffix.lower() == ".txt":
            for line in source.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line).expanduser()
                    add(entry if entry.is_absolute() else source.parent / entry, True)
        else:
            clips.append(ClipSource(source, source.name))

    for s in sources:
        add(Path(s).expanduser(), False)
    seen: set[Path] = set()
    unique = []
    for c in clips:
        resolved = c.path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(c)
    return unique


# ------------------------------------------------------------------------------------------ splits
def frame_split_range(num_frames: int, split: str, val_fraction: float) -> tuple[int, int]:
    """[start, stop) of a clip's frames in ``split`` when splitting by frames (train first, val last)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cut = int(num_frames * (1.0 - val_fraction))
    return {"train": (0, cut), "val": (cut, num_frames), "all": (0, num_frames)}[split]


def _clip_hash(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "big")


def select_clips(clips: Sequence[ClipSource], split: str, val_fraction: float) -> list[ClipSource]:
    """The clips of ``split`` when splitting by clip (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "all":
        return list(clips)
    n_val = max(1, round(val_fraction * len(clips))) if len(clips) >= 2 and val_fraction > 0 else 0
    val_keys = {c.key for c in sorted(clips, key=lambda c: (_clip_hash(c.key), c.key))[:n_val]}
    if split == "val" and not val_keys:
        raise InputError(
            f"split_by='clip' needs at least two clips and val_fraction > 0 for a validation split, "
            f"got {len(clips)} clip(s) and val_fraction={val_fraction}; use split_by='frames'"
        )
    return [c for c in clips if (c.key in val_keys) == (split == "val")]


# ----------------------------------------------------------------------------------------- dataset
@dataclass(frozen=True)
class _Clip:
    path: Path
    cache: Path
    start: int  # first frame of the split range
    stop: int  # one past the last
    current: np.ndarray  # int64 frame indices usable as the current frame (a reference exists for each)


def usable_current_frames(start: int, stop: int, min_d: int) -> np.ndarray:
    """Frames i in [start, stop) with some j in the range at distance >= min_d (max_distance >= min_d,
    so distance min_d itself is always allowed when it fits)."""
    i = np.arange(start, stop)
    if min_d == 0:
        return i
    return i[(i - min_d >= start) | (i + min_d <= stop - 1)]


def reference_for(cur: int, start: int, stop: int, config: DataConfig,
                  generator: torch.Generator | None = None) -> int:
    """A reference frame for current frame ``cur`` of a clip range [start, stop): uniform among the frames
    at a distance d with ``min_distance <= d <= max_distance``, either side (one draw from ``generator``,
    torch's global generator when None). ``cur`` must be a usable current frame (``usable_current_frames``)."""
    lo_d = config.min_distance
    hi_d = config.max_distance if config.max_distance is not None else stop - start
    # Candidates: before = [max(start, cur - hi_d), cur - lo_d],
    #             after = [cur + max(lo_d, 1), min(stop - 1, cur + hi_d)]
    # (the current frame itself, distance 0, is counted once, in "before", when min_distance is 0).
    b_lo, b_hi = max(start, cur - hi_d), cur - lo_d
    a_lo, a_hi = cur + max(lo_d, 1), min(stop - 1, cur + hi_d)
    n_before, n_after = max(0, b_hi - b_lo + 1), max(0, a_hi - a_lo + 1)
    r = int(torch.randint(n_before + n_after, (), generator=generator).item())
    return b_lo + r if r < n_before else a_lo + (r - n_before)


class PairDataset(Dataset):
    """(reference, current) frame pairs of the same clip; see the module docstring.

    Item: {"reference": (3, S, S) float32 in [0, 1], "current": (3, S, S), "clip": int (index into
    ``self.clip_paths``), "ref_index": int, "cur_index": int (frame indices within the clip)}.
    """

    def __init__(
        self,
        sources: Sequence[str | os.PathLike],
        config: DataConfig | None = None,
        split: str = "train",
        augment: bool | None = None,
        progress: bool = True,
    ) -> None:
        """augment: apply the config's flip/jitter (default: only for the train split)."""
        self.config = config = config or DataConfig()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        self.augment = (split == "train") if augment is None else augment
        found = find_clips(sources)
        if not found:
            raise InputError(f"no video or frame folder found in {[str(s) for s in sources]}")
        chosen = select_clips(found, split, config.val_fraction) if config.split_by == "clip" else found

        self._clips: list[_Clip] = []
        for src in progress_bar(chosen, desc=f"preparing {split} clips", unit="clip", enabled=progress):
            clip = self._prepare(src.path, split)
            if clip is not None:
                self._clips.append(clip)
        if not self._clips:
            raise InputError(f"no usable clip for split {split!r} among {len(chosen)} candidate(s) "
                             f"(see the warnings above)")
        self._offsets = np.cumsum([0] + [len(c.current) for c in self._clips])
        self._arrays: dict[int, np.ndarray] = {}  # opened lazily, per process

    def _prepare(self, path: Path, split: str) -> _Clip | None:
        cfg = self.config
        try:
            cache = frame_cache(path, cfg.size)
            num_frames = len(np.load(cache, mmap_mode="r"))
        except InputError as e:
            log.warning("skipping clip %s: %s", path, e)
            return None
        except Exception as e:  # a decoder or file system failure we did not foresee: skip, keep going
            log.warning("skipping clip %s: %s: %s", path, type(e).__name__, e)
            return None
        start, stop = (frame_split_range(num_frames, split, cfg.val_fraction)
                       if cfg.split_by == "frames" else (0, num_frames))
        current = usable_current_frames(start, stop, cfg.min_distance)
        if stop - start < 2 or len(current) == 0:
            log.warning("skipping clip %s: too short (%d frame(s) in the %s range, min_distance=%d)",
                        path, stop - start, split, cfg.min_distance)
            return None
        return _Clip(path, cache, start, stop, current)

    @property
    def clip_paths(self) -> list[Path]:
        return [c.path for c in self._clips]

    def clip_range(self, clip: int) -> tuple[int, int]:
        """[start, stop) frame range of clip ``clip`` in this split."""
        return self._clips[clip].start, self._clips[clip].stop

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = {}  # memmaps are reopened in each worker
        return state

    def _frames(self, clip: int) -> np.ndarray:
        array = self._arrays.get(clip)
        if array is None:
            array = self._arrays[clip] = np.load(self._clips[clip].cache, mmap_mode="r")
        return array

    def _reference_for(self, clip: _Clip, cur: int) -> int:
        return reference_for(cur, clip.start, clip.stop, self.config)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        c = int(np.searchsorted(self._offsets, index, side="right")) - 1
        clip = self._clips[c]
        cur = int(clip.current[index - self._offsets[c]])
        ref = self._reference_for(clip, cur)
        frames = self._frames(c)
        pair = np.stack([frames[ref], frames[cur]])  # (2, S, S, 3) uint8, copied out of the memmap
        x = torch.from_numpy(pair).permute(0, 3, 1, 2).float().div_(255.0)  # (2, 3, S, S)
        if self.augment:
            cfg = self.config
            x = augment_pair(x, cfg.hflip_prob, cfg.brightness, cfg.contrast, cfg.saturation)
        return {"reference": x[0], "current": x[1], "clip": c, "ref_index": ref, "cur_index": cur}

    def __repr__(self) -> str:
        return (f"PairDataset(split={self.split!r}, clips={len(self._clips)}, items={len(self)}, "
                f"size={self.config.size})")


# --------------------------------------------------------------------------------- held-out frames
@dataclass(frozen=True)
class HeldOutFrames:
    """The validation range of one clip when splitting by frames, for benchmarks.

    reference: (S, S, 3) uint8, the clip's first frame. frames: (N, S, S, 3) uint8, the held-out frames.
    indices: their frame indices in the clip.
    """

    reference: np.ndarray
    frames: np.ndarray
    indices: list[int]


def held_out_frames(path: str | os.PathLike, size: int, val_fraction: float = 0.2) -> HeldOutFrames:
    """The last ``val_fraction`` of a clip's frames (exactly PairDataset's split_by='frames' val range)."""
    frames = np.load(frame_cache(path, size), mmap_mode="r")
    start, stop = frame_split_range(len(frames), "val", val_fraction)
    if stop <= start:
        raise InputError(f"{path}: no held-out frames with val_fraction={val_fraction} ({len(frames)} frames)")
    return HeldOutFrames(np.array(frames[0]), np.array(frames[start:stop]), list(range(start, stop)))
