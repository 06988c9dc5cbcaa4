"""CelebV-HQ's metadata: ``celebvhq_info.json`` (github.com/CelebV-HQ/CelebV-HQ).

    {"meta_info": {"appearance_mapping": [...], "action_mapping": [...], "emotion_mapping": [...]},
     "clips": {"<clip id>": {"ytb_id": "<YouTube id>",
                             "duration": {"start_sec": 81.62, "end_sec": 86.17},
                             "bbox": {"top": 0.0, "bottom": 0.88, "left": 0.19, "right": 0.69},
                             "attributes": {"appearance": [0, 1, ...], "action": [...],
                                            "emotion": {"sep_flag": false, "labels": "neutral"}},
                             "version": "v0.1"}, ...}}

The box is in fractions of the frame. The crop follows the data set's own ``download_and_process.py``:
the box grown by 0.02 of the frame on each side (clamped to the frame), then the square of its shorter
side in pixels around its centre; the span is [start_sec, end_sec) at the video's own frame rate.
The metadata names no identity: ``person`` is None (the source video is kept as ``source``).

Split (the IMF paper: 500 random validation videos): 500 source videos (YouTube ids), drawn with
``random.Random(seed)`` from their sorted list, and every clip of them, go to "val"; all other clips to
"train". Whole source videos rather than single clips, so no clip of a validation video (most likely
the same person) is in training. The drawn ids are written to DIR/splits/celebvhq_val_videos.txt; a
list given with ``val_list`` (YouTube or clip ids, one per line) is used instead of the draw.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

from imf.data.prepare.spec import ClipSpec, ParsedMeta
from imf.errors import InputError

EXPAND = 0.02  # of the frame, each side (download_and_process.py's expand(bbox, 0.02))
VAL_VIDEOS = 500


def read_list(path: str | Path) -> list[str]:
    """Ids of a list file, one per line; blank lines and ``#`` comments ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise InputError(f"{path}: cannot read the list ({e.strerror or e})") from None
    return [s for s in (line.split("#", 1)[0].strip() for line in lines) if s]


def _clip(name: str, entry: dict[str, Any], split: str) -> ClipSpec:
    d, b = entry["duration"], entry["bbox"]
    top, bottom = max(float(b["top"]) - EXPAND, 0.0), min(float(b["bottom"]) + EXPAND, 1.0)
    left, right = max(float(b["left"]) - EXPAND, 0.0), min(float(b["right"]) + EXPAND, 1.0)
    extra = {k: entry[k] for k in ("attributes", "version") if k in entry}
    return ClipSpec(clip=name, video=str(entry["ytb_id"]), split=split, person=None,
                    start=float(d["start_sec"]), stop=float(d["end_sec"]), unit="second", fps=None,
                    box=(left, top, right, bottom), box_space=(1.0, 1.0), square="min", extra=extra)


def parse(meta: str | Path, val_videos: int = VAL_VIDEOS, seed: int = 0,
          val_list: str | Path | None = None) -> ParsedMeta:
    """The clips of ``celebvhq_info.json`` (``meta``: the file, or a folder holding it)."""
    path = Path(meta)
    if path.is_dir():
        path = path / "celebvhq_info.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (CelebV-HQ's celebvhq_info.json)") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e})") from None
    clips = data.get("clips") if isinstance(data, dict) else None
    if not isinstance(clips, dict):
        raise InputError(f"{path}: no \"clips\" mapping (not CelebV-HQ's celebvhq_info.json)")

    problems: list[str] = []
    parsed: list[ClipSpec] = []
    for name, entry in clips.items():
        try:
            parsed.append(_clip(str(name), entry, "train"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            problems.append(f"{path.name}: clip {name}: unreadable entry ({type(e).__name__}: {e})")
    videos = sorted({c.video for c in parsed})  # the draw is among the videos with a readable clip
    if val_list is not None:
        chosen = set(read_list(val_list))
        val_ids = sorted(chosen & set(videos))
        val_clips = chosen & {c.clip for c in parsed}
    else:
        val_ids = sorted(random.Random(seed).sample(videos, min(val_videos, len(videos))))
        val_clips = set()
    val_set = set(val_ids)
    out = [dataclasses.replace(c, split="val") if c.video in val_set or c.clip in val_clips else c for c in parsed]
    return ParsedMeta(out, {"celebvhq_val_videos.txt": val_ids}, problems)
