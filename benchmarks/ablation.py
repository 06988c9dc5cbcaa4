"""Explicit or implicit? The paper's study of §3.5 (Table 3) at tiny-64 on the face corpus: keypoint tokens
versus latent tokens, flow warping versus attention, trained alike and scored on frames and people never seen.

    python benchmarks/ablation.py run --corpus data/corpus64 --steps 2000 [--minutes 90] [--frames-per-clip 48]
    python benchmarks/ablation.py run ... --only keypoints-flow,implicit-attention   # some (the others are kept)
    python benchmarks/ablation.py table                                             # ablation.md from the JSON

Protocol: the variants are ``configs/ablation-{token}-{alignment}.yaml``: ``configs/corpus-tiny-64.yaml`` with
the model fields ``token_kind`` (implicit: the paper's latent token, d_m = 32; keypoints: 16 (x, y) keypoints,
the same 32 numbers, Gaussian heatmaps) and ``alignment_kind`` (attention: the paper's IMF_A; flow: a
predicted flow and occlusion mask, grid_sample warp). Each trains in-process with ``recipe.py``'s short run
(fp32, or bf16 autocast with ``--precision bf16``; seed 0, the config's batch, the corpus's training split and stills, the same pairs for every
variant) for ``--steps`` steps, or until ``--minutes`` of training loop if that comes first: the same data,
steps, batch, seed and time budget for all four. The EMA generator (what a run exports) is scored with
``imf.eval.generalisation.evaluate_splits`` on ``--frames-per-clip`` evenly spaced frames of every clip of
heldout_frames (new frames of the training people) and heldout_people (people never trained on), frame 0 of
each clip the reference: L1, PSNR of the mean MSE, SSIM and LPIPS (AlexNet, v0.1), beside copy-the-reference
and the mean training frame. Cost (``imf.info``): generator parameters; GFLOP per frame = E_T at the encoder
+ IMF_D, IMF_A and D_F at the decoder (the reference's cost, once per clip, apart). Token bits per frame at
one codec quality: tables (``imf.codec.fit_tables``) fitted on the tokens of ``--fit-frames-per-clip`` evenly
spaced training frames; the scored held-out frames' tokens range coded at ``--quality`` with the static
entropy model (the scored frames are not consecutive, so the temporal model would be unfair) in packets of up
to 255 frames: payload bits per frame, and the PSNR of the frames decoded from those quantized tokens.
Results are written after every variant (``ablation.json``, ``ablation.md``); a variant already measured
with the same settings is not run again (``--again`` reruns it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # recipe.py beside this file, however this one is loaded
from recipe import (SPLITS, add_result, add_run_arguments, chosen, load_results, measured, short_run,  # noqa: E402
                    train, write_json)

from imf.eval.generalisation import corpus_clips, corpus_mean_frame, evaluate_splits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("keypoints-flow", "keypoints-attention", "implicit-flow", "implicit-attention")
"""Table 3's order: explicit token + explicit alignment first, the paper's IMF (implicit + implicit) last."""
METRICS = ("l1", "psnr", "ssim", "lpips")
LOWER_IS_BETTER = {"l1": True, "psnr": False, "ssim": False, "lpips": True}
BASELINES = ("copy", "mean_frame")
BATCH = 32


def config_path(name: str) -> Path:
    return ROOT / "configs" / f"ablation-{name}.yaml"


def variant_config(name: str, corpus: Path, steps: int, precision: str = "fp32"):
    """(TrainConfig, training data paths) of one variant: its YAML, set up as recipe.py's short run
    (fp32, or ``precision``: "bf16" autocasts, fast only on CPUs with AVX512-BF16 or AMX)."""
    return short_run(yaml.safe_load(config_path(name).read_text()), corpus, steps, precision=precision)


def labels(model_config) -> tuple[str, str]:
    """Table 3's row names: (token, alignment)."""
    token = (f"explicit ({model_config.num_keypoints} keypoints)" if model_config.token_kind == "keypoints"
             else f"implicit (d_m = {model_config.d_m})")
    alignment = "explicit (flow)" if model_config.alignment_kind == "flow" else "implicit (attention)"
    return token, alignment


# ------------------------------------------------------------------------------------------ measurements
def scores_of(model, clips, mean, lpips) -> tuple[dict, dict]:
    """({split: {metric: value}} of the model, {split: {baseline: {metric: value}}})."""
    report = evaluate_splits(model, clips, mean_frame=mean, lpips=lpips, ssim=True)
    pick = lambda s: {k: s.get(k) for k in METRICS}  # noqa: E731
    scores = {split: pick(r["summary"]["model"]) for split, r in report["splits"].items()}
    baselines = {split: {b: pick(r["summary"][b]) for b in BASELINES if b in r["summary"]}
                 for split, r in report["splits"].items()}
    return scores, baselines


def cost(model) -> dict:
    from imf.info import model_summary

    s = model_summary(model)
    fl = s["flops"]
    parts = {k: v for k, v in s["parameters"].items() if k.split()[0] in ("E_T", "E_F", "IMF_D", "IMF_A", "D_F")}
    return {"parameters": s["parameters"]["generator total"], "parameters_per_part": parts,
            "gflop_per_frame": (fl["per_frame_encoder"] + fl["per_frame_decoder"]) / 1e9,
            "gflop_per_frame_encoder": fl["per_frame_encoder"] / 1e9,
            "gflop_per_frame_decoder": fl["per_frame_decoder"] / 1e9, "gflop_per_reference": fl["per_reference"] / 1e9}


@torch.inference_mode()
def tokens_of(model, frames: torch.Tensor) -> torch.Tensor:
    """frames (N, 3, S, S) → tokens (N, d_m) float32."""
    return torch.cat([model.encode_token(frames[i:i + BATCH]).float() for i in range(0, len(frames), BATCH)])


@torch.inference_mode()
def token_rate(model, train_clips, clips: dict, q: int) -> dict:
    """Token bits per frame and the PSNR decoded from the quantized tokens, per held-out split (see Protocol)."""
    from imf.codec import TokenCodec, fit_tables
    from imf.codec.packets import MAX_PACKET_FRAMES
    from imf.eval.metrics import psnr_of_mse

    tables = fit_tables([tokens_of(model, c.frames).numpy() for c in train_clips], qualities=(q,))
    codec = TokenCodec(tables, q, "static")
    out = {}
    for split, split_clips in clips.items():
        bits, squared, frames = 0, 0.0, 0
        for clip in split_clips:
            ref = model.prepare_reference(clip.frames[:1])
            x = clip.frames[1:]  # the scored frames
            t = tokens_of(model, x)
            for start in range(0, len(t), MAX_PACKET_FRAMES):
                payload, t_hat = codec.compress(t[start:start + MAX_PACKET_FRAMES])  # t_hat: the decoder's tokens
                bits += 8 * len(payload)
                y = torch.cat([model.decode(t_hat[i:i + BATCH], ref).float().clamp(0, 1)
                               for i in range(0, len(t_hat), BATCH)])
                squared += float((y - x[start:start + len(y)]).pow(2).flatten(1).mean(1).sum())
            frames += len(t)
        out[split] = {"bits_per_frame": bits / frames, "psnr": psnr_of_mse(squared / frames), "frames": frames}
    return {"quality": q, "entropy": "static", "token_dim": tables.dim, "fit_frames": tables.info["num_frames"],
            "splits": out}


def run_variant(name: str, args, clips, train_clips, mean, lpips) -> tuple[dict, dict]:
    config, data = variant_config(name, Path(args.corpus), args.steps, args.precision)
    trainer, figures = train(config, data, Path(args.runs) / name, progress=not args.quiet,
                             max_minutes=args.minutes)
    model = trainer.ema.model.eval()
    scores, baselines = scores_of(model, clips, mean, lpips)
    token, alignment = labels(config.model)
    result = {"name": name, "config": config_path(name).name, "token": token, "alignment": alignment,
              "model": {k: getattr(config.model, k) for k in ("token_kind", "alignment_kind", "d_m")}, **figures,
              "scores": scores, "cost": cost(model), "token_rate": token_rate(model, train_clips, clips, args.quality)}
    return result, baselines


# ------------------------------------------------------------------------------------------ report
def ordering(data: dict) -> list[str]:
    """Does the paper's ordering hold? Table 3: implicit token + implicit alignment best, explicit + explicit
    worst. Checked per split and metric on the variants measured so far (all four needed)."""
    by_name = {v["name"]: v for v in data["variants"]}
    if set(by_name) != set(VARIANTS):
        return [f"Ordering: {len(by_name)} of {len(VARIANTS)} variants measured; the verdict needs all four."]
    lines, counts = [], {"best": 0, "worst": 0, "all": 0}
    for split in SPLITS:
        verdicts = []
        for metric in METRICS:
            values = {n: by_name[n]["scores"][split][metric] for n in VARIANTS}
            if any(v is None for v in values.values()):
                continue
            ranked = sorted(VARIANTS, key=lambda n: values[n] if LOWER_IS_BETTER[metric] else -values[n])
            best, worst = ranked[0] == "implicit-attention", ranked[-1] == "keypoints-flow"
            counts["best"] += best
            counts["worst"] += worst
            counts["all"] += 1
            verdict = "holds" if best and worst else "partly holds" if best or worst else "does not hold"
            verdicts.append(f"{metric.upper()} {verdict} (best {ranked[0]}, worst {ranked[-1]})")
        lines.append(f"- {split}: " + "; ".join(verdicts) + ".")
    tally = (f"- In all: explicit + explicit is the worst on {counts['worst']} of {counts['all']} held-out metrics, "
             f"implicit + implicit the best on {counts['best']} of {counts['all']}.")
    budget = []
    if "settings" in data and all("train_seconds" in v for v in data["variants"]):
        seconds = [v["train_seconds"] for v in data["variants"]]
        budget = [f"- Budget: the same {data['settings']['steps']} steps for every variant"
                  + (f" (or {data['settings']['minutes']} min)" if data["settings"].get("minutes") else
                     ", no time cap") + f"; their training took {min(seconds) / 60:.1f}-{max(seconds) / 60:.1f} min "
                  "(the variants differ in cost per step, and the machine's load varied)."]
    return (["Does the paper's ordering hold (implicit + implicit best, explicit + explicit worst)?", ""] + lines
            + [tally, *budget])


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table_lines(data: dict) -> list[str]:
    st = data["settings"]
    arrow = {m: "↓" if lower else "↑" for m, lower in LOWER_IS_BETTER.items()}
    head = ("| token | alignment | " + " | ".join(f"{s.split('_')[1]} {m.upper()} {arrow[m]}" for s in SPLITS
                                              for m in METRICS)
            + " | params (M) | GFLOP / frame | token bits / frame |")
    lines = [f"Trained {st['steps']} steps" + (f" (or {st['minutes']} min)" if st["minutes"] else "")
             + f", batch {data.get('batch_size', '?')}, seed 0, {st.get('precision', 'fp32')} on the CPU; EMA generator; "
             f"{st['frames_per_clip']} evenly spaced frames per held-out clip (frame 0 the reference). Token bits: "
             f"static entropy model at quality {st['quality']}, held-out people.", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for v in data["variants"]:
        cells = [fmt(v["scores"][s][m], ".4f" if m != "psnr" else ".2f") for s in SPLITS for m in METRICS]
        rate = v["token_rate"]["splits"]["heldout_people"]["bits_per_frame"]
        lines.append(f"| {v['token']} | {v['alignment']} | " + " | ".join(cells)
                     + f" | {v['cost']['parameters'] / 1e6:.2f} | {v['cost']['gflop_per_frame']:.3f} | {rate:.1f} |")
    for b in BASELINES:
        if data["baselines"] and all(b in data["baselines"][s] for s in SPLITS):
            cells = [fmt(data["baselines"][s][b][m], ".4f" if m != "psnr" else ".2f") for s in SPLITS for m in METRICS]
            lines.append(f"| baseline: {b.replace('_', ' ')} | - | " + " | ".join(cells) + " | - | - | - |")
    lines += ["", "| variant | steps | train min | steps/s | bits / frame (frames, people) | "
              "codec PSNR (frames, people) | GFLOP encoder / decoder / reference |", "|---|---|---|---|---|---|---|"]
    for v in data["variants"]:
        r, c = v["token_rate"]["splits"], v["cost"]
        lines.append(f"| {v['name']} | {v['steps']} | {v['train_seconds'] / 60:.1f} | {v['steps_per_s']:.3f} | "
                     f"{r['heldout_frames']['bits_per_frame']:.1f}, {r['heldout_people']['bits_per_frame']:.1f} | "
                     f"{r['heldout_frames']['psnr']:.2f}, {r['heldout_people']['psnr']:.2f} | "
                     f"{c['gflop_per_frame_encoder']:.3f} / {c['gflop_per_frame_decoder']:.3f} / "
                     f"{c['gflop_per_reference']:.3f} |")
    limits = data.get("limits")
    return lines + ["", *ordering(data), *(["", f"Limits of the data: {limits}"] if limits else [])]


def write_outputs(data: dict, out: Path) -> None:
    write_json(out / "ablation.json", data)
    (out / "ablation.md").write_text("# Explicit or implicit (paper §3.5, Table 3) at tiny-64\n\n"
                                     + "\n".join(table_lines(data)) + "\n")


def limits(corpus: Path, clips: dict, train_clips) -> str:
    from imf.data.corpus import read_manifest

    manifest = read_manifest(corpus)
    people = {s: sorted({c.person for c in clips[s]}) for s in SPLITS}
    return (f"{len({c.person for c in train_clips})} training people on video "
            f"({sum(e['frames'] for e in manifest['clips'] if e['split'] == 'train')} frames) plus "
            f"{len(manifest.get('stills', []))} still photos; "
            f"held-out frames of {', '.join(people['heldout_frames'])}; "
            f"held-out people {', '.join(people['heldout_people'])} ({len(clips['heldout_people'])} clips); "
            f"{sum(len(c.frames) - 1 for s in SPLITS for c in clips[s])} scored frames in all; one seed, so "
            f"differences of a few hundredths of a dB are within run-to-run noise.")


def run(args) -> None:
    out, corpus = Path(args.out), Path(args.corpus)
    names = chosen(args.only, VARIANTS)
    config, _ = variant_config(VARIANTS[-1], corpus, args.steps)
    settings = {"corpus": str(corpus.resolve()), "steps": args.steps, "minutes": args.minutes,
                "frames_per_clip": args.frames_per_clip, "fit_frames_per_clip": args.fit_frames_per_clip,
                "quality": args.quality, "lpips": args.lpips, "threads": args.threads,
                "precision": args.precision}
    data = load_results(out / "ablation.json", settings)
    size = config.model.resolution
    clips = {s: corpus_clips(corpus, s, size, args.frames_per_clip) for s in SPLITS}
    train_clips = corpus_clips(corpus, "train", size, args.fit_frames_per_clip)
    mean = corpus_mean_frame(corpus, size)
    lpips = None
    if args.lpips != "none":
        from imf.eval.lpips import LPIPS

        lpips = LPIPS(args.lpips)
    data = data or {"benchmark": "ablation_explicit_implicit", "settings": settings,
                    "protocol": __doc__.split("Protocol: ", 1)[1].split("\n\n", 1)[0],
                    "batch_size": config.run.batch_size, "limits": limits(corpus, clips, train_clips),
                    "baselines": None, "variants": []}
    for name in names:
        if measured(data, name, args.again):
            continue
        print(f"== {name}: {config_path(name).name}", flush=True)
        result, baselines = run_variant(name, args, clips, train_clips, mean, lpips)
        data["baselines"] = data["baselines"] or baselines
        add_result(data, result, list(VARIANTS))
        write_outputs(data, out)
        print("\n".join(table_lines(data)), flush=True)


def table(args) -> None:
    data = json.loads((Path(args.out) / "ablation.json").read_text())
    write_outputs(data, Path(args.out))
    print("\n".join(table_lines(data)))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train and score the four variants")
    add_run_arguments(r, steps=2000, runs="runs/ablation")
    r.add_argument("--minutes", type=float, default=None, help="also stop each variant after this many minutes")
    r.add_argument("--fit-frames-per-clip", type=int, default=256,
                   help="evenly spaced training frames per clip for the codec tables")
    r.add_argument("--quality", type=int, default=6, help="codec quality of the token bits")
    r.add_argument("--lpips", choices=("alex", "vgg", "none"), default="alex")
    r.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="training precision of every variant (default fp32; bf16 autocast is ~2x faster on a CPU "
                        "with AVX512-BF16 or AMX: benchmarks/results/recipe_precision)")
    t = sub.add_parser("table", help="rewrite ablation.md from ablation.json")
    for p in (r, t):
        p.add_argument("--out", default="benchmarks/results", help="folder of ablation.json and ablation.md")
    args = ap.parse_args(argv)
    if args.command == "run":
        if args.steps < 1 or args.frames_per_clip < 2 or args.fit_frames_per_clip < 2:
            raise SystemExit("--steps must be >= 1 and --frames-per-clip, --fit-frames-per-clip >= 2")
        torch.set_num_threads(args.threads)
        run(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
