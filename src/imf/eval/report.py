"""Markdown reports: the self-reconstruction table (shaped like the paper's Table 1) and the RD study.

Formatting conventions: ↓ lower is better, ↑ higher is better; "inf" is an infinite PSNR (identical
frames); "–" a value that was not computed (its reason is in the notes).
"""

from __future__ import annotations

import math
from pathlib import Path

from imf.eval.reconstruct_eval import EvalReport

# (key, header, digits) in the paper's Table 1 order (L1, SSIM, PSNR, FID, LPIPS) plus MS-SSIM and both LPIPS nets.
TABLE1_COLUMNS = (
    ("l1", "L1 ↓", 4), ("ssim", "SSIM ↑", 4), ("ms_ssim", "MS-SSIM ↑", 4), ("psnr", "PSNR (dB) ↑", 2),
    ("fid", "FID ↓", 2), ("lpips_vgg", "LPIPS VGG ↓", 4), ("lpips_alex", "LPIPS Alex ↓", 4),
)


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _scale_note(size: int) -> str:
    from imf.eval.metrics import ms_ssim_scales

    return (f"MS-SSIM uses {ms_ssim_scales(size, size)} scales at {size}×{size} (5 at 256×256): values at "
            f"different resolutions are not comparable.")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|",
            *["| " + " | ".join(r) + " |" for r in rows]]


def eval_markdown(report: EvalReport) -> str:
    """Markdown of an ``imf eval`` run: mean table (ours and the copy-reference floor), per-video table, notes."""
    cols = [c for c in TABLE1_COLUMNS if c[0] == "fid" or c[0] in report.mean]
    headers = ["Method", *[h for _, h, _ in cols]]

    def row(name: str, values: dict, fid) -> list[str]:
        return [name, *[fmt(fid if k == "fid" else values.get(k), d) for k, _, d in cols]]

    n_frames = sum(v.num_frames for v in report.videos)
    lines = [f"# Self-reconstruction ({len(report.videos)} video(s), {n_frames} frames, {report.resolution}×"
             f"{report.resolution})", "", f"Checkpoint: `{report.checkpoint}`", ""]
    lines += _table(headers, [row("IMF (ours)", report.mean, report.fid),
                              row("Copy the reference (floor)", report.copy_mean, report.copy_fid)])
    lines += ["", _scale_note(report.resolution)
              + (f" FID over {report.fid_frames} frames pooled from all videos." if report.fid is not None else ""),
              "", "## Per video", ""]
    vcols = [c for c in cols if c[0] != "fid"]
    rows = []
    for v in report.videos:
        rows.append([Path(v.video).name, str(v.num_frames), str(v.ref_frame), "IMF",
                     *[fmt(v.metrics.get(k), d) for k, _, d in vcols]])
        rows.append(["", "", "", "copy", *[fmt(v.copy_metrics.get(k), d) for k, _, d in vcols]])
    lines += _table(["Video", "Frames", "Ref", "Method", *[h for _, h, _ in vcols]], rows)
    if report.notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in report.notes]]
    lines += ["", "## Conventions", "", report.conventions, ""]
    return "\n".join(lines)


def _bd_rows(rows: list[dict]) -> list[list[str]]:
    """One table row per (anchor, metric), the cubic and pchip values side by side."""
    grouped: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        grouped.setdefault((r["anchor"], r["metric"]), {})[r["method"]] = r
    out = []
    for (anchor, metric), by in grouped.items():
        c, p = by.get("cubic", {}), by.get("pchip", {})
        note = next((x for r in (p, c) for x in (r.get("bd_rate_note"), r.get("bd_quality_note")) if x), "")
        out.append([anchor, "1 − " + metric if metric.startswith("lpips") else metric,
                    fmt(c.get("bd_rate_percent"), 2), fmt(p.get("bd_rate_percent"), 2),
                    fmt(c.get("bd_quality"), 4), fmt(p.get("bd_quality"), 4), note])
    return out


def rd_markdown(result) -> str:
    """Markdown of an ``imf rd`` run: settings, every point, BD-rate / BD-quality tables, notes."""
    lines = [f"# Rate–distortion: IMF against standard codecs ({result.resolution}×{result.resolution})", "",
             f"Checkpoint: `{result.checkpoint}`", "", "## Settings", "", result.settings, "",
             "Ours: rate = every bit of the .imf file (header, reference keyframe, tokens); 'tokens' = token "
             "packets only (the paper's count). Standard codecs: rate = payload (packets + parameter sets); "
             "'file' = mp4 size. Quality: mean over frames of per-frame metrics on RGB against the S×S source.",
             "", _scale_note(result.resolution), ""]
    qual_keys = [k for k in ("psnr", "ms_ssim", "ssim", "lpips_vgg", "lpips_alex", "vmaf") if k in result.metrics]
    for video in result.videos:
        lines += [f"## {Path(video).name}", ""]
        rows = []
        for codec in result.codecs:
            for p in result.curve(video, codec):
                alt = p.rates.get("kbps_tokens", p.rates.get("kbps_file"))
                rows.append([p.label, f"{p.param} {p.value}", fmt(p.bpp, 5), fmt(p.kbps, 3), fmt(alt, 3),
                             *[fmt(p.quality.get(k), 2 if k in ("psnr", "vmaf") else 4) for k in qual_keys]])
        lines += _table(["Codec", "Point", "bpp", "kbps", "kbps (ours: tokens / std: file)", *qual_keys], rows)
        lines.append("")
        bd_rows = _bd_rows([r for r in result.bd if r["video"] == video])
        if bd_rows:
            lines += ["BD of IMF (test) against each codec (anchor), cubic (VCEG-M33) / pchip fit: BD-rate < 0 "
                      "and BD-quality > 0 favour IMF; '–' where the curves do not overlap (see the note).", ""]
            lines += _table(["Anchor", "Quality", "BD-rate cubic (%)", "BD-rate pchip (%)", "BD-quality cubic",
                             "BD-quality pchip", "Note"], bd_rows)
            lines.append("")
    if result.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    return "\n".join(lines)
