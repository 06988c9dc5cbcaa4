"""VFHQ's metadata: one annotation file per clip (liangbinxie.github.io/projects/vfhq, ``meta_info``).

File name ``Clip+<video id>+P<person>+C<clip>+F<first>-<last>.txt``; content::

    Video: G0DGRma_p48
    H: 1080
    W: 1920
    FPS: 29.97
    PERSON ID: 0
    CLIP: 0

    FRAME INDEX X0 Y0 X1 Y1 [Landmarks (5 Points)]

    00011209 00000000 732 286 1043 705 820.5 454.2 958.1 451.0 894.3 535.6 836.8 604.9 948.2 602.3
    ...
    CROP BBOX: 583 199 1184 800

(header lines ``key: value``; per-frame lines: frame number, face index, the face box x0 y0 x1 y1 and five
landmark points; the last line the clip's fixed crop box, in pixels of the H × W video.)

As VFHQ's own extraction script does: the clip is the raw video's frames ``first + 1`` to ``last - 1``
(numbered from 0 as decoded), cropped to ``CROP BBOX`` (scaled when the downloaded video's size is not
H × W; here made square around its centre, side = its longer side). Without a file name range, the
per-frame lines' first and last frame numbers are used; without a CROP BBOX, the union of the per-frame
face boxes grown by 30 % each side. Person: ``<video id>+P<person>`` (VFHQ numbers the people of each
video). Split: the official one, by the folder the file is in: a path with "test" in a folder name
(VFHQ-Test) is "test", the rest "train".
"""

from __future__ import annotations

import re
from pathlib import Path

from imf.data.prepare.spec import ClipSpec, ParsedMeta, parse_text_files, split_from_path

_NAME = re.compile(r"^Clip\+(?P<video>.+)\+P(?P<pid>\d+)\+C(?P<cid>\d+)\+F(?P<first>\d+)-(?P<last>\d+)$")
_UNION_GROW = 0.3  # the fallback box: face boxes' union grown by this share of its size, each side


def parse_file(path: Path, split: str = "train") -> ClipSpec:
    """One annotation file. Raises ValueError naming what is wrong."""
    header: dict[str, str] = {}
    boxes: list[tuple[float, float, float, float]] = []
    frames: list[int] = []
    crop: tuple[float, ...] | None = None
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("CROP BBOX"):
            crop = tuple(float(v) for v in line.split(":", 1)[1].split()[:4])
        elif upper.startswith("FRAME INDEX"):
            continue  # the column header
        elif line[0].isdigit():
            values = line.split()
            if len(values) < 6:
                raise ValueError(f"frame line with {len(values)} values (expected frame, index, x0 y0 x1 y1, "
                                 f"landmarks): {line[:60]!r}")
            frames.append(int(values[0]))
            boxes.append(tuple(float(v) for v in values[2:6]))
        elif ":" in line:
            key, value = line.split(":", 1)
            header[key.strip().upper()] = value.strip()
    match = _NAME.match(path.stem)
    video = header.get("VIDEO") or (match["video"] if match else None)
    if not video:
        raise ValueError("no video id (no 'Video:' line and not a Clip+<id>+P..+C..+F..-.. file name)")
    if match:  # VFHQ's extraction: frames first + 1 .. last - 1
        start, stop = int(match["first"]) + 1, int(match["last"])
        pid = match["pid"]
    elif frames:
        start, stop = min(frames), max(frames) + 1
        pid = header.get("PERSON ID", "0")
    else:
        raise ValueError("no frame range (no F<first>-<last> in the file name and no frame lines)")
    try:
        width, height = float(header["W"]), float(header["H"])
    except (KeyError, ValueError):
        raise ValueError("no 'H:' and 'W:' lines (the size the boxes are measured in)") from None
    if crop is None or len(crop) < 4:
        if not boxes:
            raise ValueError("no CROP BBOX line and no face boxes")
        x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
        x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
        gw, gh = _UNION_GROW * (x1 - x0), _UNION_GROW * (y1 - y0)
        crop = (x0 - gw, y0 - gh, x1 + gw, y1 + gh)
    extra = {"fps_meta": float(header["FPS"]) if "FPS" in header else None, "annotated_frames": len(frames),
             "crop_bbox": list(crop[:4])}
    return ClipSpec(clip=path.stem, video=video, split=split, person=f"{video}+P{int(pid)}",
                    start=start, stop=stop, unit="frame", fps=None, box=tuple(crop[:4]),
                    box_space=(width, height), square="max", extra=extra)


def parse(meta: str | Path) -> ParsedMeta:
    """Every ``*.txt`` annotation file under ``meta`` (a folder, searched recursively, or one file)."""
    return parse_text_files(meta, "VFHQ's meta_info annotation files",
                            lambda path, rel: parse_file(path, split_from_path(rel) or "train"))
