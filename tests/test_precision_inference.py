"""Inference precision (imf.pipeline.resolve_precision): "auto" follows the CPU's fast-bf16 detection, bf16 runs on
any CPU and stays close to the fp32 reference, and the codec's symbols do not depend on the decoder's precision nor
the bitstream on the encoding machine's bf16. The shipped tiny-64 model on short synthetic clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from imf import precision
from imf.assets import shipped_model_path
from imf.checkpoint import load_model
from imf.cli import main
from imf.codec import decode_file, encode_frames, load_tables
from imf.codec import decoder as codec_decoder
from imf.data.video import VideoWriter, to_tensor
from imf.pipeline import PRECISION_CHOICES, Pipeline, resolve_precision

S = 64
# bf16 keeps 8 mantissa bits: on the shipped model its frames differ from fp32's by ~1e-3 on average (1/4 of a
# uint8 step) and ~1e-2 at most. The bounds leave room for other CPUs' kernels; 40 dB is far below what bf16 loses.
BF16_MAX_ABS = 5e-2
BF16_MIN_PSNR_DB = 40.0


def _fast(monkeypatch, value: bool) -> None:
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda probe=True: value)


def blob_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """A disc moving over a colour gradient: uint8 (S, S, 3) frames."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:S, :S]
    tint = rng.random(3) * 40
    background = np.stack([40 + 120 * xx / S + tint[0], 60 + 100 * yy / S + tint[1],
                           np.full((S, S), 90.0) + tint[2]], axis=-1)
    frames = []
    for i in range(n):
        cx, cy = 16 + i * 32 / n, 24 + 10 * np.sin(i / 4)
        frame = background.copy()
        frame[((xx - cx) ** 2 + (yy - cy) ** 2) < 120] = (230, 180, 90)
        frames.append(frame.astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def shipped():
    path = shipped_model_path()
    return load_model(path).eval(), load_tables(path), path


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


# ------------------------------------------------------------------------------------------ resolution
@pytest.mark.parametrize("fast, expected", [(False, "fp32"), (True, "bf16")])
def test_auto_follows_the_cpu_detection(monkeypatch, tiny_model, fast, expected):
    _fast(monkeypatch, fast)
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert Pipeline(tiny_model, device="cpu").precision == expected  # "auto" is the inference default
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"  # the reference, whatever the CPU
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"  # asked for: runs, fast or not
    assert resolve_precision("auto", torch.device("mps")) == "fp32"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_on_a_gpu_is_bf16_where_it_has_it():
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == expected


# ------------------------------------------------------------------------------------------ bf16 on CPU
def test_bf16_on_cpu_is_close_to_fp32(shipped):
    model = shipped[0]
    frames = blob_frames(6)
    fp32 = torch.stack(list(Pipeline(model, device="cpu", precision="fp32").reconstruct(frames, frames[0],
                                                                                         output="tensor")))
    pipe = Pipeline(model, device="cpu", precision="bf16")
    assert pipe.precision == "bf16"
    bf16 = torch.stack(list(pipe.reconstruct(frames, frames[0], output="tensor")))
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape == (6, 3, S, S)
    diff = (bf16 - fp32).abs()
    assert diff.max() > 0  # bf16 really ran (autocast engaged), not a silent fp32 fallback
    assert diff.max() < BF16_MAX_ABS and _psnr(bf16, fp32) > BF16_MIN_PSNR_DB
    truth = to_tensor(frames)  # (6, 3, S, S) in [0, 1]
    assert (fp32 - truth).abs().mean() > 5 * diff.mean()  # the precisions differ far less than the model errs
    tokens = pipe.encode_tokens(frames)
    ref_tokens = Pipeline(model, device="cpu", precision="fp32").encode_tokens(frames)
    torch.testing.assert_close(tokens, ref_tokens, atol=0.1, rtol=0.05)


def test_eval_reports_its_precision_and_stays_close(shipped, tmp_path):
    from imf.eval.reconstruct_eval import evaluate_reconstruction

    video = tmp_path / "clip.mp4"
    with VideoWriter(video, 25, S, S, crf=10, preset="veryfast") as w:
        for f in blob_frames(5):
            w.write(f)
    runs = {p: evaluate_reconstruction(shipped[0], [video], with_fid=False, metrics=("psnr", "l1"), precision=p,
                                       progress=False) for p in ("fp32", "bf16")}
    assert runs["fp32"].precision == "fp32" and runs["bf16"].to_dict()["precision"] == "bf16"
    assert runs["bf16"].mean["psnr"] == pytest.approx(runs["fp32"].mean["psnr"], abs=0.1)
    assert runs["bf16"].copy_mean == runs["fp32"].copy_mean  # the copy baseline has no model in it


# ------------------------------------------------------------------------------------------ codec
def test_decoder_precision_leaves_the_symbols_alone(shipped, tmp_path, monkeypatch):
    model, tables, _ = shipped
    frames = blob_frames(10)
    out = tmp_path / "clip.imf"
    closed_loop = {}
    encode_frames(model, frames, out, fps=25, tables=tables, quality=6, packet_frames=4, progress=False,
                  on_frame=lambda i, f: closed_loop.__setitem__(i, f))
    seen: dict[str, list[np.ndarray]] = {"fp32": [], "bf16": []}
    reconstruct = codec_decoder.reconstruct_frames
    decoded = {}
    for p in ("fp32", "bf16"):
        def spy(pipe, codec, symbols, reference, p=p):  # symbols (n, d): one packet
            assert pipe.precision == p
            seen[p].extend(np.array(symbols, copy=True))
            return reconstruct(pipe, codec, symbols, reference)
        monkeypatch.setattr(codec_decoder, "reconstruct_frames", spy)
        decoded[p] = np.stack(list(decode_file(out, model, tables=tables, precision=p)))
    assert len(seen["fp32"]) == 9  # one keyframe, then nine token frames
    for a, b in zip(seen["fp32"], seen["bf16"]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(decoded["fp32"], np.stack([closed_loop[i] for i in range(10)]))  # fp32: exact
    np.testing.assert_array_equal(decoded["bf16"][0], decoded["fp32"][0])  # the keyframe: no model involved
    diff = np.abs(decoded["bf16"].astype(int) - decoded["fp32"].astype(int))
    assert diff.max() > 0 and diff.max() <= round(255 * BF16_MAX_ABS) + 1


def test_the_bitstream_does_not_depend_on_the_cpus_bf16(shipped, tmp_path, monkeypatch):
    """The encoder's closed loop runs E_T in fp32 whatever "auto" would pick: same bytes with and without fast bf16."""
    model, tables, _ = shipped
    frames = blob_frames(6)
    files = {}
    for fast in (False, True):
        _fast(monkeypatch, fast)
        files[fast] = tmp_path / f"fast{fast}.imf"
        encode_frames(model, frames, files[fast], fps=25, tables=tables, quality=6, progress=False)
    assert files[False].read_bytes() == files[True].read_bytes()


def test_imf_decode_precision_flag(shipped, tmp_path):
    model, tables, path = shipped
    out = tmp_path / "clip.imf"
    encode_frames(model, blob_frames(4), out, fps=25, tables=tables, quality=6, progress=False)
    stats = tmp_path / "decode.json"
    assert main(["decode", str(out), "-o", str(tmp_path / "out.mp4"), "--ckpt", str(path), "--precision", "bf16",
                 "--quiet", "--json", str(stats)]) == 0
    data = json.loads(stats.read_text())
    assert data["precision"] == "bf16" and data["num_frames"] == 4


def test_precision_flag_reads_the_same_on_every_command():
    from test_cli_vocabulary import _option, _subparsers

    commands = _subparsers()
    flags = {name: _option(p, "--precision") for name, p in commands.items()}
    flags = {name: f for name, f in flags.items() if f is not None}
    assert {"reconstruct", "reenact", "decode", "eval", "bench"} <= set(flags)
    for name, f in flags.items():
        assert tuple(f.choices) == PRECISION_CHOICES, name
        assert f.help.startswith("compute precision: auto (bf16 where this CPU has fast bf16"), name
        assert f.help.endswith(f"default {f.default}"), name
    # inference defaults to auto; the measuring commands to the fp32 reference (numbers comparable across machines)
    assert {n: flags[n].default for n in ("reconstruct", "reenact", "decode", "eval", "bench")} == {
        "reconstruct": "auto", "reenact": "auto", "decode": "auto", "eval": "fp32", "bench": "fp32"}


def test_bench_measures_in_the_asked_precision():
    from imf.bench import BenchOptions, run_benchmark

    options = BenchOptions(presets=("tiny-64",), batches=(1,), threads=1, memory=False, train_presets=(),
                           compare=False, quick=True, precision="auto")
    result = run_benchmark(options)
    expected = resolve_precision("auto", torch.device("cpu"))  # bf16 only where this CPU has fast bf16
    assert result["precision"] == expected == result["presets"]["tiny-64"]["precision"]
    dtype = {"fp32": "float32", "bf16": "bfloat16"}[expected]
    assert result["matmul_peak"]["dtype"] == result["matmul_peak_at_end"]["dtype"] == dtype  # like with like
    streaming = result["presets"]["tiny-64"]["streaming"]
    assert streaming["outputs_match"], streaming["max_abs_diff"]
