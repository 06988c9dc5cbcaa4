"""VoxCeleb's metadata (VoxCeleb1 and 2): one segment file per utterance, ``txt/<identity>/<YouTube id>/<n>.txt``::

    Identity  : 	id10001
    Reference : 	1zcIwhmdeo4
    Offset    : 	1
    FV Conf   : 	16.647	(1)
    ASD Conf  : 	4.465

    FRAME 	X 	Y 	W 	H
    000245 	0.271 	0.118 	0.238 	0.357
    000246 	0.271 	0.118 	0.238 	0.357
    ...

(the face track: frame numbers at 25 fps in the YouTube video, and the face box, top-left x, y and size
w, h; as fractions of the frame in the released files, in pixels in some older ones: values above 1.5
are taken as pixels.)

The clip is frames ``first`` to ``last`` of the track at 25 fps (for each the raw frame nearest its
instant, whatever the raw video's own rate), cropped to one still box as FOMM's preprocessing does: the
union of the track's boxes, grown by 10 % each side, made square (its longer side) and moved into the
frame. Person: the identity. Split: by the folders (``vox1_test_txt``, ``test/`` → "test";
``..._dev_txt``, ``dev/`` → "train"); without one, VoxCeleb1's test identities id10270-id10309 are
"test", every other "train".
"""

from __future__ import annotations

from pathlib import Path

from imf.data.prepare.spec import ClipSpec, ParsedMeta, parse_text_files, split_from_path

FPS = 25.0
GROW = 0.1  # FOMM's increase_area
VOX1_TEST = range(10270, 10310)


def _default_split(identity: str) -> str:
    digits = identity[2:] if identity.startswith("id") else ""
    return "test" if digits.isdigit() and int(digits) in VOX1_TEST else "train"


def parse_file(path: Path, segment: str, split: str | None = None) -> ClipSpec:
    """One segment file; ``segment``: its utterance number (the file stem). Raises ValueError."""
    header: dict[str, str] = {}
    rows: list[tuple[int, float, float, float, float]] = []
    in_table = False
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.upper().startswith("FRAME"):
            in_table = True
            continue
        if in_table:
            values = line.split()
            if len(values) < 5:
                raise ValueError(f"track line with {len(values)} values (expected FRAME X Y W H): {line[:60]!r}")
            rows.append((int(values[0]), *(float(v) for v in values[1:5])))
        elif ":" in line:
            key, value = line.split(":", 1)
            header[key.strip().upper()] = value.strip()
    identity, reference = header.get("IDENTITY"), header.get("REFERENCE")
    if not identity or not reference:
        raise ValueError("no 'Identity :' or 'Reference :' line")
    if not rows:
        raise ValueError("no face track (no lines after 'FRAME X Y W H')")
    first, last = min(r[0] for r in rows), max(r[0] for r in rows)
    x0, y0 = min(r[1] for r in rows), min(r[2] for r in rows)
    x1, y1 = max(r[1] + r[3] for r in rows), max(r[2] + r[4] for r in rows)
    gw, gh = GROW * (x1 - x0), GROW * (y1 - y0)
    fractions = max(x1, y1) <= 1.5
    box = (x0 - gw, y0 - gh, x1 + gw, y1 + gh)
    extra = {"offset": header.get("OFFSET"), "fv_conf": header.get("FV CONF"), "track_frames": [first, last]}
    return ClipSpec(clip=f"{identity}/{reference}/{segment}", video=reference,
                    split=split or _default_split(identity), person=identity,
                    start=first / FPS, stop=(last + 1) / FPS, unit="second", fps=FPS, box=box,
                    box_space=(1.0, 1.0) if fractions else None, square="max", extra=extra)


def parse(meta: str | Path) -> ParsedMeta:
    """Every ``*.txt`` segment file under ``meta`` (a folder, searched recursively, or one file)."""
    return parse_text_files(meta, "VoxCeleb's txt folders: vox1_dev_txt, vox2_test_txt, ...",
                            lambda path, rel: parse_file(path, path.stem, split_from_path(rel, id_folders=2)))
