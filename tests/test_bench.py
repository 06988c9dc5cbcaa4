"""``imf bench``, ``benchmarks/speed.py`` and ``benchmarks/gpu.sh --dry-run`` run and write their fields.
Speeds are not asserted (they are noisy); equivalences and the attention-kernel check are."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imf.cli import main

ROOT = Path(__file__).resolve().parents[1]
STAGES = {"E_T", "E_F", "IMF_D", "IMF_A^1", "IMF_A^2", "IMF_A^3", "IMF_A^4", "D_F", "prepare_reference",
          "decode", "forward"}


@pytest.mark.slow  # times every stage of three presets
def test_imf_bench_quick_writes_every_field(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["bench", "--quick", "--presets", "tiny-64", "--train-presets", "tiny-64", "--threads", "1",
                 "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    m = r["machine"]
    for key in ("platform", "cpu_model", "cpu_cores", "torch_threads", "torch_version"):
        assert m[key], key
    assert m["torch_threads"] == 1
    assert 0 < r["matmul_peak"]["median_gflops"] <= r["matmul_peak"]["best_gflops"]
    assert r["peak_gflops"]["value"] == max(r["matmul_peak"]["best_gflops"], r["matmul_peak_at_end"]["best_gflops"])

    e = r["presets"]["tiny-64"]
    assert {s["stage"] for s in e["stages"]} == STAGES
    assert {s["batch"] for s in e["stages"]} == {1, 2}  # --quick caps the batches 1, 8 at 2
    for s in e["stages"]:
        assert s["median_ms"] > 0 and s["frames_per_s"] > 0
        assert s["gflop"] > 0 and 0 < s["fraction_of_peak"] < 10
    per_frame = {s["stage"]: s["gflop"] for s in e["stages"] if s["batch"] == 1}
    assert per_frame["forward"] > per_frame["decode"] > per_frame["D_F"]

    st = e["streaming"]
    assert st["frames"] == 2 and st["flop_ratio"] > 1
    assert st["outputs_match"] and st["max_abs_diff"] < 1e-4  # streaming decode == forward
    assert e["attention"]["math_fallback_calls"] == 0 and e["attention"]["fused_only"]
    ops = [o["op"] for o in e["profile_decode_batch1"]]
    assert ops and any("convolution" in op for op in ops)
    assert {f["fast_path"] for f in e["fast_paths"]} == {"channels_last", "modulation", "attention"}
    assert all(f["max_abs_diff"] < 1e-4 for f in e["fast_paths"])

    assert [mem["batch"] for mem in e["memory"]] == [1, 2]
    for mem in e["memory"]:
        assert mem["peak_mib"] >= mem["baseline_mib"] > mem["weights_mib"] > 0
    assert set(e["goals"]) == {"streaming_ratio", "attention_fused_only", "decode_fraction_of_peak",
                               "decode_peak_memory_mib_batch1"}
    from imf.precision import cpu_has_fast_bf16

    train = r["training"]
    assert [t["precision"] for t in train] == (["fp32", "bf16"] if cpu_has_fast_bf16() else ["fp32"])
    assert all(t["preset"] == "tiny-64" and t["batch"] == 2 and t["samples_per_s"] > 0 for t in train)

    table = capsys.readouterr().out
    assert "IMF_A^1" in table and "streaming" in table and "matmul peak" in table


@pytest.mark.parametrize("fast_bf16", [True, False])
def test_bench_times_training_in_bf16_only_where_the_cpu_has_fast_bf16(monkeypatch, fast_bf16):
    """Training samples/s in fp32, plus bf16 autocast where imf.precision detects fast bf16 (forced both ways
    here, so the test does not depend on this CPU): two rows timed in alternation, or one and the reason."""
    import imf.precision
    from imf.bench import BenchOptions, format_report, run_benchmark

    monkeypatch.setattr(imf.precision, "cpu_has_fast_bf16", lambda probe=True: fast_bf16)
    r = run_benchmark(BenchOptions(presets=(), train_presets=("tiny-64",), threads=1, quick=True))
    rows = r["training"]
    assert [t["precision"] for t in rows] == (["fp32", "bf16"] if fast_bf16 else ["fp32"])
    assert [t["requested_precision"] for t in rows] == [t["precision"] for t in rows]
    for t in rows:
        assert t["preset"] == "tiny-64" and t["batch"] == 2 and t["samples_per_s"] > 0
    if fast_bf16:
        assert rows[1]["speedup_vs_fp32"] == pytest.approx(rows[1]["samples_per_s"] / rows[0]["samples_per_s"])
        assert "training_bf16_skipped" not in r
    else:
        assert "fast bf16" in r["training_bf16_skipped"]
    table = format_report(r)
    assert table.count("training tiny-64") == len(rows)
    assert ("× fp32" in table) == fast_bf16 and ("bf16 not timed" in table) != fast_bf16


@pytest.mark.parametrize("args, needle", [(["--presets", "huge-512"], "huge-512"),
                                          (["--batches", "0"], "--batches"),
                                          (["--repeats", "0"], "--repeats")])
def test_bench_rejects_bad_options_in_one_line(args, needle, capsys):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_speed_script_shares_the_cli_options():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--help"],
                          capture_output=True, text=True, check=True)
    for option in ("--presets", "--threads", "--device", "--quick", "--json"):
        assert option in proc.stdout


def test_peer_script_wants_a_peer_checkout(tmp_path):
    """benchmarks/peer.py measures against a user's checkout of johndpope/IMF (never vendored): without one it
    stops at once with a one-line error and writes nothing."""
    out = tmp_path / "peer.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peer.py"), "--peer-src", str(tmp_path),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and not out.exists()
    err = proc.stderr.strip()
    assert "model.py" in err and "johndpope/IMF" in err and "\n" not in err and "Traceback" not in err


@pytest.mark.slow  # runs the whole GPU suite on CPU, torch.compile included
def test_gpu_script_dry_run(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["machine"]["device"] == "cpu" and r["options"]["preset"] == "tiny-64"
    rows = {(d["compiled"], d["batch"]): d for d in r["decode"]}
    assert set(rows) == {(False, 1), (False, 2), (True, 1), (True, 2)}
    for row in rows.values():
        assert "error" not in row, row
        assert row["frames_per_s"] > 0
    assert r["training"]["samples_per_s"] > 0 and r["skipped"] == []
    assert {"fp32", "bf16"} <= set(r["matmul_peak"])


def test_profiler_lines_do_not_leak_into_the_output(capfd):
    import torch

    from imf.bench.profile import top_ops

    from imf.bench.attention_check import sdpa_kernels

    rows = top_ops(lambda: torch.randn(32, 32) @ torch.randn(32, 32), rows=3)
    q = torch.randn(1, 1, 16, 8)
    kernels = sdpa_kernels(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    out, err = capfd.readouterr()
    assert len(rows) == 3 and kernels
    for chatter in ("STAGE:", "ActivityProfiler", "USDT:", "profiler_start"):
        assert chatter not in out + err, chatter
