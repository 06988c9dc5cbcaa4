"""Which parts of the CPU recipe make IMF learn motion, and which make it collapse? Short controlled runs on
the face corpus: every variant is the shipped recipe (``configs/corpus-tiny-64.yaml``) with one
change, trained for the same number of steps from the same seed on the same training split, then scored on
both held-out splits beside copy-the-reference and the mean training frame.

    python benchmarks/recipe.py run --corpus data/corpus64 --steps 300 --out benchmarks/results/recipe
    python benchmarks/recipe.py run ... --only base,one-clip     # some variants (the others are kept)
    python benchmarks/recipe.py table --out benchmarks/results/recipe

Protocol: each variant trains in-process (``imf.train.Trainer``, fp32 on this CPU) for ``--steps`` steps
with ``run.seed`` 0, the config's batch, no checkpoints but the last; its wall clock and steps/s are the
training loop's only (no start-up, no final export). Scores use ``imf.eval.generalisation.evaluate_splits``
on ``--frames-per-clip`` evenly spaced frames of every held-out clip (frame 0 is the reference, the same
frames for every variant), for the raw generator (what the recipe has learned by then) and its EMA
(what a run would ship); PSNR of the mean MSE, L1, and the output motion ratio (output change / input
change between scored frames). Results are written after every variant (``recipe.json``, ``recipe.md``,
``recipe.png``); a variant already measured with the same settings is not run again.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from pathlib import Path

import torch
import yaml

from imf.bench.machine import machine_info
from imf.eval.generalisation import corpus_clips, corpus_mean_frame, evaluate_splits

SPLITS = ("heldout_frames", "heldout_people")
BASE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "corpus-tiny-64.yaml"

# name -> (what it tests, overrides of the base config's sections; "data_clips": train on these clips only)
VARIANTS: dict[str, tuple[str, dict]] = {
    "base": ("the recipe of configs/corpus-tiny-64.yaml (tiny-64-corpus)", {}),
    "pos-init-0.02": ("P_q, P_k from N(0, 0.02^2), the usual transformer init (no identity-warp prior)",
                      {"model": {"pos_embed_init_std": 0.02}}),
    "one-clip": ("one training clip (the Pexels woman), no stills: the old shipped model's data",
                 {"data": {"stills": None, "stills_ratio": 0.0}, "data_clips": ["train/WolfgangLanger_Pexels_000.mp4"]}),
    "no-stills": ("the video clips only (2 people), no still-photo pseudo-pairs",
                  {"data": {"stills": None, "stills_ratio": 0.0}}),
    "l1-only": ("no perceptual loss (10·L1 only): the perceptual loss's cost per step and its effect",
                {"loss": {"perceptual": 0.0}}),
    "lr-5e-4": ("learning rate 5e-4 instead of 2e-4", {"optim": {"lr": 5.0e-4}}),
    "gan-from-0": ("the paper's hinge GAN (weight 1) from step 0", {"loss": {"gan": 1.0, "gan_start_step": 0}}),
    "stills-0.8": ("80% of every batch from still-photo pseudo-pairs instead of 50%", {"data": {"stills_ratio": 0.8}}),
    "lr-1e-4": ("learning rate 1e-4 instead of 2e-4", {"optim": {"lr": 1.0e-4}}),
    "bf16": ("bf16 autocast instead of fp32 (fast only on CPUs with AVX512-BF16 or AMX): does it cost quality?",
             {"run_precision": "bf16"}),
}


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in overrides.items():
        out.setdefault(section, {}).update(values)
    return out


def short_run(d: dict, corpus: Path, steps: int, clips: list[str] | None = None, precision: str = "fp32"):
    """(TrainConfig, training data paths) of a training YAML's dict, set up for a short controlled run on
    ``corpus``: ``steps`` steps, seed 0, fp32 (or ``precision``), one checkpoint at the end; the training split (or ``clips``,
    paths in the corpus) and the corpus's stills if the config uses stills."""
    from imf.train.config import TrainConfig

    d = copy.deepcopy(d)
    if d["data"].get("stills"):
        d["data"]["stills"] = [str(corpus / "stills")]
    d["run"].update(max_steps=steps, checkpoint_every=steps, keep_checkpoints=1, val_every=steps,
                    image_every=steps, log_every=max(1, steps // 10), seed=0, precision=precision)
    data = [str(corpus / c) for c in clips] if clips else [str(corpus / "train")]
    return TrainConfig.from_dict(d), data


def variant_config(name: str, corpus: Path, steps: int):
    """(TrainConfig, training data paths) of one variant."""
    overrides = dict(VARIANTS[name][1])
    clips = overrides.pop("data_clips", None)
    precision = overrides.pop("run_precision", "fp32")
    base = yaml.safe_load(BASE_CONFIG.read_text())
    return short_run(merge(base, overrides), corpus, steps, clips, precision)


def scores(model, clips, mean) -> dict:
    """{split: {"psnr", "l1", "motion_ratio", "baselines": {"copy"|"mean_frame": {"psnr", "l1"}}}}."""
    report = evaluate_splits(model, clips, mean_frame=mean)
    return {s: {"psnr": r["summary"]["model"]["psnr"], "l1": r["summary"]["model"]["l1"],
                "motion_ratio": r["summary"]["motion"]["ratio"],
                "baselines": {m: {k: r["summary"][m][k] for k in ("psnr", "l1")} for m in ("copy", "mean_frame")}}
            for s, r in report["splits"].items()}


def train(config, data: list[str], run_dir: Path, progress: bool = True, max_minutes: float | None = None):
    """A fresh in-process training run (``imf.train.Trainer`` on the CPU) in ``run_dir``, until run.max_steps or
    ``max_minutes``: (trainer, its figures: steps, loop seconds, steps/s, the 1-minute load average before and
    after, the last training loss; with ``max_minutes`` also what stopped it)."""
    from imf.train.trainer import Trainer

    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # a fresh run every time: the same seed, the same pairs
    load_before = os.getloadavg()[0]
    trainer = Trainer(config, data, run_dir, device="cpu", progress=progress)
    summary = trainer.fit(max_minutes=max_minutes)
    figures = {"steps": trainer.step, "train_seconds": summary["loop_seconds"],
               "steps_per_s": round(trainer.step / summary["loop_seconds"], 4),
               "loadavg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
               "final_train_loss": trainer.history[-1]["loss"] if trainer.history else None}
    if max_minutes is not None:
        figures["stopped_by"] = summary["stopped_by"]
    return trainer, figures


def run_variant(name: str, args, clips, mean) -> dict:
    config, data = variant_config(name, Path(args.corpus), args.steps)
    trainer, figures = train(config, data, Path(args.runs) / name, progress=not args.quiet)
    return {"name": name, "tests": VARIANTS[name][0], "overrides": VARIANTS[name][1], **figures,
            "raw": scores(trainer.generator, clips, mean), "ema": scores(trainer.ema.model, clips, mean)}


def pop_baselines(result: dict) -> dict:
    """The copy / mean-frame figures (the same for every variant: same frames, same mean) out of a result."""
    found = {}
    for kind in ("raw", "ema"):
        for split, s in result[kind].items():
            found[split] = s.pop("baselines")
    return found


def table_lines(data: dict) -> list[str]:
    b = data["baselines"]
    base = next((v for v in data["variants"] if v["name"] == "base"), None)
    lines = [f"Held-out PSNR (dB) after {data['settings']['steps']} steps, batch {data['settings']['batch_size']}, "
             f"seed 0; {data['settings']['frames_per_clip']} frames per clip. Baselines: held-out frames copy "
             f"{b['heldout_frames']['copy']['psnr']:.2f} / mean frame {b['heldout_frames']['mean_frame']['psnr']:.2f}; "
             f"held-out people copy {b['heldout_people']['copy']['psnr']:.2f} / mean frame "
             f"{b['heldout_people']['mean_frame']['psnr']:.2f}.", "",
             "| variant | what it tests | steps/s | frames raw | frames EMA | people raw | people EMA | "
             "people − copy (raw) | motion ratio people (raw) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v in data["variants"]:
        f, p = v["raw"]["heldout_frames"], v["raw"]["heldout_people"]
        delta = lambda s: "" if base is None or v is base else f" ({v['raw'][s]['psnr'] - base['raw'][s]['psnr']:+.2f})"  # noqa: E731
        lines.append(f"| {v['name']} | {v['tests']} | {v['steps_per_s']:.3f} | {f['psnr']:.2f}{delta('heldout_frames')} | "
                     f"{v['ema']['heldout_frames']['psnr']:.2f} | {p['psnr']:.2f}{delta('heldout_people')} | "
                     f"{v['ema']['heldout_people']['psnr']:.2f} | {p['psnr'] - b['heldout_people']['copy']['psnr']:+.2f} | "
                     f"{p['motion_ratio']:.3f} |")
    return lines


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    names = [v["name"] for v in data["variants"]]
    fig, axes = pyplot.subplots(1, len(SPLITS), figsize=(6 * len(SPLITS), 0.8 + 0.45 * len(names)), squeeze=False)
    for ax, split in zip(axes[0], SPLITS):
        y = range(len(names))
        ax.barh([i + 0.2 for i in y], [v["raw"][split]["psnr"] for v in data["variants"]], 0.4, label="raw generator")
        ax.barh([i - 0.2 for i in y], [v["ema"][split]["psnr"] for v in data["variants"]], 0.4, label="EMA")
        for m, color in (("copy", "tab:red"), ("mean_frame", "tab:green")):
            ax.axvline(data["baselines"][split][m]["psnr"], color=color, linestyle="--", label=m.replace("_", " "))
        ax.set_yticks(list(y), names)
        ax.invert_yaxis()
        lo = min(min(v["raw"][split]["psnr"], v["ema"][split]["psnr"]) for v in data["variants"])
        ax.set_xlim(min(lo, data["baselines"][split]["mean_frame"]["psnr"]) - 1, None)
        ax.set(title=split, xlabel="PSNR (dB)")
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"recipe variants after {data['settings']['steps']} steps (tiny-64, corpus)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def write_outputs(data: dict, out: Path) -> None:
    write_json(out / "recipe.json", data)
    (out / "recipe.md").write_text("# Recipe variants\n\n" + "\n".join(table_lines(data)) + "\n")
    plot(data, out / "recipe.png")


# ------------------------------------------------------------------------------------------ shared by ablation.py
def chosen(only: str | None, known) -> list[str]:
    """The variant names of ``--only`` (default: all of ``known``, in order); SystemExit naming unknown ones."""
    names = list(known) if not only else [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; known: {', '.join(known)}")
    return names


def load_results(path: Path, settings: dict) -> dict | None:
    """The results measured so far in ``path`` (None: none yet); SystemExit if measured with other settings."""
    data = json.loads(path.read_text()) if path.exists() else None
    if data is not None and data["settings"] != settings:
        raise SystemExit(f"{path} holds variants measured with other settings ({data['settings']}): give another --out")
    return data


def measured(data: dict, name: str, again: bool) -> bool:
    """Whether variant ``name`` is in ``data`` already and not to be run again (and says so)."""
    if any(v["name"] == name for v in data["variants"]) and not again:
        print(f"{name}: measured already (--again to rerun)")
        return True
    return False


def add_result(data: dict, result: dict, order: list[str]) -> None:
    """``result`` into data["variants"] (in place of an earlier run of its name), in ``order``; the machine."""
    data["variants"] = sorted([v for v in data["variants"] if v["name"] != result["name"]] + [result],
                              key=lambda v: order.index(v["name"]) if v["name"] in order else len(order))
    data["machine"] = machine_info(torch.device("cpu"))


def add_run_arguments(r: argparse.ArgumentParser, steps: int, runs: str) -> None:
    """The options of a ``run`` subcommand that trains variants on the corpus."""
    r.add_argument("--corpus", required=True, help="corpus folder of `imf data corpus --size 64` (manifest.json)")
    r.add_argument("--steps", type=int, default=steps, help="training steps per variant")
    r.add_argument("--frames-per-clip", type=int, default=48, help="evenly spaced held-out frames per clip")
    r.add_argument("--only", help="comma-separated variant names (default: all, in order)")
    r.add_argument("--again", action="store_true", help="rerun variants already measured")
    r.add_argument("--runs", default=runs, help="folder of the variants' run folders")
    r.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    r.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> None:
    out, corpus = Path(args.out), Path(args.corpus)
    names = chosen(args.only, VARIANTS)
    config, _ = variant_config("base", corpus, args.steps)
    settings = {"corpus": str(corpus.resolve()), "steps": args.steps, "batch_size": config.run.batch_size,
                "frames_per_clip": args.frames_per_clip, "base_config": BASE_CONFIG.name, "threads": args.threads}
    data = load_results(out / "recipe.json", settings)
    size = config.model.resolution
    clips = {s: corpus_clips(corpus, s, size, args.frames_per_clip) for s in SPLITS}
    mean = corpus_mean_frame(corpus, size)
    data = data or {"benchmark": "recipe_variants", "settings": settings, "protocol": __doc__.split("Protocol: ", 1)[1]
                    .split("\n\n", 1)[0], "baselines": None, "variants": []}
    for name in names:
        if measured(data, name, args.again):
            continue
        print(f"== {name}: {VARIANTS[name][0]}", flush=True)
        result = run_variant(name, args, clips, mean)
        found = pop_baselines(result)
        if data["baselines"] is None:
            data["baselines"] = found
        add_result(data, result, list(VARIANTS))
        write_outputs(data, out)
        print("\n".join(table_lines(data)[-len(data["variants"]):]), flush=True)


def table(args) -> None:
    data = json.loads((Path(args.out) / "recipe.json").read_text())
    write_outputs(data, Path(args.out))
    print("\n".join(table_lines(data)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score the variants")
    add_run_arguments(r, steps=300, runs="runs/recipe")
    t = sub.add_parser("table", help="rewrite recipe.md and recipe.png from recipe.json")
    for p in (r, t):
        p.add_argument("--out", default="benchmarks/results/recipe")
    args = ap.parse_args(argv)
    if args.command == "run":
        torch.set_num_threads(args.threads)
        run(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
