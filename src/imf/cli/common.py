"""Argument types and small helpers shared by the command modules."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def int_in(low: int, high: int):
    """An argparse type: an integer in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in {low}..{high}, got {value}")
        return value
    return parse


def number_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """An argparse type: a finite number in the interval from low to high (open ends where asked)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {left}{low:g}, {high:g}{right}, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and \
            (value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a number in {left}{low:g}, {high:g}{right}, got {text}")
        return value
    return parse


crf = int_in(0, 51)
"""x264 / x265 CRF."""
quality_level = int_in(1, 12)
"""A codec token quality level (imf.codec.quantizer's range)."""


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
    """The device asked for (checked: ConfigError for an unknown or absent one), else cuda when available,
    else cpu."""
    from imf.devices import resolve_device

    return str(resolve_device(name))


def setup_logging(fmt: str = "warning: %(message)s") -> None:
    """Library warnings (a skipped metric, a fallback) as one line each on stderr."""
    logging.basicConfig(level=logging.WARNING, format=fmt, stream=sys.stderr)


# ---- options shared by the commands: the same flag, help and default everywhere
DEVICE_HELP = "torch device: cpu, cuda, cuda:N or mps (default: cuda if available, else cpu)"


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", metavar="DEV", default=None, help=DEVICE_HELP)


PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")  # imf.precision.PRECISION_CHOICES (not imported: CLI start-up)


def add_precision(p: argparse.ArgumentParser, default: str = "auto") -> None:
    """--precision: the same choices and help on every command; inference commands default to "auto",
    measuring ones (eval, bench) to the "fp32" reference so that their numbers compare across machines."""
    p.add_argument("--precision", choices=PRECISION_CHOICES, default=default,
                   help="compute precision: auto (bf16 where this CPU has fast bf16, AVX512-BF16 or AMX, or the GPU "
                        "has bf16; fp32 elsewhere), fp32 (the reference), bf16 (also on a CPU without fast bf16: "
                        f"slow there), fp16 (GPU only); default {default}")


def add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress output")


def add_batch_size(p: argparse.ArgumentParser, default: int | None = 8, what: str = "frames per model call") -> None:
    shown = f"default {default}" if default is not None else "default: the config's"
    p.add_argument("--batch-size", type=positive_int, default=default, metavar="B", help=f"{what} ({shown})")


def add_ckpt(p: argparse.ArgumentParser, what: str = "model folder (config.json + model.safetensors)") -> None:
    """--ckpt DIR, left out: the shipped model (resolved by ``resolve_ckpt`` before the command runs)."""
    from imf.assets import SHIPPED_MODEL

    p.add_argument("--ckpt", metavar="DIR", default=None,
                   help=f"{what}; default: the shipped model {SHIPPED_MODEL} (MODEL_CARD.md)")
    p.set_defaults(ckpt_defaults_to_shipped=True)


def resolve_ckpt(args: argparse.Namespace) -> None:
    """Fill in the shipped model's folder where a command's --ckpt was left out."""
    if getattr(args, "ckpt_defaults_to_shipped", False) and getattr(args, "ckpt", None) is None:
        from imf.assets import shipped_model_path

        args.ckpt = str(shipped_model_path())


# ---- a command never writes over one of its inputs
def protect_inputs(p: argparse.ArgumentParser, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> None:
    """Declare which of a command's arguments it reads (``inputs``) and writes (``outputs``): ``check_outputs``
    refuses, before any work, an output that is one of the inputs (the same path, or the same file by
    another name or link)."""
    p.set_defaults(protected_io=(inputs, outputs))


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_outputs(args: argparse.Namespace) -> None:
    """InputError (exit 2) when an output argument names one of the command's inputs."""
    from imf.errors import InputError

    inputs, outputs = getattr(args, "protected_io", ((), ()))

    def paths(name: str) -> list[Path]:
        value = getattr(args, name, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        return [Path(v) for v in values if v is not None]

    for out_name in outputs:
        for out in paths(out_name):
            if out.is_dir():
                raise InputError(f"the output {out} is a folder: give a file name; nothing was done")
            for in_name in inputs:
                for src in paths(in_name):
                    if _same_file(out, src):
                        raise InputError(f"the output {out} is also an input ({in_name.replace('_', '-')} {src}): "
                                         f"write it somewhere else; nothing was done")


def add_json(p: argparse.ArgumentParser, what: str) -> None:
    """--json [FILE]: ``what`` as JSON, into FILE, or printed to stdout when FILE is left out."""
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help=f"{what} as JSON: written to FILE, or printed when FILE is left out")


def emit_json(target: str | None, data) -> bool:
    """Write ``data`` where --json asked (a file, written atomically, or stdout for "-"); False if not asked."""
    import json

    if target is None:
        return False
    text = json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return True
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True
