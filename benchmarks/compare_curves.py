"""Held-out learning curves of several training runs on one plot (the ``learning_curve.json`` files that
``benchmarks/learning.py curve`` writes), with the copy and mean-frame baselines, and a table by step ("-" where
a run has no checkpoint; the shift test's ``followed`` where it was measured).

    python benchmarks/compare_curves.py benchmarks/results/learning_corpus_v2 benchmarks/results/learning_corpus_pos1 \\
        --labels "v2 (P std 1.5)" "P std 1.0" --out benchmarks/results/recipe_curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SPLITS = ("heldout_frames", "heldout_people")


def load(folder: str) -> dict:
    return json.loads((Path(folder) / "learning_curve.json").read_text())


def table(curves: list[dict], labels: list[str]) -> list[str]:
    steps = sorted(set.union(*({p["step"] for p in c["curve"]} for c in curves)))
    head = "| step | " + " | ".join(f"{l}: frames / people (dB)" for l in labels) + " |"
    lines = [head, "|" + "---|" * (len(labels) + 1)]
    for step in steps:
        cells = []
        for c in curves:
            p = next((p for p in c["curve"] if p["step"] == step), None)
            if p is None:
                cells.append("-")
                continue
            cells.append(" / ".join(f"{p['splits'][s]['model']['psnr']:.2f}" for s in SPLITS)
                         + ("" if p.get("shift_followed") is None else f" (shift {p['shift_followed']:.2f})"))
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    base = curves[0]["baselines"]
    lines.append("| copy / mean frame | " + " | ".join(
        [" / ".join(f"{base[s]['copy']['psnr']:.2f}" for s in SPLITS) + " copy; "
         + " / ".join(f"{base[s]['mean_frame']['psnr']:.2f}" for s in SPLITS) + " mean"] + [""] * (len(curves) - 1))
                 + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="folders holding learning_curve.json")
    ap.add_argument("--labels", nargs="+", help="one label per folder (default: the run folder's name)")
    ap.add_argument("--out", required=True, help="PNG to write; the table goes to the same name with .md")
    args = ap.parse_args(argv)
    curves = [load(f) for f in args.folders]
    labels = args.labels or [Path(c["run"]).name for c in curves]
    if len(labels) != len(curves):
        raise SystemExit("give one --labels entry per folder")
    for c in curves[1:]:  # a corpus rebuilt on another machine differs by a few thousandths of a dB (x264)
        gap = max(abs(c["baselines"][s][m]["psnr"] - curves[0]["baselines"][s][m]["psnr"])
                  for s in SPLITS for m in ("copy", "mean_frame"))
        if gap > 0.05:
            raise SystemExit(f"the curves were scored on different frames (baselines differ by {gap:.3f} dB)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, split in zip(axes, SPLITS):
        for c, label in zip(curves, labels):
            ax.plot([p["step"] for p in c["curve"]], [p["splits"][split]["model"]["psnr"] for p in c["curve"]],
                    "o-", label=label)
        base = curves[0]["baselines"][split]
        ax.axhline(base["copy"]["psnr"], color="k", linestyle="--", label="copy the reference")
        ax.axhline(base["mean_frame"]["psnr"], color="gray", linestyle=":", label="mean training frame")
        ax.set(title=split, xlabel="training step", ylabel="PSNR (dB), EMA generator")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(args.out)
    fig.savefig(out, dpi=100)
    lines = table(curves, labels)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
