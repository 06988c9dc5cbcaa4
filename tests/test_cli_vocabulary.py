"""One CLI vocabulary: the shared options read the same on every command, --ckpt left out means the shipped
model, -o/--output names a command's one output file, and `imf --version` answers."""

from __future__ import annotations

import numpy as np
import pytest

from imf.cli import build_parser, main
from imf.cli.common import DEVICE_HELP
from imf.data.video import VideoWriter, probe


def _subparsers():
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    found = {}

    def walk(prefix, sub):
        for name, p in sub.choices.items():
            nested = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
            if nested:
                walk(f"{prefix}{name} ", nested[0])
            else:
                found[f"{prefix}{name}"] = p
    walk("", action)
    return found


def _option(p, flag):
    return next((a for a in p._actions if flag in a.option_strings), None)


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("imf ")


def test_shared_options_have_one_help_and_default():
    commands = _subparsers()
    for name, p in commands.items():
        device = _option(p, "--device")
        if device is not None:
            assert device.help == DEVICE_HELP and device.default is None, name
        quiet = _option(p, "--quiet")
        if quiet is not None:
            assert quiet.help == "no progress output", name
    long_jobs = ("train", "train-editor", "bench", "encode", "decode", "eval", "rd", "reconstruct", "reenact",
                 "data crop", "data corpus", "codec fit")
    assert all(_option(commands[c], "--quiet") is not None for c in long_jobs)


def test_single_file_outputs_are_dash_o_output():
    for name, p in _subparsers().items():
        o = _option(p, "-o")
        if o is not None:
            assert "--output" in o.option_strings, name


def test_ckpt_defaults_to_the_shipped_model_in_help():
    commands = _subparsers()
    for name in ("reconstruct", "reenact", "encode", "eval", "rd", "edit", "edit-eval"):
        ckpt = _option(commands[name], "--ckpt")
        assert not ckpt.required and "shipped model" in ckpt.help, name


def test_reconstruct_without_ckpt_uses_the_shipped_model(tmp_path, capsys):
    video = tmp_path / "in.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(video, 10, 64, 64) as w:
        for _ in range(3):
            w.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    out = tmp_path / "out.mp4"
    assert main(["reconstruct", str(video), "-o", str(out), "--quiet"]) == 0
    assert probe(out).num_frames == 3
    assert main(["reconstruct", str(video), "--out", str(tmp_path / "old.mp4"), "--quiet"]) == 0  # imf 0.1's name
