"""Peak memory of decoding: ``decode(t_c, ref)`` at a given batch, one reference shared by the batch.

CPU: torch's CPU allocator is invisible to tracemalloc, so the process's resident set is measured, in a
fresh subprocess per measurement (``python -m imf.bench.memory``) so earlier work leaves no high-water
mark behind. After building the model and preparing the reference, the kernel's peak-RSS counter
(VmHWM) is reset through ``/proc/self/clear_refs`` (Linux ≥ 4.0); the decode's peak is then read from
VmHWM. Where the reset is refused, ``ru_maxrss`` of the whole process is reported instead (an upper
bound: it includes the set-up) and the ``method`` field says so.
CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, in this process.

Reported in MiB: ``peak`` (the whole process during the decode: weights, reference state, allocator
caches and the decode's own tensors), ``baseline`` (resident before the decode) and ``growth`` = peak −
baseline (what the decode itself added).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

import torch

MIB = 2**20


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_in_process(preset: str, batch: int, device: torch.device, seed: int = 0, fast: bool = True) -> dict:
    """Build ``preset`` with random weights, prepare one reference, then measure one decode of ``batch``
    frames. Meant for a fresh process on CPU (see the module docstring); on CUDA any process will do."""
    import imf
    from imf.models.imf import ReferenceState

    torch.manual_seed(seed)
    config = imf.IMFConfig.preset(preset)
    model = imf.IMF(config).eval().requires_grad_(False).to(device)
    if fast:
        from imf.fast import optimize_for_inference

        optimize_for_inference(model)
    s = config.resolution
    with torch.inference_mode():
        ref: ReferenceState = model.prepare_reference(torch.rand(1, 3, s, s, device=device))
        tokens = torch.randn(batch, config.d_m, device=device)
        state_bytes = _tensor_bytes(ref.f_r + ref.m_r + [ref.t_r] + [t for kv in ref.keys_values for t in kv])
        weights = _tensor_bytes(list(model.parameters()) + list(model.buffers()))
        result = {"preset": preset, "batch": batch, "device": str(device), "fast": fast,
                  "weights_mib": weights / MIB, "reference_state_mib": state_bytes / MIB}
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            base = torch.cuda.memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
            model.decode(tokens, ref)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            result.update(method="torch.cuda.max_memory_allocated", baseline_mib=base / MIB, peak_mib=peak / MIB)
        else:
            base_kib = _status_kib("VmRSS")
            if base_kib is not None and _reset_peak_rss():
                model.decode(tokens, ref)
                peak_kib = _status_kib("VmHWM")
                method = "VmHWM after a reset through /proc/self/clear_refs"
            else:
                model.decode(tokens, ref)
                peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
                base_kib = base_kib or 0
                method = "ru_maxrss of the whole process (includes the set-up: an upper bound)"
            result.update(method=method, baseline_mib=base_kib / 1024, peak_mib=peak_kib / 1024)
    result["growth_mib"] = result["peak_mib"] - result["baseline_mib"]
    return result


def measure(preset: str, batch: int, device: torch.device, threads: int | None = None, fast: bool = True) -> dict:
    """Peak memory of one decode; on CPU in a fresh subprocess with the same thread count."""
    if device.type != "cpu":
        return measure_in_process(preset, batch, device, fast=fast)
    threads = threads or torch.get_num_threads()
    cmd = [sys.executable, "-m", "imf.bench.memory", "--preset", preset, "--batch", str(batch),
           "--threads", str(threads)] + ([] if fast else ["--plain"])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe {' '.join(cmd[2:])} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Peak memory of one IMF decode (run by imf.bench in a subprocess).")
    p.add_argument("--preset", required=True, help="model preset")
    p.add_argument("--batch", type=int, default=1, help="frames decoded at once")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--plain", action="store_true", help="without imf.fast.optimize_for_inference")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(measure_in_process(args.preset, args.batch, torch.device("cpu"), fast=not args.plain)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
