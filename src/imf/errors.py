"""Exceptions that mean "the user gave us something wrong" (reported in one line, exit status 2)."""

from __future__ import annotations


class IMFError(Exception):
    """Base of the project's user-facing errors."""


class ConfigError(IMFError, ValueError):
    """A config has an unknown key, a wrong type or an impossible value."""


class CheckpointError(IMFError):
    """A checkpoint folder is missing a file, has another format, or does not match its config."""


class InputError(IMFError):
    """An input file is missing, unreadable, empty, too small or of the wrong kind."""


class BitstreamError(IMFError):
    """An .imf file is truncated, corrupted, of an unknown version or made by another model."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types the CLI turns into a one-line message and exit status 2."""
    from imf.cache import FetchError

    return (IMFError, FetchError, FileNotFoundError, IsADirectoryError, PermissionError)
