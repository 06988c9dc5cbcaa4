"""Does IMF learn motion on frames and people it never saw? Held-out figures on the face corpus,
each beside copy-the-reference and the mean training frame (protocol: ``imf.eval.generalisation``).

    # the learning curve of a training run: every checkpoint not yet measured (--watch: until killed)
    python benchmarks/learning.py curve --run runs/corpus-tiny-64 --corpus data/corpus64 \\
        --out benchmarks/results/learning_corpus [--watch] [--frames-per-clip 48]
    # the full held-out report of one model
    python benchmarks/learning.py report --model runs/corpus-tiny-64/model --corpus data/corpus64 \\
        --out benchmarks/results/learning_corpus [--identity-stride 4]

``curve``: the EMA generator of each checkpoint ``RUN/checkpoints/step_*.pt``, scored cheaply (PSNR and L1)
on ``--frames-per-clip`` evenly spaced frames of every clip of the splits heldout_frames and heldout_people
(frame 0 is the reference; the same frames every time), and the shift test's ``followed`` on held-out
people (see ``report``). The baselines are computed once and cached in
``learning_curve.json``; minutes are wall clock since the run started (the first tensorboard event file's
time) to the checkpoint's modification time, so they include any pause before a resume. The JSON and
``learning_curve.png`` are rewritten after every checkpoint. Checkpoints deleted or unreadable when their turn
comes are skipped (and tried again on the next round with --watch).

``report``: every frame of both held-out splits with PSNR, L1, LPIPS (AlexNet) and output motion; the shift test
(held-out people's references moved by known pixels: does the output move with them?); dlib
identity distances to the true frame on held-out people (every --identity-stride-th frame); the swap test
(one clip per person, every ordered pair of people, a person's frames decoded with another's reference);
the issue's goals, met or not. Writes ``learning_report.json`` and ``learning_frames.png`` (reference, true
frames and reconstructions of 3 clips per split, and one swap-test pair).

Both run on the CPU with --threads (default 1: they are meant to run beside a training run).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from imf.bench.machine import machine_info
from imf.data.video import to_uint8
from imf.errors import CheckpointError
from imf.eval.generalisation import (Clip, corpus_clips, corpus_mean_frame, evaluate_splits, evenly_spaced,
                                     shift_test, swap_test)
from imf.train.checkpointing import list_checkpoints, load_ema_generator

SPLITS = ("heldout_frames", "heldout_people")
METHODS = ("model", "copy", "mean_frame")
GOAL_PEOPLE_DB, GOAL_FRAMES_DB = 1.0, 2.0  # over copy (held-out people); over both baselines (held-out frames)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)  # a reader never sees half a file


def machine() -> dict:
    return machine_info(torch.device("cpu"))


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


# ------------------------------------------------------------------------------------------ curve
def run_start(run: Path) -> float | None:
    """Unix time the run started: the earliest tensorboard event file (``events.out.tfevents.<time>...``)."""
    times = []
    for f in (run / "tensorboard").glob("events.out.tfevents.*"):
        try:
            times.append(float(f.name.split(".")[3]))
        except (IndexError, ValueError):
            pass
    return min(times) if times else None


def checkpoint_step(path: Path) -> int | None:
    try:
        return int(path.stem.split("_", 1)[1])
    except (IndexError, ValueError):
        return None


def pixel_scores(model, clips: dict[str, list[Clip]], mean_frame) -> dict:
    """{split: {method: {"psnr", "l1"}}} pooled over each split's scored frames."""
    report = evaluate_splits(model, clips, mean_frame=mean_frame)
    return {split: {m: {"psnr": s["summary"][m]["psnr"], "l1": s["summary"][m]["l1"]}
                    for m in METHODS if m in s["summary"]} for split, s in report["splits"].items()}


def plot_curve(data: dict, path: Path) -> None:
    pyplot = plt()
    fig, axes = pyplot.subplots(1, len(SPLITS), figsize=(5.5 * len(SPLITS), 4), squeeze=False)
    steps = [p["step"] for p in data["curve"]]
    for ax, split in zip(axes[0], SPLITS):
        ax.plot(steps, [p["splits"][split]["model"]["psnr"] for p in data["curve"]], "o-", color="tab:red",
                label="IMF (EMA generator)")
        for method, color, label in (("copy", "tab:blue", "copy the reference"),
                                     ("mean_frame", "tab:green", "mean training frame")):
            ax.axhline(data["baselines"][split][method]["psnr"], color=color, linestyle="--", label=label)
        ax.set(title=split, xlabel="training step", ylabel="PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{Path(data['run']).name}: held-out PSNR, {data['settings']['frames_per_clip']} frames per clip")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def curve(args) -> None:
    run, out = Path(args.run), Path(args.out)
    path = out / "learning_curve.json"
    settings = {"run": str(run.resolve()), "corpus": str(Path(args.corpus).resolve()),
                "frames_per_clip": args.frames_per_clip, "mean_frame_max_frames": args.mean_frames,
                "splits": list(SPLITS)}
    data = json.loads(path.read_text()) if path.exists() else None
    if data is not None and data["settings"] != settings:
        raise SystemExit(f"{path} holds a curve measured with other settings ({data['settings']}): "
                         f"give another --out")
    data = data or {"benchmark": "learning_curve", "run": str(run), "settings": settings, "baselines": None,
                    "curve": []}
    data["protocol"] = __doc__.split("``curve``: ", 1)[1].split("\n\n", 1)[0]
    clips, size, skipped = {}, None, set()
    while True:
        done = {p["step"] for p in data["curve"]}
        for ckpt in list_checkpoints(run):
            if checkpoint_step(ckpt) in done:
                continue
            try:
                mtime = ckpt.stat().st_mtime
                model, step = load_ema_generator(ckpt)
            except (FileNotFoundError, CheckpointError) as e:  # deleted by keep-last-K, or not complete
                if ckpt.name not in skipped:
                    print(f"skipped {ckpt.name}: {e}", flush=True)
                skipped.add(ckpt.name)
                continue
            if step in done:
                continue
            if model.config.resolution != size:
                size = model.config.resolution
                clips = {s: corpus_clips(args.corpus, s, size, args.frames_per_clip) for s in SPLITS}
                data["clips"] = {s: [c.name for c in clips[s]] for s in SPLITS}
            first = data["baselines"] is None
            mean = corpus_mean_frame(args.corpus, size, args.mean_frames) if first else None
            scores = pixel_scores(model, clips, mean)
            followed = shift_test(model, clips["heldout_people"])["followed"] if clips["heldout_people"] else None
            if first:
                data["baselines"] = {s: {m: scores[s][m] for m in ("copy", "mean_frame")} for s in SPLITS}
            for s in SPLITS:
                scores[s].update(data["baselines"][s])
            start = run_start(run)
            minutes = round((mtime - start) / 60, 2) if start is not None else None
            data["curve"] = sorted([*data["curve"], {"step": step, "minutes": minutes, "checkpoint": ckpt.name,
                                                     "splits": scores, "shift_followed": followed}],
                                   key=lambda p: p["step"])
            data["machine"] = machine()
            write_json(path, data)
            plot_curve(data, out / "learning_curve.png")
            done.add(step)
            print(f"step {step} ({minutes} min): " + "; ".join(
                f"{s} {scores[s]['model']['psnr']:.2f} dB (copy {scores[s]['copy']['psnr']:.2f}, "
                f"mean {scores[s]['mean_frame']['psnr']:.2f})" for s in SPLITS)
                + ("" if followed is None else f"; shift test: output follows {followed:.2f} of the input's shift"),
                flush=True)
        if not args.watch:
            break
        time.sleep(args.interval)
    if not data["curve"]:
        print(f"no readable checkpoint in {run / 'checkpoints'}: nothing measured")


# ------------------------------------------------------------------------------------------ report
def by_person(clips: list[Clip], k: int) -> list[int]:
    """Indices of up to k clips, the longest clip of each person first, people taken in turn."""
    people: dict[str, list[int]] = {}
    for i in sorted(range(len(clips)), key=lambda i: -len(clips[i].frames)):
        people.setdefault(clips[i].person, []).append(i)
    turns = itertools.zip_longest(*people.values())
    return [i for i in itertools.chain.from_iterable(turns) if i is not None][:k]


def goals(report: dict) -> dict:
    """The issue's goals: held-out people ≥ copy + 1 dB and identity distance < 0.6 on most frames (a frame
    where dlib finds no face in the output or the truth counts as a failure); held-out frames of training
    people ≥ 2 dB over both baselines."""
    frames, people = report["splits"]["heldout_frames"]["summary"], report["splits"]["heldout_people"]["summary"]
    ident = people.get("identity", {}).get("model")
    share = None
    if ident and ident["frames"]:
        share = (ident["share_same"] or 0.0) * (ident["frames"] - ident["no_face"]) / ident["frames"]
    p_gain = people["gain_db"]["copy"]
    f_gain = min(frames["gain_db"]["copy"], frames["gain_db"]["mean_frame"])
    out = {"heldout_people": {"gain_over_copy_db": p_gain, "needed_db": GOAL_PEOPLE_DB,
                              "identity_share_under_0.6": share, "needed_share": "> 0.5",
                              "met": False if p_gain < GOAL_PEOPLE_DB else None if share is None else share > 0.5},
           "heldout_frames": {"gain_over_copy_db": frames["gain_db"]["copy"],
                              "gain_over_mean_frame_db": frames["gain_db"]["mean_frame"],
                              "needed_db": GOAL_FRAMES_DB, "met": bool(f_gain >= GOAL_FRAMES_DB)}}
    if share is None:
        out["heldout_people"]["note"] = "identity not measured (dlib unavailable)"
    met = [out[s]["met"] for s in SPLITS]
    out["all_met"] = False if False in met else None if None in met else True
    return out


def summary_lines(result: dict) -> list[str]:
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    lines = [f"{'split':16s}{'method':12s}{'PSNR dB':>9s}{'L1':>9s}{'LPIPS':>9s}"]
    for split in SPLITS:
        s = result["splits"][split]["summary"]
        for m in METHODS:
            r = s[m]
            lines.append(f"{split if m == 'model' else '':16s}{m:12s}{fmt(r['psnr'], '9.2f')}{fmt(r['l1'], '9.4f')}"
                         f"{fmt(r.get('lpips'), '9.4f')}")
        motion = s["motion"]
        lines.append(f"{'':16s}motion: output/input change {fmt(motion['ratio'], '.3f')}, "
                     f"correlation {fmt(motion['correlation'], '.3f')}")
        for m, ident in s.get("identity", {}).items():
            lines.append(f"{'':16s}identity {m}: share < 0.6 {fmt(ident['share_same'], '.3f')}, mean distance "
                         f"{fmt(ident['distance'], '.3f')}, no face {ident['no_face']}/{ident['frames']}")
    if result["swap_test"] is not None:
        s = result["swap_test"]["summary"]
        lines.append(f"swap test ({s['pairs']} pairs), dlib distance of the output to B's reference "
                     f"{fmt(s['to_reference']['distance'], '.3f')} (share < 0.6 "
                     f"{fmt(s['to_reference']['share_same'], '.2f')}), to A's frame "
                     f"{fmt(s['to_driving']['distance'], '.3f')}, A to B {fmt(s['between_people']['distance'], '.3f')}")
    if result.get("shift_test"):
        st = result["shift_test"]
        lines.append(f"shift test (held-out people's references moved {'/'.join(map(str, st['shifts']))} px): the "
                     f"output follows {st['followed']:.2f} of the input's shift (1 = all, 0 = a still copy); "
                     + ", ".join(f"{k} px: model {v['model_psnr']:.2f} / copy {v['copy_psnr']:.2f} dB"
                                 for k, v in st["per_shift"].items()))
    g = result["goals"]
    lines.append(f"goals: held-out people {g['heldout_people']['gain_over_copy_db']:+.2f} dB over copy (need "
                 f"+{GOAL_PEOPLE_DB}), identity share {fmt(g['heldout_people']['identity_share_under_0.6'], '.2f')}"
                 f" -> {g['heldout_people']['met']}; held-out frames {g['heldout_frames']['gain_over_copy_db']:+.2f}"
                 f" / {g['heldout_frames']['gain_over_mean_frame_db']:+.2f} dB over copy / mean (need "
                 f"+{GOAL_FRAMES_DB}) -> {g['heldout_frames']['met']}")
    return lines


@torch.inference_mode()
def decode(model, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """frames (B, 3, S, S) decoded with the reference (1, 3, S, S)."""
    return model.decode(model.encode_token(frames), model.prepare_reference(reference)).float().clamp(0, 1)


def plot_frames(model, clips: dict[str, list[Clip]], swap: tuple[Clip, Clip] | None, path: Path,
                columns: int = 6) -> None:
    """Rows of reference | `columns` true frames, and under them the reconstructions (3 clips per split),
    then A's true frames beside B's reference and A's frames decoded with B's reference."""
    rows, labels = [], []

    def add(clip: Clip, reference: Clip, label: str) -> None:
        index = torch.as_tensor(evenly_spaced(len(clip.frames) - 1, columns) + 1)  # frames 1..N-1
        x, ref = clip.frames[index], reference.frames[:1]
        blank = torch.ones_like(ref)
        rows.extend([torch.cat([ref, x]), torch.cat([blank, decode(model, x, ref)])])
        labels.extend([f"{label}: true", "reconstruction"])

    for split, split_clips in clips.items():
        for i in by_person(split_clips, 3):
            add(split_clips[i], split_clips[i], f"{split}/{Path(split_clips[i].name).stem}")
    if swap is not None:
        a, b = swap
        add(a, b, f"swap: {a.person} with {b.person}'s ref")
    s, gap = rows[0].shape[-1], 2
    width = max(len(r) for r in rows)
    grid = np.full((len(rows) * (s + gap), width * (s + gap), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(to_uint8(row)):
            grid[r * (s + gap):r * (s + gap) + s, c * (s + gap):c * (s + gap) + s] = tile
    pyplot = plt()
    fig, ax = pyplot.subplots(figsize=(2.5 + width * 1.1, 0.5 + len(rows) * 1.1))
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([r * (s + gap) + s / 2 for r in range(len(rows))], labels, fontsize=8)
    ax.set_xticks([c * (s + gap) + s / 2 for c in range(width)], ["reference"] + [f"t{c}" for c in range(1, width)],
                  fontsize=8)
    ax.tick_params(length=0)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(fig)


def identity_scorer():
    from imf.cache import FetchError
    from imf.editing.landmarks import DlibMissing
    from imf.eval.identity import IdentityScorer

    try:
        return IdentityScorer()
    except (DlibMissing, FetchError) as e:
        print(f"no identity distances: dlib's face descriptor is unavailable ({e})")
        return None


def report(args) -> None:
    import imf

    out = Path(args.out)
    model = imf.load_model(args.model)
    size = model.config.resolution
    clips = {s: corpus_clips(args.corpus, s, size, args.frames_per_clip) for s in SPLITS}
    mean = corpus_mean_frame(args.corpus, size, args.mean_frames)
    lpips = None
    if args.lpips != "none":
        from imf.eval.lpips import LPIPS

        lpips = LPIPS(args.lpips)
    identity = identity_scorer() if args.identity else None
    result = {"benchmark": "learning_report", "model": str(args.model), "corpus": str(Path(args.corpus).resolve()),
              "settings": {"frames_per_clip": args.frames_per_clip, "lpips": args.lpips,
                           "identity": identity is not None, "identity_stride": args.identity_stride,
                           "swap_frames_per_pair": args.swap_frames, "mean_frame_max_frames": args.mean_frames},
              "machine": machine()}
    result.update(evaluate_splits(model, clips, mean_frame=mean, lpips=lpips, identity=identity,
                                  identity_splits={"heldout_people"}, identity_stride=args.identity_stride))
    # swap test: the longest clip of each person of both held-out splits, every ordered pair of people
    pool = [c for s in SPLITS for c in clips[s]]
    swap_clips = [pool[i] for i in by_person(pool, len({c.person for c in pool}))]
    pairs = [(i, j) for i in range(len(swap_clips)) for j in range(len(swap_clips)) if i != j]
    result["swap_test"] = (swap_test(model, swap_clips, identity, pairs=pairs, frames_per_pair=args.swap_frames)
                           if identity is not None and pairs else None)
    result["shift_test"] = shift_test(model, clips["heldout_people"]) if clips["heldout_people"] else None
    result["goals"] = goals(result)
    result["table"] = lines = summary_lines(result)
    write_json(out / "learning_report.json", result)
    swap = (clips["heldout_people"][by_person(clips["heldout_people"], 1)[0]],
            clips["heldout_frames"][by_person(clips["heldout_frames"], 1)[0]]) if all(clips.values()) else None
    plot_frames(model, clips, swap, out / "learning_frames.png")
    print("\n".join(lines))
    print(f"wrote {out / 'learning_report.json'} and {out / 'learning_frames.png'}")


# ------------------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("curve", help="held-out PSNR/L1 of every checkpoint of a training run")
    c.add_argument("--run", required=True, help="training run folder (RUN/checkpoints/step_*.pt)")
    c.add_argument("--frames-per-clip", type=int, default=48, help="evenly spaced frames per clip, frame 0 first")
    c.add_argument("--watch", action="store_true", help="keep checking for new checkpoints until killed")
    c.add_argument("--interval", type=float, default=60.0, help="seconds between checks with --watch")
    r = sub.add_parser("report", help="the full held-out report of one model")
    r.add_argument("--model", required=True, help="model folder (save_pretrained), e.g. RUN/model")
    r.add_argument("--frames-per-clip", type=int, default=None, help="evenly spaced frames per clip (default: all)")
    r.add_argument("--identity-stride", type=int, default=4, help="dlib identity on every n-th scored frame")
    r.add_argument("--no-identity", dest="identity", action="store_false", help="skip dlib (and the swap test)")
    r.add_argument("--lpips", choices=("alex", "vgg", "none"), default="alex")
    r.add_argument("--swap-frames", type=int, default=16, help="frames per swap-test pair")
    for p in (c, r):
        p.add_argument("--corpus", required=True, help="corpus folder of `imf data corpus` (manifest.json)")
        p.add_argument("--out", default="benchmarks/results/learning_corpus")
        p.add_argument("--mean-frames", type=int, default=512, help="training frames averaged for the mean frame")
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    (curve if args.command == "curve" else report)(args)


if __name__ == "__main__":
    main()
