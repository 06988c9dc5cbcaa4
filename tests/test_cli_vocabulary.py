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
        as_json = _option(p, "--json")
        if as_json is not None:  # --json [FILE]: a file, or stdout when FILE is left out
            assert as_json.nargs == "?" and as_json.const == "-" and as_json.metavar == "FILE", name
    long_jobs = ("train", "train-editor", "bench", "encode", "decode", "eval", "rd", "reconstruct", "reenact",
                 "data crop", "data corpus", "data prepare", "codec fit")
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


def test_a_closed_stdout_is_not_a_traceback(monkeypatch, capsys):
    import sys

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["info", "--preset", "tiny-64"]) == 141


@pytest.mark.parametrize("argv, message", [
    (["decode", "a.imf", "-o", "b.mp4", "--crf", "99"], "0..51"),
    (["encode", "v.mp4", "-o", "v.imf", "--target-kbps", "0"], "--target-kbps"),
    (["encode", "v.mp4", "-o", "v.imf", "--target-kbps", "nan"], "--target-kbps"),
    (["data", "crop", "v.mp4", "--out", "d", "--size", "100000"], "16..4096"),
    (["codec", "fit", "--ckpt", "m", "--data", "v.mp4", "--batch-size", "0"], "positive integer"),
    (["rd", "v.mp4", "--out", "d", "--codecs", "foo"], "unknown codec"),
    (["encode", "v.mp4", "-o", "v.imf", "--packet-frames", "300"], "1..255"),
])
def test_numeric_flags_are_checked_at_parse_time(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_an_output_that_is_a_folder_is_refused(tmp_path, capsys):
    video = tmp_path / "in.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(video, 10, 64, 64) as w:
        for _ in range(2):
            w.write(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert main(["reconstruct", str(video), "-o", str(tmp_path), "--quiet"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_json_to_stdout_or_to_a_file(tmp_path, capsys):
    import json

    assert main(["info", "--preset", "tiny-64", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["resolution"] == 64
    assert main(["info", "--preset", "tiny-64", "--json", str(tmp_path / "i.json")]) == 0
    assert json.loads((tmp_path / "i.json").read_text())["config"]["resolution"] == 64
