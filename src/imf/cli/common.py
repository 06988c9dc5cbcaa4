"""Argument types and small helpers shared by the command modules."""

from __future__ import annotations

import argparse
import logging
import sys


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def frame_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame index (0, 1, ...), got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a frame index (0, 1, ...), got {value}")
    return value


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def default_device(name: str | None) -> str:
    """The device asked for, else cuda when available, else cpu."""
    if name:
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def setup_logging(fmt: str = "warning: %(message)s") -> None:
    """Library warnings (a skipped metric, a fallback) as one line each on stderr."""
    logging.basicConfig(level=logging.WARNING, format=fmt, stream=sys.stderr)
