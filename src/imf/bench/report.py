"""The benchmark's outputs: its JSON file (written atomically, so a partial run leaves a whole file) and
the readable table printed by ``imf bench``."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(result: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


def format_report(result: dict) -> str:
    """A readable summary: machine, peak, then per preset the stage table, streaming, memory and goals."""
    m, p = result["machine"], result["matmul_peak"]
    gpu = f" ({m['gpu_name']})" if "gpu_name" in m else ""
    lines = [f"machine: {m['cpu_model']} ({m['cpu_cores']} cores), {m['platform']}, torch {m['torch_version']}, "
             f"{m['torch_threads']} threads, device {m['device']}{gpu}",
             f"model precision {result.get('precision', 'fp32')}; "
             f"{p['dtype'].replace('float32', 'fp32').replace('bfloat16', 'bf16').replace('float16', 'fp16')} "
             f"matmul peak ({p['n']}×{p['n']}, {p['calls']} calls): median {p['median_gflops']:.1f} GFLOP/s, "
             f"best {p['best_gflops']:.1f}"
             + (f"; at the end: median {result['matmul_peak_at_end']['median_gflops']:.1f}, best "
                f"{result['matmul_peak_at_end']['best_gflops']:.1f}" if "matmul_peak_at_end" in result else "")
             + (f"; peak used: {result['peak_gflops']['value']:.1f}" if "peak_gflops" in result else "")]
    for preset, e in result["presets"].items():
        lines += ["", f"== {preset} ==",
                  f"{'stage':<18} {'scope':<33} {'B':>3} {'ms':>10} {'frames/s':>9} {'GFLOP':>9} {'GFLOP/s':>8} "
                  f"{'peak':>6}"]
        for s in e["stages"]:
            gf = ""
            if "gflop" in s:
                gf = f"{s['gflop']:9.2f} {s['gflops_per_s']:8.1f} {100 * s.get('fraction_of_peak', 0):5.1f}%"
            lines.append(f"{s['stage']:<18} {s['scope']:<33} {s['batch']:>3} {s['median_ms']:10.1f} "
                         f"{s['frames_per_s']:9.2f} {gf}")
        st = e["streaming"]
        lines.append(f"streaming ({st['frames']} frames): forward {st['forward_ms_per_frame']:.1f} ms/frame, decode "
                     f"{st['decode_ms_per_frame']:.1f} ms/frame (+ {st['prepare_reference_ms']:.1f} ms once): ratio "
                     f"{st['ratio']:.2f}× (FLOP ratio {st['flop_ratio']:.2f}, goal ≥ {st['goal_ratio']:.2f}); "
                     f"max |diff| {st['max_abs_diff']:.1e}")
        for f in e.get("fast_paths", []):
            ms = ", ".join(f"{k} {v:.1f}" for k, v in f["ms"].items())
            lines.append(f"fast path {f['fast_path']} ×{f['batch']}: {ms} ms; {f['fast']} vs {f['plain']} "
                         f"{f['speedup']:.2f}×, max |diff| {f['max_abs_diff']:.1e}")
        top = ", ".join(f"{o['op'].replace('aten::', '')} {100 * o['share']:.0f}%"
                        for o in e.get("profile_decode_batch1", [])[:6])
        if top:
            lines.append(f"decode ×1 profile (self time): {top}")
        a = e["attention"]
        lines.append(f"attention kernels: {a['sdpa_kernels']} (math fallbacks: {a['math_fallback_calls']})")
        for mem in e.get("memory", []):
            lines.append(f"decode ×{mem['batch']} peak memory {mem['peak_mib']:.0f} MiB (before "
                         f"{mem['baseline_mib']:.0f}, +{mem['growth_mib']:.0f}; weights {mem['weights_mib']:.0f}, "
                         f"reference state {mem['reference_state_mib']:.0f})")
        goal_txt = ", ".join(f"{k}: {'met' if g['met'] else 'NOT met'}" for k, g in e["goals"].items())
        lines.append(f"goals: {goal_txt}")
    for t in result["training"]:
        speedup = f", {t['speedup_vs_fp32']:.2f}× fp32" if "speedup_vs_fp32" in t else ""
        lines.append(f"training {t['preset']} ×{t['batch']} ({t['precision']}): {t['samples_per_s']:.2f} samples/s "
                     f"({t['median_ms']:.0f} ms/step{speedup})")
    if "training_bf16_skipped" in result:
        lines.append(f"training bf16 not timed: {result['training_bf16_skipped']}")
    return "\n".join(lines)
