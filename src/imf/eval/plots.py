"""PNG plots of an RD study (matplotlib, Agg backend): one curve per codec, one figure per video.

- ``rd_<video>_lpips_bpp.png``: 1 − LPIPS against bits per pixel (the paper's Fig. 6), one panel per
  LPIPS backbone measured.
- ``rd_<video>_psnr_kbps.png``: RGB PSNR against kbit/s.
Rates on a log axis. Our codec: solid line = every bit of the file; dashed = token packets only (the
paper's count). Standard codecs: payload rate. A codec whose lowest rate stays above ours is not
extended: the figure's footnote says where each codec stops.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

STYLE = {"imf": ("tab:red", "o"), "x264": ("tab:blue", "s"), "x265": ("tab:green", "^"),
         "av1": ("tab:purple", "D"), "vvc": ("tab:orange", "v")}


def _curves(ax, result, video: str, rate_key: str, metric: str, transform) -> None:
    for codec in result.codecs:
        pts = [p for p in result.curve(video, codec) if metric in p.quality]
        if not pts:
            continue
        color, marker = STYLE.get(codec, ("tab:gray", "x"))
        x = [p.bpp if rate_key == "bpp" else p.kbps for p in pts]
        y = [transform(p.quality[metric]) for p in pts]
        ax.plot(x, y, color=color, marker=marker, label=pts[0].label)
        if codec == "imf":
            key = f"{rate_key}_tokens"
            xt = [p.rates[key] for p in pts if p.rates.get(key, 0) > 0]
            if len(xt) == len(pts):
                ax.plot(xt, y, color=color, marker=marker, linestyle="--", alpha=0.6, label="IMF (tokens only)")
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)


def _footnote(fig, result, video: str) -> None:
    name = Path(video).name
    lines = [n.split(": ", 1)[1] if n.startswith(name) else n for n in result.notes
             if n.startswith(name) and "lowest rate" in n]
    if lines:
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=6, va="bottom", wrap=True)
        fig.subplots_adjust(bottom=0.16 + 0.05 * len(lines))


def plot_rd(result, out_dir: str | Path) -> list[Path]:
    """Write the RD figures of every video in ``result`` (an ``RDResult``) into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for video in result.videos:
        stem = Path(video).stem
        nets = [m for m in ("lpips_vgg", "lpips_alex") if m in result.metrics]
        if nets:
            fig, axes = plt.subplots(1, len(nets), figsize=(5.5 * len(nets), 4.2), squeeze=False)
            for ax, metric in zip(axes[0], nets):
                _curves(ax, result, video, "bpp", metric, lambda v: 1.0 - v)
                ax.set_xlabel("bits per pixel")
                ax.set_ylabel(f"1 − LPIPS ({'VGG' if metric.endswith('vgg') else 'AlexNet'})")
            axes[0][0].legend(fontsize=7)
            fig.suptitle(f"{stem}: 1 − LPIPS vs bpp ({result.resolution}×{result.resolution})")
            _footnote(fig, result, video)
            path = out / f"rd_{stem}_lpips_bpp.png"
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
        if "psnr" in result.metrics:
            fig, ax = plt.subplots(figsize=(5.5, 4.2))
            _curves(ax, result, video, "kbps", "psnr", lambda v: v)
            ax.set_xlabel("kbit/s")
            ax.set_ylabel("RGB PSNR (dB)")
            ax.legend(fontsize=7)
            ax.set_title(f"{stem}: PSNR vs rate ({result.resolution}×{result.resolution})")
            _footnote(fig, result, video)
            path = out / f"rd_{stem}_psnr_kbps.png"
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written
