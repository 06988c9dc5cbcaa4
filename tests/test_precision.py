"""CPU bf16 detection and the precision resolver (imf.precision), and a bf16 autocast training step on CPU."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from imf import precision
from imf.errors import ConfigError

from train_helpers import fast_config, moving_blob_clip


@pytest.fixture(autouse=True)
def _fresh_detection():
    precision.cpu_has_fast_bf16.cache_clear()
    yield
    precision.cpu_has_fast_bf16.cache_clear()


def _fast(monkeypatch, value: bool) -> None:
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda probe=True: value)


# ------------------------------------------------------------------------------------------ detection
def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\n"
                    "processor\t: 1\nflags\t\t: fpu\n")
    assert precision.cpu_flags(info) == {"fpu", "sse", "avx512f", "avx512_bf16", "amx_tile"}
    assert precision.cpu_flags(tmp_path / "missing") is None


def test_no_bf16_flag_means_slow_without_probing(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: pytest.fail("probed without a bf16 flag"))
    assert precision.cpu_has_fast_bf16() is False


@pytest.mark.parametrize("flags", [frozenset({"avx512_bf16"}), frozenset({"amx_bf16"}), None])
@pytest.mark.parametrize("speedup, fast", [(2.4, True), (0.3, False)])
def test_the_probe_confirms_a_flag_or_decides_without_cpuinfo(monkeypatch, flags, speedup, fast):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: speedup)
    assert precision.cpu_has_fast_bf16() is fast


def test_detection_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    monkeypatch.setattr(precision, "bf16_matmul_speedup", lambda: calls.append(1) or 2.0)
    assert precision.cpu_has_fast_bf16() and precision.cpu_has_fast_bf16()
    assert len(calls) == 1


def test_probe_is_quick_and_positive():
    import time

    t0 = time.perf_counter()
    speedup = precision.bf16_matmul_speedup()
    assert speedup > 0 and math.isfinite(speedup)
    assert time.perf_counter() - t0 < 5  # sub-second on an idle machine; generous on a shared one


# ------------------------------------------------------------------------------------------ resolver
@pytest.mark.parametrize("requested, fast, expected", [
    ("auto", True, torch.bfloat16), ("auto", False, None),
    ("bf16", True, torch.bfloat16), ("bf16", False, None),
    ("fp32", True, None), ("fp32", False, None),
    ("fp16", True, None), ("fp16", False, None),
])
def test_cpu_resolution(monkeypatch, caplog, requested, fast, expected):
    _fast(monkeypatch, fast)
    with caplog.at_level(logging.WARNING, logger="imf.precision"):
        assert precision.resolve_precision(requested, torch.device("cpu")) == expected
    warned = [r.getMessage() for r in caplog.records]
    # a warning exactly where an explicit request is not honoured
    should_warn = (requested == "bf16" and not fast) or requested == "fp16"
    assert bool(warned) == should_warn, warned
    if should_warn:
        assert "fp32" in warned[0] and requested in warned[0]


@pytest.mark.parametrize("bf16_ok", [True, False])
def test_cuda_resolution_is_unchanged(monkeypatch, bf16_ok):
    _fast(monkeypatch, False)  # the CPU's answer must not matter on a GPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    cuda = torch.device("cuda")
    assert precision.resolve_precision("auto", cuda) == (torch.bfloat16 if bf16_ok else torch.float16)
    assert precision.resolve_precision("bf16", cuda) == torch.bfloat16
    assert precision.resolve_precision("fp16", cuda) == torch.float16
    assert precision.resolve_precision("fp32", cuda) is None
    assert precision.resolve_precision("bf16", "mps") is None


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="fp8"):
        precision.resolve_precision("fp8", "cpu")


# ------------------------------------------------------------------------------------------ training
@pytest.fixture
def clip(tmp_path, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))  # the frame cache of the dataset
    path = tmp_path / "blob.mp4"
    moving_blob_clip(path, n=12)
    return path


@pytest.mark.slow  # bf16 autocast on a CPU without fast bf16 is ~30x slower
def test_bf16_training_step_on_cpu_is_finite_and_close_to_fp32(tmp_path, clip, monkeypatch):
    """Same seed, same batch: the bf16-autocast step's losses are finite and within 2 % of fp32's,
    and the weights it makes stay fp32."""
    from imf.train.trainer import Trainer

    _fast(monkeypatch, True)  # force the bf16 path whatever this CPU is (numerics, not speed, are tested)
    runs = {}
    for name in ("fp32", "bf16"):
        trainer = Trainer(fast_config(precision=name), [str(clip)], tmp_path / name, progress=False, device="cpu")
        assert trainer.amp_dtype == (torch.bfloat16 if name == "bf16" else None)
        torch.manual_seed(1)
        x_r, x_c = torch.rand(2, 4, 3, 64, 64)
        runs[name] = [trainer.train_step({"reference": x_r, "current": x_c}) for _ in range(2)]
        assert all(p.dtype == torch.float32 for p in trainer.generator.parameters())
        trainer.close()
    for step32, step16 in zip(runs["fp32"], runs["bf16"]):
        assert step16 is not None, "the bf16 step was skipped (non-finite loss)"
        for key in ("loss", "l1", "perceptual", "g_gan", "d_loss"):
            assert math.isfinite(step16[key]), key
        for key in ("loss", "l1", "perceptual"):
            assert step16[key] == pytest.approx(step32[key], rel=0.02), key
