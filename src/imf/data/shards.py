"""Sharded clip storage: tar files in the WebDataset layout, and the manifest that indexes them.

A shard folder (written by ``imf data prepare``, ``imf.data.prepare``; read by ``imf.data.shard_pairs``):

    DIR/manifest.json          every clip (its shard, byte offset, frames, fps, person, split, source video),
                               every shard, a per-split summary, the settings and ``complete``
    DIR/{split}-{n:06d}.tar    the clips of one split; each clip is one WebDataset sample, its members together:
        {key}.json             the clip's metadata (its manifest entry, without the offset)
        {key}.000000.png ...   its frames in order: lossless 8-bit RGB PNG, size × size
    DIR/index/{shard}.json     written when a shard is finished: what it holds (the done-list a re-run of
                               ``imf data prepare`` resumes from; the manifest is rebuilt from these files)

One PNG per frame, not one video or ``.npy`` per clip: PNG is lossless, so frames round-trip exactly
(an mp4 would re-encode them); it is about 2.3 times smaller than raw uint8 frames for 256² faces (86 KB
against 196 KB per frame at zlib level 1) and decodes in about 2 ms; each frame is its own tar member,
so a reader seeks to the frames a pair needs and skips the rest, where one array or video per clip must
be read (or decoded) whole. Decoding the two PNGs of a pair is the loader's main cost
(``benchmarks/shards.py``).

The tar files are written and read here with ``tarfile`` and plain seeks, not with the ``webdataset``
package: the pair loader needs random access to one clip's frames by byte offset (validation, and a
resumed run that must not read everything before its position), and its own disjoint assignment of clips
to (rank, worker) with a position that is saved and restored exactly. ``webdataset`` streams shards from
their start and has neither. The layout is the standard one, so ``webdataset.WebDataset(shard)`` reads
these shards as they are (``tests/test_shards.py`` checks it where the package is installed). Members are
USTAR entries (names of at most 100 bytes, no PAX headers), so every header is one 512-byte block.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from imf.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "imf-shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INDEX_DIR = "index"
PNG_LEVEL = 1  # zlib level: 1 is ~5 % larger than 6 and about 3 times faster to write; decoding costs the same
_BLOCK = 512
_MAX_KEY = 80  # + ".000000.png" stays under USTAR's 100-byte names
_MAX_FRAMES = 1_000_000  # frame numbers have six digits


class ShardError(InputError):
    """A shard folder or shard that is missing, damaged or of another format."""


# -------------------------------------------------------------------------------------------- names
def clip_key(name: str) -> str:
    """A WebDataset sample key for a clip id: no dots (WebDataset splits a member name at its first dot)
    and no slashes; characters other than letters, digits, ``_``, ``+`` and ``-`` become ``_``; an id
    longer than 80 characters is cut and given a hash of the whole id, so keys stay distinct."""
    key = re.sub(r"[^A-Za-z0-9_+\-]", "_", name)
    if len(key) > _MAX_KEY:
        key = key[: _MAX_KEY - 13] + "_" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return key


def frame_member(key: str, index: int) -> str:
    return f"{key}.{index:06d}.png"


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


_SHARD_NAME = re.compile(r"^[A-Za-z0-9_]+-\d{6}\.tar$")


# ------------------------------------------------------------------------------------------- frames
def encode_png(frame: np.ndarray, level: int = PNG_LEVEL) -> bytes:
    """uint8 (H, W, 3) RGB -> PNG bytes (lossless)."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="png", compress_level=level)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3) RGB. OpenCV's decoder: 10-15 % faster than Pillow's on 256² frames,
    and the loader's main cost."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # (H, W, 3) BGR
    if image is None:
        raise ValueError("not a decodable PNG")
    return np.ascontiguousarray(image[..., ::-1])  # RGB (a copy, not cvtColor: no OpenCV thread pool here)


def decode_frame(data: bytes, entry: dict[str, Any], index: int) -> np.ndarray:
    """``decode_png`` for frame ``index`` of a manifest entry; ShardError naming the shard if it fails."""
    try:
        return decode_png(data)
    except (ValueError, cv2.error) as e:
        raise ShardError(f"{entry['shard']}: frame {index} of clip {entry['clip']!r} is not a readable PNG "
                         f"({e})") from None


# ------------------------------------------------------------------------------------------- writer
class ShardWriter:
    """Writes the clips of one split into ``{split}-{n:06d}.tar`` shards of about ``max_bytes`` each.

    A shard is written as ``.tar.partial`` and only becomes ``.tar``, with its ``index/{shard}.json``, when
    it is closed: a crash leaves no half shard that looks finished. ``add`` starts the next shard when the
    clip would take the current one past ``max_bytes`` (a shard holds at least one clip).
    """

    def __init__(self, folder: str | os.PathLike, split: str, first_index: int = 0,
                 max_bytes: int = 1 << 30) -> None:
        self.folder, self.split, self.index, self.max_bytes = Path(folder), split, first_index, max_bytes
        self.closed: list[dict[str, Any]] = []  # index dicts of the shards finished so far
        self._file = None
        self._tar: tarfile.TarFile | None = None
        self._clips: list[dict[str, Any]] = []

    @property
    def _path(self) -> Path:
        return self.folder / shard_name(self.split, self.index)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = open(self._path.with_name(self._path.name + ".partial"), "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.USTAR_FORMAT)
        self._clips = []

    def _member(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0  # mtime 0: shards depend on their content only
        self._tar.addfile(info, io.BytesIO(data))

    def add(self, name: str, meta: dict[str, Any], frames: Sequence[bytes]) -> dict[str, Any]:
        """Append one clip: ``name`` its id, ``meta`` its metadata (JSON-able), ``frames`` its PNG frames.
        Returns its manifest entry (``clip``, ``key``, ``shard``, ``offset``, ``bytes``, ``frames`` + meta)."""
        if not frames:
            raise ValueError(f"clip {name!r} has no frame")
        if len(frames) > _MAX_FRAMES:
            raise ValueError(f"clip {name!r} has {len(frames)} frames; a shard clip holds at most {_MAX_FRAMES}")
        key = clip_key(name)
        entry = {**meta, "clip": name, "key": key, "frames": len(frames), "split": self.split}
        header = json.dumps({k: v for k, v in entry.items()}, sort_keys=True).encode()
        size = sum(_BLOCK + -(-len(b) // _BLOCK) * _BLOCK for b in [header, *frames])
        if self._tar is not None and self._clips and self._tar.offset + size > self.max_bytes:
            self.close()
        if self._tar is None:
            self._open()
        offset = self._tar.offset
        self._member(f"{key}.json", header)
        for i, data in enumerate(frames):
            self._member(frame_member(key, i), data)
        entry.update(shard=self._path.name, offset=offset, bytes=self._tar.offset - offset)
        self._clips.append(entry)
        return entry

    def close(self) -> dict[str, Any] | None:
        """Finish the open shard (if any): returns its index dict, also appended to ``self.closed``."""
        if self._tar is None:
            return None
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        partial = self._path.with_name(self._path.name + ".partial")
        index = {"shard": self._path.name, "split": self.split, "bytes": partial.stat().st_size,
                 "clips": self._clips}
        index_path = self.folder / INDEX_DIR / f"{self._path.name}.json"
        index_path.parent.mkdir(exist_ok=True)
        tmp = index_path.with_name(index_path.name + ".partial")
        tmp.write_text(json.dumps(index))
        os.replace(partial, self._path)  # the tar first: a tar without an index is removed by the next run
        os.replace(tmp, index_path)
        self.closed.append(index)
        self._tar = self._file = None
        self._clips = []
        self.index += 1
        return index

    def abort(self) -> None:
        """Drop the open shard (its clips are not done)."""
        if self._tar is not None:
            try:
                self._tar.close()
            finally:
                self._file.close()
                self._path.with_name(self._path.name + ".partial").unlink(missing_ok=True)
            self._tar = self._file = None
            self._clips = []


def finished_shards(folder: str | os.PathLike, clean: bool = False) -> list[dict[str, Any]]:
    """The index dicts of the finished shards in ``folder`` (sorted by shard name). With ``clean``,
    remove what an interrupted run left: ``.partial`` files, tars without an index, indices whose tar is
    missing or of another size."""
    folder = Path(folder)
    found: list[dict[str, Any]] = []
    index_dir = folder / INDEX_DIR
    for path in sorted(index_dir.glob("*.json")) if index_dir.is_dir() else []:
        try:
            index = json.loads(path.read_text())
            tar = folder / index["shard"]
            ok = tar.is_file() and tar.stat().st_size == int(index["bytes"])
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if ok:
            found.append(index)
        elif clean:
            log.warning("removing %s: its shard is missing or incomplete", path)
            path.unlink(missing_ok=True)
    if clean:  # only files named as this module names them: a folder may hold other tars
        indexed = {i["shard"] for i in found}
        stale = [*folder.glob("*.tar.partial"), MANIFEST + ".partial",
                 *(index_dir.glob("*.json.partial") if index_dir.is_dir() else [])]
        for path in stale:
            (folder / path).unlink(missing_ok=True)
        for tar in folder.glob("*.tar"):
            if _SHARD_NAME.match(tar.name) and tar.name not in indexed:
                log.warning("removing %s: a shard without an index (an interrupted run)", tar)
                tar.unlink(missing_ok=True)
    return sorted(found, key=lambda i: i["shard"])


def write_manifest(folder: str | os.PathLike, info: dict[str, Any], complete: bool) -> dict[str, Any]:
    """Rebuild ``DIR/manifest.json`` from the finished shards' indices (atomically); returns it.

    ``info``: the data set, settings and report summary to record beside the clips."""
    folder = Path(folder)
    indices = finished_shards(folder)
    clips = [c for index in indices for c in index["clips"]]
    splits: dict[str, dict[str, Any]] = {}
    for c in clips:
        s = splits.setdefault(c["split"], {"clips": 0, "frames": 0, "people": set(), "shards": set()})
        s["clips"] += 1
        s["frames"] += c["frames"]
        s["shards"].add(c["shard"])
        if c.get("person") is not None:
            s["people"].add(c["person"])
    summary = {k: {"clips": v["clips"], "frames": v["frames"], "people": len(v["people"]) or None,
                   "shards": len(v["shards"])} for k, v in sorted(splits.items())}
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, **info, "complete": complete, "splits": summary,
                "shards": [{"name": i["shard"], "split": i["split"], "bytes": i["bytes"], "clips": len(i["clips"]),
                            "frames": sum(c["frames"] for c in i["clips"])} for i in indices],
                "clips": clips}
    tmp = folder / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / MANIFEST)
    return manifest


# ------------------------------------------------------------------------------------------ reading
def is_shard_folder(path: str | os.PathLike) -> bool:
    """A folder holding a ``manifest.json`` of this format (what ``imf data prepare`` writes)."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        with open(manifest, "rb") as f:
            head = f.read(200)
    except OSError:
        return False
    return f'"format": "{FORMAT}"'.encode() in head


@dataclass(frozen=True)
class ShardFolder:
    """A shard folder's manifest, read: ``clips`` (manifest entries, each with ``folder`` added) and
    ``manifest`` (the rest of the JSON)."""

    folder: Path
    manifest: dict[str, Any]
    clips: list[dict[str, Any]]


def load_shard_folder(path: str | os.PathLike) -> ShardFolder:
    """Read a shard folder's manifest. Raises ShardError naming the problem."""
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ShardError(f"{folder}: no {MANIFEST} (not a shard folder of `imf data prepare`)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise ShardError(f"{manifest_path}: not readable JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ShardError(f"{manifest_path}: not an {FORMAT} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ShardError(f"{manifest_path}: format version {manifest.get('version')!r}; this imf reads "
                         f"version {FORMAT_VERSION}")
    if not manifest.get("complete", False):
        log.warning("%s: the shard folder is incomplete (`imf data prepare` was interrupted); using the "
                    "%d clip(s) finished so far", folder, len(manifest.get("clips", [])))
    clips = [{**c, "folder": str(folder)} for c in manifest.pop("clips", [])]
    return ShardFolder(folder, manifest, clips)


def select_split(clips: Iterable[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    """The clips of ``split``: "all", "val" (every clip not in "train": the val and test splits of the
    metadata) or an exact split name ("train", "test", ...)."""
    if split == "all":
        return list(clips)
    if split == "val":
        return [c for c in clips if c["split"] != "train"]
    return [c for c in clips if c["split"] == split]


class ShardReader:
    """Reads frames of clips out of shard tars by their manifest entries. File handles are opened lazily,
    per process (the reader pickles light, for DataLoader workers), and kept open."""

    def __init__(self) -> None:
        self._files: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"_files": {}}

    def _file(self, entry: dict[str, Any]):
        path = os.path.join(entry["folder"], entry["shard"])
        f = self._files.get(path)
        if f is None:
            try:
                f = self._files[path] = open(path, "rb")
            except OSError as e:
                raise ShardError(f"{path}: cannot open the shard ({e.strerror or e})") from None
        return f

    def read(self, entry: dict[str, Any], indices: Iterable[int]) -> dict[int, bytes]:
        """PNG bytes of the frames ``indices`` of one clip: one pass over the clip's tar headers from its
        offset, reading the data of the wanted frames and seeking past the others."""
        wanted = set(int(i) for i in indices)
        n = int(entry["frames"])
        if any(not 0 <= i < n for i in wanted):
            raise IndexError(f"clip {entry['clip']!r} has {n} frames; asked for {sorted(wanted)}")
        f, key = self._file(entry), entry["key"]
        pos, out = int(entry["offset"]), {}
        last = max(wanted, default=-1)
        for member in range(last + 2):  # the json member, then frames 0..last
            f.seek(pos)
            block = f.read(_BLOCK)
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.TarError as e:
                raise ShardError(f"{entry['shard']}: damaged tar header at byte {pos} ({e})") from None
            expected = f"{key}.json" if member == 0 else frame_member(key, member - 1)
            if info.name != expected:
                raise ShardError(f"{entry['shard']}: expected member {expected} at byte {pos}, found "
                                 f"{info.name!r}")
            if member - 1 in wanted:
                data = f.read(info.size)
                if len(data) != info.size:
                    raise ShardError(f"{entry['shard']}: truncated at member {info.name}")
                out[member - 1] = data
            pos += _BLOCK + -(-info.size // _BLOCK) * _BLOCK
        return out

    def frames(self, entry: dict[str, Any], indices: Sequence[int]) -> list[np.ndarray]:
        """Decoded uint8 (S, S, 3) frames ``indices`` of a clip, in the order asked."""
        data = self.read(entry, indices)
        return [decode_frame(data[int(i)], entry, int(i)) for i in indices]

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
