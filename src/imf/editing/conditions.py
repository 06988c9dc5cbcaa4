"""Control conditions h for the token editor ψ: the extractor interface, condition files, ``--set`` values.

A condition is a float vector with one named entry per control (e.g. yaw, pitch, roll, eye, mouth).
It comes either from an extractor that measures it on a frame (``ConditionExtractor``; built in:
``imf.editing.measures.LandmarkConditions``) or from a user file with one row per frame:

- ``.npy``: a float array (N, D) (or (D,) for one frame); entries in the editor's condition order.
- ``.csv``: a header row of condition names, then one row per frame. Columns may come in any order;
  a file may hold only some of the names where the use allows it (``imf edit`` fills the others with
  the source's measured values).

Values are in the units of the extractor that defined them (degrees for head pose, ratios for eye and
mouth openness); a missing value (an empty CSV cell, ``nan``) marks a frame without a condition.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from imf.errors import InputError


@runtime_checkable
class ConditionExtractor(Protocol):
    """Measures a condition on one frame.

    names: one name per entry of the condition; dim == len(names).
    ``__call__(frame)``: frame uint8 (H, W, 3) RGB → float array (dim,), or None when it cannot be
    measured (e.g. no face). Implementations may set ``identity`` (a string that changes whenever the
    measure does), used to key cached conditions; otherwise the class name and names are used.
    """

    names: tuple[str, ...]

    @property
    def dim(self) -> int: ...

    def __call__(self, frame: np.ndarray) -> np.ndarray | None: ...


def extractor_identity(extractor: ConditionExtractor) -> str:
    return getattr(extractor, "identity", None) or f"{type(extractor).__qualname__}:{','.join(extractor.names)}"


class ConcatConditions:
    """Several extractors side by side: names and values concatenated; None if any of them gives None."""

    def __init__(self, *extractors: ConditionExtractor):
        if not extractors:
            raise ValueError("ConcatConditions needs at least one extractor")
        self.extractors = extractors
        self.names = tuple(n for e in extractors for n in e.names)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"condition names repeat across extractors: {list(self.names)}")
        self.identity = "+".join(extractor_identity(e) for e in extractors)

    @property
    def dim(self) -> int:
        return len(self.names)

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        parts = []
        for e in self.extractors:
            v = e(frame)
            if v is None:
                return None
            parts.append(np.asarray(v, dtype=np.float64).reshape(e.dim))
        return np.concatenate(parts)


# ------------------------------------------------------------------------------------ files
@dataclass(frozen=True)
class ConditionTrack:
    """Per-frame conditions read from a file: values (N, len(names)) float64 (nan = missing), names."""

    values: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.values)


def _read_csv(path: Path) -> ConditionTrack:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"{path}: empty condition file (expected a header row of condition names)")
    names = tuple(c.strip() for c in rows[0])
    if any(not n for n in names) or len(set(names)) != len(names):
        raise InputError(f"{path}: the header must name every column once, got {list(names)}")
    try:
        float(names[0])
    except ValueError:
        pass
    else:
        raise InputError(f"{path}: the first row must be a header of condition names, got {list(names)}")
    values = np.full((len(rows) - 1, len(names)), np.nan)
    for i, row in enumerate(rows[1:]):
        if len(row) != len(names):
            raise InputError(f"{path}: line {i + 2} has {len(row)} value(s), the header has {len(names)}")
        for j, cell in enumerate(row):
            cell = cell.strip()
            if cell:
                try:
                    values[i, j] = float(cell)
                except ValueError:
                    raise InputError(f"{path}: line {i + 2}, column {names[j]!r}: {cell!r} is not a number") from None
    if not len(values):
        raise InputError(f"{path}: no condition rows after the header")
    return ConditionTrack(values, names)


def read_condition_file(path: str | os.PathLike, names: tuple[str, ...] | None = None) -> ConditionTrack:
    """Read a ``.npy`` or ``.csv`` condition file (see the module docstring).

    names: the condition names an ``.npy`` file's columns stand for (its width must equal their count);
    a CSV carries its own names. Raises InputError naming the file and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such condition file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix != ".npy":
        raise InputError(f"{path}: condition files must be .npy or .csv, got {suffix or 'no extension'!r}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{path}: not a readable .npy array ({e})") from None
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or len(array) == 0:
        raise InputError(f"{path}: expected a numeric array (frames, values), got {array.dtype} {array.shape}")
    if names is None:
        names = tuple(f"c{i}" for i in range(array.shape[1]))
    if array.shape[1] != len(names):
        raise InputError(f"{path} has {array.shape[1]} value(s) per frame, but {len(names)} are expected "
                         f"({', '.join(names)})")
    return ConditionTrack(array.astype(np.float64), tuple(names))


def check_track(track: ConditionTrack, expected: tuple[str, ...], source: str, allow_subset: bool = False) -> None:
    """Check a track's names against the editor's; InputError naming unknown or missing names."""
    unknown = [n for n in track.names if n not in expected]
    missing = [n for n in expected if n not in track.names]
    if unknown:
        raise InputError(f"{source}: unknown condition name(s) {unknown}; the editor knows {list(expected)} "
                         f"({len(expected)} value(s) per frame, got {len(track.names)})")
    if missing and not allow_subset:
        raise InputError(f"{source}: missing condition(s) {missing}; the editor expects {len(expected)} "
                         f"value(s) per frame ({', '.join(expected)}), got {len(track.names)}")


def reorder(track: ConditionTrack, expected: tuple[str, ...]) -> np.ndarray:
    """(N, len(expected)) values in the editor's order; names the track lacks are nan."""
    out = np.full((len(track), len(expected)), np.nan)
    for j, name in enumerate(expected):
        if name in track.names:
            out[:, j] = track.values[:, track.names.index(name)]
    return out


def write_condition_csv(path: str | os.PathLike, values: np.ndarray, names: tuple[str, ...]) -> None:
    """Write (N, D) values (nan → empty cell) under a header of names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        for row in np.asarray(values, dtype=np.float64).reshape(-1, len(names)):
            w.writerow(["" if not np.isfinite(v) else f"{v:.6g}" for v in row])
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------ --set
def parse_set(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """``"yaw=15,pitch=-5,mouth=0.6"`` → {name: value}; InputError for unknown names or bad numbers."""
    out: dict[str, float] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set: expected NAME=VALUE items separated by commas, got {item!r}")
        if key not in names:
            raise InputError(f"--set: unknown condition {key!r}; the editor knows {', '.join(names)}")
        if key in out:
            raise InputError(f"--set: {key!r} is given twice")
        try:
            v = float(value)
        except ValueError:
            raise InputError(f"--set: {key}={value.strip()!r} is not a number") from None
        if not np.isfinite(v):
            raise InputError(f"--set: {key}={value.strip()} is not a finite number")
        out[key] = v
    if not out:
        raise InputError("--set: no NAME=VALUE given")
    return out
