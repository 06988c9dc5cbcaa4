"""The ``imf`` command. Each subcommand lives in its own module of this package and only parses
arguments and calls the library; user mistakes exit with status 2 and one line naming the problem."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define ``register(subparsers)``; each adds its subcommands with ``set_defaults(func=...)``.
_COMMAND_MODULES = [
    "imf.cli.info",
    "imf.cli.data",
    "imf.cli.train",
    "imf.cli.infer",
    "imf.cli.codec",
    "imf.cli.evaluate",
    "imf.cli.bench",
    "imf.cli.edit",
    "imf.cli.demo",
    "imf.cli.call",
    "imf.cli.serve",
]


class UsageError(Exception):
    """A user mistake (bad path, bad value, wrong file): reported in one line, exit status 2."""


def _version() -> str:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("imf")
    except PackageNotFoundError:  # run from a source tree that is not installed
        ours = "unknown"
    try:
        torch = version("torch")
    except PackageNotFoundError:
        torch = "missing"
    return f"imf {ours} (torch {torch}, Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imf",
        description="IMF (Implicit Motion Function): talking-head generation and ultra-low-bitrate video coding.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a command group not built yet
            if e.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from imf.cli.common import check_outputs, resolve_ckpt
    from imf.errors import user_errors

    try:
        resolve_ckpt(args)
        check_outputs(args)
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return status
    except user_errors() as e:
        print(f"imf {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`imf info | head`): not an error of ours
        import os

        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
