"""Temporary files of the web app: one folder per browser session, one sub-folder per tab's latest job.

    <root>/<session>/<tab>/      the files of the session's latest job in that tab (a new job replaces it)

A session's folder is removed when its page is closed (Gradio's unload event), the whole root when the
server stops. Sessions never share a folder, so one user's results are never written where another's are.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

LOCAL_SESSION = "local"  # handlers called outside a browser session (tests, scripts)
_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _folder_name(session: str | None) -> str:
    if not session:
        return LOCAL_SESSION
    # Gradio's session hashes are short alphanumeric strings; anything else is hashed, never used as a path
    return session if _SAFE.match(session) else hashlib.sha256(session.encode()).hexdigest()[:32]


class Workspace:
    """The app's temporary folder (``root``; a new one under the system's temp folder when None)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="imf-serve-"))
        self.root.mkdir(parents=True, exist_ok=True)

    def session_dir(self, session: str | None) -> Path:
        return self.root / _folder_name(session)

    def job_dir(self, session: str | None, tab: str) -> Path:
        """An empty folder for a new job of ``tab`` in ``session`` (the previous job's files are removed)."""
        if not _SAFE.match(tab):
            raise ValueError(f"bad tab name {tab!r}")
        folder = self.session_dir(session) / tab
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def drop(self, session: str | None) -> None:
        """Remove a session's files (its page was closed)."""
        shutil.rmtree(self.session_dir(session), ignore_errors=True)

    def close(self) -> None:
        """Remove every file of the app (the server stops)."""
        shutil.rmtree(self.root, ignore_errors=True)
