#!/usr/bin/env bash
# The GPU training run: train small-128 (or paper-256) on the split-by-person face corpus on one GPU with AMP
# for a time budget, then write the held-out report (benchmarks/learning.py report) beside the run's figures.
#
# Usage (from anywhere; runs against this checkout's src/):
#   benchmarks/gpu_train.sh [--preset small-128|paper-256] [--minutes M] [--corpus DIR] [--out DIR] [--run DIR]
#                           [--batch N] [--resume]
#   benchmarks/gpu_train.sh --dry-run [--out DIR] [--run DIR] [--corpus DIR]
#       tiny-64 on the CPU for 3 steps on a tiny corpus cut from the sample clips: checks the script end to end
#   benchmarks/gpu_train.sh --config-only [--preset P] [--batch N] [--corpus DIR] [--out DIR]
#       only write OUT/config.yaml (no GPU needed, nothing built): to read what a run would train with
# Defaults: --preset small-128, --minutes 8 (training loop only: loading data and the report come on top),
#   --corpus data/corpus<S> (built with `imf data corpus --size S` if missing; the dry run: OUT/corpus, 48 frames
#   of the Pexels clip, 24 of carphone, one still), --out benchmarks/results/gpu_train (dry run: .../gpu_train_dryrun),
#   --run runs/gpu_train-<preset> (checkpoints, TensorBoard and the exported EMA model RUN/model, fp32: about
#   165 MB for small-128, so not under results/), --batch 32 (small-128) or 16 (paper-256).
#   The config is configs/corpus-small-128.yaml (paper-256: the same with the preset, size 256 and the batch).
# Writes into OUT: config.yaml (the exact training config), train.log, train_summary.json, report/ (the
#   report's learning_report.json and learning_frames.png) and gpu_train.json (what ran, for how long, where).
# Environment: PYTHON (default: .venv/bin/python if present, else python3); IMF_CACHE (backbone weights and
#   sample clips; a machine without network needs it carried); REPORT_ARGS (extra report arguments; default
#   "--threads <cores>", dry run "--frames-per-clip 4 --swap-frames 2 --mean-frames 8").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dry_run=0 config_only=0 resume=0 preset=small-128 minutes=8 corpus="" out="" run="" batch=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --resume) resume=1 ;;
    --config-only) config_only=1 ;;
    --preset) preset="${2:?--preset needs small-128 or paper-256}"; shift ;;
    --minutes) minutes="${2:?--minutes needs a number}"; shift ;;
    --corpus) corpus="${2:?--corpus needs a folder}"; shift ;;
    --out) out="${2:?--out needs a folder}"; shift ;;
    --run) run="${2:?--run needs a folder}"; shift ;;
    --batch) batch="${2:?--batch needs a number}"; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu_train.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
say() { echo "gpu_train.sh: $*" >&2; }

base="$root/configs/corpus-small-128.yaml"
if [ "$dry_run" = 1 ]; then
  preset=tiny-64 size=64 device=cpu batch="${batch:-4}" base="$root/configs/corpus-tiny-64.yaml"
  out="${out:-$root/benchmarks/results/gpu_train_dryrun}"
  run="${run:-$root/runs/gpu_train-dryrun}"
  train_limit=(--max-steps 3 --num-workers 0)
  report_args="${REPORT_ARGS---frames-per-clip 4 --swap-frames 2 --mean-frames 8}"
else
  case "$preset" in
    small-128) size=128 batch="${batch:-32}" ;;
    paper-256) size=256 batch="${batch:-16}" ;;
    *) say "--preset must be small-128 or paper-256, got $preset"; exit 2 ;;
  esac
  device=cuda
  out="${out:-$root/benchmarks/results/gpu_train}"
  run="${run:-$root/runs/gpu_train-$preset}"
  train_limit=()
  report_args="${REPORT_ARGS---threads $(nproc 2>/dev/null || echo 1)}"
  if [ "$config_only" = 0 ]; then
    "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else
      "gpu_train.sh: no CUDA device visible to torch (--dry-run checks the script on the CPU)")'
  fi
fi
mkdir -p "$out"

# 1. the corpus: built if missing or incomplete (the dry run's is cut from the sample clips, in seconds)
complete() { [ -f "$1/manifest.json" ] && "$PYTHON" -c 'import json, sys; m = json.load(open(sys.argv[1]))
sys.exit(0 if m.get("complete") and m["settings"]["size"] == int(sys.argv[2]) else 1)' "$1/manifest.json" "$2"; }
if [ -z "$corpus" ] && [ "$dry_run" = 1 ]; then
  corpus="$out/corpus"
  if [ "$config_only" = 0 ] && ! complete "$corpus" "$size"; then
    say "cutting a tiny corpus into $corpus"
    "$PYTHON" - "$corpus" "$size" <<'EOF'
import sys
from pathlib import Path

from PIL import Image

from imf.data.corpus import CorpusClip, CorpusStill, build_corpus
from imf.data.samples import sample_path
from imf.data.video import VideoWriter, iter_frames, probe

out, size = Path(sys.argv[1]), int(sys.argv[2])
src = out.parent / "corpus_sources"
src.mkdir(parents=True, exist_ok=True)


def cut(name: str, n: int) -> Path:
    path, target = sample_path(name), src / f"{Path(name).stem}_{n}.mp4"
    info = probe(path)
    with VideoWriter(target, info.fps, info.width, info.height) as writer:
        for frame in iter_frames(path, stop=n):
            writer.write(frame)
    return target


pexels, carphone = cut("WolfgangLanger_Pexels.mp4", 48), cut("carphone_pristine.mp4", 24)
still = src / "pexels_frame_100.png"
Image.fromarray(next(iter_frames(sample_path("WolfgangLanger_Pexels.mp4"), start=100, stop=101))).save(still)
build_corpus(out, size, clips=[CorpusClip(pexels.name, "pexels_woman", False, pexels),
                               CorpusClip(carphone.name, "carphone_man", True, carphone)],
             stills=[CorpusStill(still.name, "pexels_woman", still)], progress=False)
EOF
  fi
else
  corpus="${corpus:-$root/data/corpus$size}"
  if [ "$config_only" = 0 ] && ! complete "$corpus" "$size"; then
    say "building the corpus in $corpus (imf data corpus --size $size)"
    "$PYTHON" -m imf.cli data corpus --size "$size" --out "$corpus"
  fi
fi

# 2. the exact training config: the preset's, with this corpus's stills and this batch
"$PYTHON" - "$base" "$out/config.yaml" "$preset" "$size" "$batch" "$corpus" "$dry_run" <<'EOF'
import sys
from pathlib import Path

import yaml

base, target, preset, size, batch, corpus, dry_run = sys.argv[1:]
cfg = yaml.safe_load(Path(base).read_text())
if cfg["model"].get("preset") != preset:
    cfg["model"] = {"preset": preset}
cfg["data"]["size"] = int(size)
stills = Path(corpus) / "stills"
if stills.is_dir() and any(stills.glob("*.png")):
    cfg["data"]["stills"] = [str(stills)]
else:
    print(f"gpu_train.sh: {stills} holds no still: training on the clips alone", file=sys.stderr)
    cfg["data"].pop("stills", None)
    cfg["data"]["stills_ratio"] = 0.0
cfg["run"]["batch_size"] = int(batch)
if dry_run == "1":  # nothing periodic in 3 steps: the end of the run still validates, saves and exports
    cfg["run"].update(num_workers=0, log_every=1, image_every=10**6, val_every=10**6, checkpoint_every=10**6,
                      val_batches=1)
Path(target).write_text(f"# written by benchmarks/gpu_train.sh from {Path(base).name}\n"
                        + yaml.safe_dump(cfg, sort_keys=False))
EOF
if [ "$config_only" = 1 ]; then
  say "wrote $out/config.yaml"
  exit 0
fi

# 3. training, stopped by the time budget (the dry run: by 3 steps), ending with a checkpoint and RUN/model
if [ "$dry_run" = 1 ] && [ -f "$run/.gpu_train_dryrun" ]; then
  rm -rf "$run"  # the dry run's own scratch run from an earlier dry run
fi
resume_arg=()
if [ -d "$run/checkpoints" ] && [ -n "$(ls -A "$run/checkpoints" 2>/dev/null)" ]; then
  if [ "$resume" = 1 ]; then resume_arg=(--resume); else
    say "$run already holds checkpoints: pass --resume to continue it, or --run another folder"; exit 2
  fi
fi
mkdir -p "$run"
[ "$dry_run" = 1 ] && touch "$run/.gpu_train_dryrun"
say "training $preset on $corpus/train for $minutes min on $device (batch $batch), run folder $run"
t0=$SECONDS
"$PYTHON" -m imf.cli train --config "$out/config.yaml" --data "$corpus/train" --out "$run" \
  --max-minutes "$minutes" --device "$device" "${resume_arg[@]}" "${train_limit[@]}" \
  >"$out/train_summary.json" 2> >(tee "$out/train.log" >&2)
train_s=$((SECONDS - t0))

# 4. the held-out report (benchmarks/learning.py report)
t0=$SECONDS
say "held-out report into $out/report"
# shellcheck disable=SC2086  # report_args is a list of words
"$PYTHON" "$root/benchmarks/learning.py" report --model "$run/model" --corpus "$corpus" --out "$out/report" \
  $report_args
report="$out/report"
report_s=$((SECONDS - t0))

# 5. what ran
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)"
"$PYTHON" - "$out" "$run" "$corpus" "$report" "$preset" "$minutes" "$batch" "$device" "${gpu:-none}" \
  "$train_s" "$report_s" "$dry_run" <<'EOF'
import json
import sys
from pathlib import Path

out, run, corpus, report, preset, minutes, batch, device, gpu, train_s, report_s, dry_run = sys.argv[1:]
out, run = Path(out), Path(run)
summary = json.loads((out / "train_summary.json").read_text())
model = run / "model"
result = {
    "benchmark": "gpu_train", "dry_run": dry_run == "1", "preset": preset, "device": device, "gpu": gpu,
    "minutes_budget": float(minutes), "batch_size": int(batch), "corpus": corpus, "config": str(out / "config.yaml"),
    "run": str(run), "model": str(model),
    "model_bytes": sum(p.stat().st_size for p in model.iterdir()) if model.is_dir() else None,
    "steps": summary.get("step"), "stopped_by": summary.get("stopped_by"),
    "train_seconds": int(train_s),  # the whole `imf train` process: start-up, data loading, loop, export
    "loop_seconds": summary.get("loop_seconds"),  # the training loop alone (what --minutes limits)
    "steps_run": summary.get("steps_run"),  # this invocation's steps (a resumed run started further on)
    "samples_per_second": (round(summary["steps_run"] * int(batch) / summary["loop_seconds"], 2)
                           if summary.get("loop_seconds") else None),
    "validation": {k: v for k, v in summary.items() if k.startswith("val_")},
    "report": report or None, "report_seconds": int(report_s) if report else None,
}
if report:
    found = sorted(Path(report).glob("*.json"))
    result["report_files"] = [str(p) for p in found]
    for p in found:
        data = json.loads(p.read_text())
        if isinstance(data, dict) and "goals" in data:
            result["goals"] = data["goals"]
(out / "gpu_train.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps({k: result[k] for k in ("preset", "steps", "stopped_by", "train_seconds", "model", "report")}))
EOF
say "done: $out/gpu_train.json"
