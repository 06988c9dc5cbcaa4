"""Token manipulation commands (paper §3.4): ``imf edit``, ``imf train-editor``, ``imf edit-eval`` and
``imf conditions``. Each only parses arguments and calls ``imf.editing``."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from imf.cli.common import (add_batch_size, add_device, add_json, add_quiet, default_device, emit_json, number_in,
                            open_fraction, positive_int, protect_inputs)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated condition names, got {text!r}")
    return names


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ckpt", metavar="DIR", default=None,
                   help="IMF checkpoint folder (config.json + model.safetensors); default: the shipped model")
    p.add_argument("--editor", metavar="DIR", default=None,
                   help="editor folder (editor_config.json + editor.safetensors), e.g. RUN/editor of train-editor; "
                        "default: the shipped editor, which belongs to the shipped model (give --editor with --ckpt)")


def _paths(args) -> tuple[Path, Path]:
    """(IMF folder, editor folder) from --ckpt / --editor, the shipped pair where they are left out."""
    from imf.assets import shipped_editor_path, shipped_model_path
    from imf.errors import InputError

    if args.ckpt is not None and args.editor is None:
        raise InputError(f"--ckpt {args.ckpt}: give its editor with --editor DIR (the shipped editor was trained "
                         f"on the shipped model only; train one with `imf train-editor --ckpt {args.ckpt} ...`)")
    ckpt = Path(args.ckpt) if args.ckpt is not None else shipped_model_path()
    return ckpt, Path(args.editor) if args.editor is not None else shipped_editor_path()


def register(sub: argparse._SubParsersAction) -> None:
    # ---- imf edit
    e = sub.add_parser(
        "edit", help="edit a face's head pose / expression with a trained token editor",
        description="Edit a source face by changing its latent token with the editor ψ (paper §3.4) and decoding "
                    "it with the frozen IMF against the source frame. --set gives one edit (condition names left "
                    "out keep the source's measured values) and writes an image; --conditions gives one condition "
                    "per frame (a .csv with a header of names, or an .npy of the editor's width) and animates the "
                    "still face into a video.")
    _model_arguments(e)
    e.add_argument("--source", required=True, metavar="IMAGE", help="source face: an image (or a video's first frame)")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--set", metavar="NAME=V,...", help="requested values, e.g. yaw=15,pitch=-5,mouth=0.6")
    what.add_argument("--conditions", metavar="FILE", help="a condition track: .csv (header of names) or .npy (N, D)")
    e.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output: an image (.png/.jpg, one frame) or a video (.mp4/.mov/.mkv)")
    e.add_argument("--crop", action=argparse.BooleanOptionalAction, default=True,
                   help="cut the source around its face (default), or with --no-crop use its centre square")
    e.add_argument("--fps", type=number_in(0, 1000, low_open=True), default=25.0, help="frame rate of an output video (default 25)")
    add_batch_size(e)
    add_device(e)
    add_quiet(e)
    protect_inputs(e, ("source", "conditions"), ("output",))
    e.set_defaults(func=run_edit)

    # ---- imf train-editor
    t = sub.add_parser(
        "train-editor", help="train a token editor ψ on a frozen IMF checkpoint",
        description="Train the editor ψ (paper §3.4) with the IMF frozen: from a source frame's token and a target "
                    "frame's condition (head pose and expression measured with dlib's landmarks, cached per clip; "
                    "or your own per-frame conditions in <clip>.conditions.npy|csv), predict the target's token "
                    "(token loss) and frame (pixel + perceptual loss through the frozen decoder). Writes "
                    "checkpoints, editor_log.jsonl and the final RUN/editor.")
    t.add_argument("--ckpt", required=True, metavar="DIR", help="IMF checkpoint folder (kept frozen)")
    t.add_argument("--data", required=True, nargs="+", metavar="PATH",
                   help="video files, frame folders, folders of clips, or .txt lists of clips")
    t.add_argument("--out", required=True, metavar="RUN", help="run folder: checkpoints, log, final editor")
    t.add_argument("--config", metavar="FILE",
                   help="editor training YAML (a flat mapping of EditorTrainConfig fields; defaults otherwise)")
    t.add_argument("--conditions", type=_names, metavar="NAMES",
                   help="condition names, e.g. yaw,pitch,roll,eye,mouth (overrides the config)")
    t.add_argument("--condition-files", action="store_true",
                   help="read conditions from <clip>.conditions.npy|csv beside each clip instead of measuring them")
    t.add_argument("--max-steps", type=int, default=None, metavar="N", help="override max_steps")
    add_batch_size(t, None, "pairs per training step")
    t.add_argument("--resume", action="store_true", help="continue the run in RUN from its latest checkpoint")
    t.add_argument("--overwrite", action="store_true",
                   help="RUN already holds a run: remove its checkpoints, editor and log and start over")
    add_device(t)
    add_quiet(t)
    t.set_defaults(func=run_train_editor)

    # ---- imf edit-eval
    v = sub.add_parser(
        "edit-eval", help="evaluate a token editor on held-out frames: condition error and identity (JSON)",
        description="For each clip, edit its first frame towards the conditions of its held-out frames (the last "
                    "--val-fraction) and measure the edited faces again: condition error (pose in degrees, eye and "
                    "mouth ratios) against the request, beside the no-edit and IMF-reconstruction baselines; "
                    "identity as the dlib face-descriptor distance to the source; L1 / PSNR against the real frame.")
    _model_arguments(v)
    v.add_argument("clips", nargs="+", metavar="CLIP", help="videos or frame folders")
    add_json(v, "the report (printed to stdout without --json too)")
    v.add_argument("--val-fraction", type=open_fraction, default=0.2, help="held-out share of each clip (default 0.2)")
    v.add_argument("--max-frames", type=positive_int, metavar="N", help="use at most N held-out frames per clip")
    v.add_argument("--no-identity", action="store_true", help="skip the face-descriptor identity measure")
    add_batch_size(v)
    add_device(v)
    add_quiet(v)
    protect_inputs(v, ("clips",), ("json",))
    v.set_defaults(func=run_edit_eval)

    # ---- imf conditions
    c = sub.add_parser(
        "conditions", help="measure head pose and expression on every frame of a video into a condition CSV",
        description="Measure the built-in landmark conditions (yaw, pitch, roll in degrees; eye, mouth openness) "
                    "on every frame of a video's centre square and write them as a CSV track for "
                    "`imf edit --conditions` (frames without a face get empty cells). dlib runs on the CPU, so "
                    "there is no --device.")
    c.add_argument("video", metavar="VIDEO", help="video file or frame folder")
    c.add_argument("-o", "--output", required=True, metavar="FILE.csv", help="output CSV")
    c.add_argument("--names", type=_names, default=None, metavar="NAMES",
                   help="measures to write (default: yaw,pitch,roll,eye,mouth)")
    c.add_argument("--size", type=positive_int, default=256, help="side of the frames measured on (default 256)")
    add_quiet(c)
    protect_inputs(c, ("video",), ("output",))
    c.set_defaults(func=run_conditions)


# ------------------------------------------------------------------------------------------ handlers
def _load(args):
    """(IMF, ψ, ψ's metadata, device) from --ckpt, --editor and --device."""
    from imf.checkpoint import load_model
    from imf.checkpoint import load_editor, read_editor_meta

    ckpt, editor = _paths(args)
    device = default_device(args.device)
    model = load_model(ckpt, map_location=device)
    return model, load_editor(editor, device), read_editor_meta(editor), device


def _read_source(path: str):
    from imf.data.video import iter_frames
    from imf.errors import InputError

    frame = next(iter_frames(path, stop=1), None)
    if frame is None:
        raise InputError(f"{path}: no frame could be read")
    return frame


def run_edit(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from imf.data.video import IMAGE_EXTS, VideoWriter
    from imf.editing.conditions import check_track, parse_set, read_condition_file, reorder
    from imf.editing.pipeline import EditPipeline
    from imf.errors import InputError

    from imf.checkpoint import load_model
    from imf.checkpoint import load_editor, read_editor_meta

    out = Path(args.output)
    is_image = out.suffix.lower() in IMAGE_EXTS
    ckpt, editor_dir = _paths(args)
    device = default_device(args.device)
    editor, meta = load_editor(editor_dir, device), read_editor_meta(editor_dir)
    names = editor.config.condition_names
    if args.set is not None:  # parsed before the model is loaded, so a typo fails at once
        values = parse_set(args.set, names)
        requested = np.array([[values.get(n, np.nan) for n in names]])
    else:
        track = read_condition_file(args.conditions, names)
        check_track(track, names, args.conditions, allow_subset=True)
        requested = reorder(track, names)
    if is_image and len(requested) != 1:
        raise InputError(f"{out}: an image holds one frame but {args.conditions} has {len(requested)} rows; "
                         f"write a video (.mp4) instead")

    model = load_model(ckpt, map_location=device)
    pipe = EditPipeline(model, editor, device=device, editor_meta=meta, batch_size=args.batch_size)
    source = pipe.prepare(_read_source(args.source), crop=args.crop)
    conditions = pipe.complete(requested, source)
    frames = pipe.iter_edit(source, conditions, progress=not args.quiet)
    if is_image:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(next(frames)).save(out)
    else:
        size = model.config.resolution
        with VideoWriter(out, args.fps, size, size) as writer:
            for frame in frames:
                writer.write(frame)
    measured = {n: (None if not np.isfinite(v) else round(float(v), 4)) for n, v in zip(names, source.values)}
    print(json.dumps({"output": str(out), "frames": int(len(conditions)), "source_conditions": measured}))
    return 0


def run_train_editor(args: argparse.Namespace) -> int:
    from imf.errors import InputError
    from imf.train.editor import EditorTrainer
    from imf.train.editor_config import EditorTrainConfig
    from imf.train.run_folder import prepare_run_folder

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = EditorTrainConfig.from_yaml(args.config) if args.config else EditorTrainConfig()
    changes = {}
    if args.conditions:
        changes["conditions"] = args.conditions
    if args.condition_files:
        changes["condition_source"] = "file"
    if args.max_steps is not None:
        changes["max_steps"] = args.max_steps
    if args.batch_size is not None:
        changes["batch_size"] = args.batch_size
    if changes:
        config = config.replace(**changes)
    device = default_device(args.device)  # an absent device is refused before --overwrite removes anything
    missing = [p for p in args.data if not Path(p).exists()]
    if missing:  # before --overwrite removes anything
        raise InputError(f"--data {missing[0]}: no such file or folder")
    prepare_run_folder(args.out, resume=args.resume, overwrite=args.overwrite)
    trainer = EditorTrainer(config, args.ckpt, args.data, args.out, resume=args.resume,
                            device=device, progress=not args.quiet)
    print(json.dumps(trainer.fit(), indent=2))
    return 0


def run_edit_eval(args: argparse.Namespace) -> int:
    from imf.editing.evaluate import evaluate_editing

    model, editor, meta, device = _load(args)
    report = evaluate_editing(model, editor, args.clips, val_fraction=args.val_fraction, max_frames=args.max_frames,
                              batch_size=args.batch_size, identity=not args.no_identity, device=device,
                              editor_meta=meta, progress=not args.quiet)
    emit_json(args.json or "-", report)
    return 0


def run_conditions(args: argparse.Namespace) -> int:
    import numpy as np

    from imf.editing.clip_conditions import measure_clip
    from imf.editing.conditions import write_condition_csv
    from imf.editing.measures import LANDMARK_MEASURES, LandmarkConditions

    extractor = LandmarkConditions(args.names or LANDMARK_MEASURES)
    values = measure_clip(args.video, extractor, args.size, progress=not args.quiet)
    write_condition_csv(args.output, values, extractor.names)
    found = int(np.all(np.isfinite(values), axis=1).sum())
    print(json.dumps({"output": args.output, "frames": len(values), "frames_with_face": found}))
    return 0
