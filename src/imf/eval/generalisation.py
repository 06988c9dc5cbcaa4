"""Held-out measurement: does the model rebuild motion on frames and people it never saw?

Corpus inputs (a folder written by ``imf.data.corpus.build_corpus``): ``corpus_clips`` reads one split's
clips as ``Clip``s (all frames, or ``frames_per_clip`` evenly spaced ones, frame 0 first, the same on every
call), ``corpus_mean_frame`` the mean frame of every k-th frame of its training split.

Protocol of ``evaluate_splits`` (one call per split: held-out frames of training people, held-out people):
- A clip is a ``Clip``: frames (N, 3, S, S) float in [0, 1], N ≥ 2, with a name and a person.
- Model: the reference is the clip's first frame x_0, prepared once; every frame is decoded with it,
  x̂_t = decode(encode_token(x_t), ref), in batches under ``torch.inference_mode``.
- Baselines on the same frames: ``copy`` (x̂_t = x_0) and ``mean_frame`` (x̂_t = a constant image, the
  mean training frame, given by the caller).
- Pixel scores on frames t = 1..N-1 (frame 0 is the reference: copying it is trivially perfect):
  ``psnr`` is the PSNR of the mean MSE over those frames (what a codec reports), ``mean_frame_psnr`` the
  mean of per-frame PSNRs (per-frame MSE floored at 1e-10, so at most 100 dB); both RGB, peak 1.
  ``l1``: mean absolute error; ``lpips``: LPIPS v0.1 (``imf.eval.lpips``) if a network is given;
  ``ssim``: mean SSIM (``imf.eval.metrics.ssim``) if asked for.
  A split's figures pool every scored frame of its clips (a long clip weighs more).
- Output motion: per frame t ≥ 1, d_in(t) = mean |x_t − x_{t−1}| and d_out(t) = mean |x̂_t − x̂_{t−1}|;
  ``ratio`` = Σ d_out / Σ d_in (0: a still output; 1: as much change as the input) and ``correlation``:
  Pearson's r of the two series (None when either is constant). A split's ratio pools the sums; its
  correlation is the mean over clips.
- Identity (when an ``IdentityScorer`` is given, on the splits named in ``identity_splits``): every
  ``identity_stride``-th scored frame, the dlib descriptor distance of x̂_t to x_t, and, as the baseline,
  of x_0 (copy) to x_t; ``share_same`` is the share of frames under dlib's 0.6 among frames where both faces
  were found, ``no_face`` the frames where one was not.

``swap_test``: frames of person A decoded with person B's reference, x̂ = decode(E_T(x_A,t), ref(x_B,0)):
distances of x̂ to B's reference (it should look like B) and to A's true frame, and between A's frame and
B's reference (how far apart the two people are to begin with).

``shift_test``: the simplest motion there is. Each clip's reference x_0 is translated by a known number of
pixels (``shifts``, right and down, edges replicated) and rebuilt from x_0 as reference; the output's shift is
estimated as the integer translation (within ±``search`` px) of the model's rebuild of x_0 itself that best
matches it (MSE over the centre, away from the replicated edges). ``followed`` = Σ estimated / Σ true shift:
1 when the output moves with the input, 0 when it stays put (a copy of the reference scores 0). The PSNRs of
model and copy against the shifted frame are given beside it.

Every result is a plain dict of floats / ints / str / None (``json.dumps`` needs nothing more).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from imf.devices import model_device
from imf.eval.identity import DLIB_THRESHOLD, IdentityScorer, identity_distance
from imf.eval.metrics import PSNR_MSE_FLOOR, psnr_of_mse, ssim as ssim_of

PROTOCOL = __doc__.split("Protocol of ``evaluate_splits``", 1)[1].strip()
MSE_FLOOR = PSNR_MSE_FLOOR  # per-frame PSNR ≤ 100 dB


@dataclass(frozen=True)
class Clip:
    """frames: (N, 3, S, S) float in [0, 1], N ≥ 2; name: e.g. the segment's path; person: an identity label."""

    name: str
    person: str
    frames: Tensor

    def __post_init__(self) -> None:
        f = self.frames
        if not (isinstance(f, Tensor) and f.ndim == 4 and f.shape[1] == 3 and f.shape[0] >= 2):
            shape = tuple(getattr(f, "shape", ()))
            raise ValueError(f"clip {self.name!r}: frames must be (N >= 2, 3, S, S), got {shape}")


def mean_training_frame(frames: Iterable[Tensor]) -> Tensor:
    """The ``mean_frame`` baseline: the per-pixel mean (3, S, S) of batches of training frames (B, 3, S, S),
    accumulated in float64 batch by batch."""
    total, count = None, 0
    for batch in frames:
        s = batch.detach().double().sum(0)  # (3, S, S)
        total = s if total is None else total + s
        count += len(batch)
    if not count:
        raise ValueError("no training frames to average")
    return (total / count).float()


def evenly_spaced(n: int, count: int | None) -> np.ndarray:
    """Indices of ``count`` frames evenly spaced over 0..n-1, first and last included (all n if count is None
    or at least n)."""
    if count is None or count >= n:
        return np.arange(n)
    if count < 2:
        raise ValueError(f"count must be at least 2 (the reference and one scored frame), got {count}")
    return np.unique(np.linspace(0, n - 1, count).round().astype(np.int64))


def corpus_clips(corpus, split: str, size: int, frames_per_clip: int | None = None) -> list[Clip]:
    """The clips of one split ("train", "heldout_frames" or "heldout_people") of a corpus folder, in manifest
    order, frames at size×size (read through ``imf.data.frame_cache``, decoded once per clip and size);
    ``frames_per_clip``: that many evenly spaced frames of each clip (``evenly_spaced``), None: all. Each
    clip is named by its path in the corpus, e.g. ``heldout_people/cap12_edit_000.mp4``."""
    from pathlib import Path

    from imf.data.corpus import SPLITS, read_manifest
    from imf.data.frame_cache import load_frames
    from imf.data.video import to_tensor

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    clips = []
    for entry in read_manifest(corpus)["clips"]:
        if entry["split"] == split:
            frames = load_frames(Path(corpus) / entry["path"], size)  # memmap (N, S, S, 3) uint8
            index = evenly_spaced(len(frames), frames_per_clip)
            clips.append(Clip(entry["path"], entry["person"], to_tensor(frames[index])))
    return clips


def corpus_mean_frame(corpus, size: int, max_frames: int = 512) -> Tensor:
    """``mean_training_frame`` of a corpus's training split: every k-th frame of each training clip (frames
    0, k, 2k, ...), k = ceil(training frames / max_frames), so a longer clip weighs more, as in training."""
    from pathlib import Path

    from imf.data.corpus import read_manifest
    from imf.data.frame_cache import load_frames
    from imf.data.video import to_tensor

    entries = [e for e in read_manifest(corpus)["clips"] if e["split"] == "train"]
    if not entries:
        raise ValueError(f"{corpus}: no training clip in the manifest")
    stride = max(1, -(-sum(e["frames"] for e in entries) // max_frames))

    def batches():
        for e in entries:
            frames = load_frames(Path(corpus) / e["path"], size)
            for start in range(0, len(frames), 64 * stride):
                yield to_tensor(frames[start:start + 64 * stride:stride])

    return mean_training_frame(batches())


# ------------------------------------------------------------------------------------------ per-frame tallies
class _Tally:
    """Per-frame values of one clip or split, by (method, metric)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], list[np.ndarray]] = {}

    def add(self, method: str, metric: str, values: Tensor | np.ndarray) -> None:
        v = values.detach().double().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values, np.float64)
        self.values.setdefault((method, metric), []).append(v.reshape(-1))

    def get(self, method: str, metric: str) -> np.ndarray:
        return np.concatenate(self.values.get((method, metric), [np.zeros(0)]))

    def merge(self, other: "_Tally") -> None:
        for k, v in other.values.items():
            self.values.setdefault(k, []).extend(v)

    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for m, _ in self.values))


def _mean(v: np.ndarray) -> float | None:
    return float(np.mean(v)) if len(v) else None


def _pixel_summary(t: _Tally, method: str) -> dict:
    mse = t.get(method, "mse")
    out = {"frames": int(len(mse)),
           "psnr": psnr_of_mse(max(float(np.mean(mse)), MSE_FLOOR)) if len(mse) else None,
           "mean_frame_psnr": _mean(np.array([psnr_of_mse(m) for m in np.maximum(mse, MSE_FLOOR)])),
           "l1": _mean(t.get(method, "l1"))}
    for metric in ("lpips", "ssim"):
        if (method, metric) in t.values:
            out[metric] = _mean(t.get(method, metric))
    return out


def _motion_summary(t: _Tally) -> dict:
    d_in, d_out = t.get("motion", "input"), t.get("motion", "output")
    total_in = float(d_in.sum())
    corr = None
    if len(d_in) >= 2 and np.std(d_in) > 0 and np.std(d_out) > 0:
        corr = float(np.corrcoef(d_in, d_out)[0, 1])
    return {"input_change": _mean(d_in), "output_change": _mean(d_out),
            "ratio": float(d_out.sum()) / total_in if total_in > 0 else None, "correlation": corr}


def _identity_summary(t: _Tally, method: str) -> dict:
    d = t.get(method, "identity")  # NaN where a face was not found
    found = d[~np.isnan(d)]
    return {"frames": int(len(d)), "no_face": int(np.isnan(d).sum()), "distance": _mean(found),
            "share_same": float(np.mean(found < DLIB_THRESHOLD)) if len(found) else None}


def _distances(a: list[np.ndarray | None], b: list[np.ndarray | None]) -> np.ndarray:
    """Pairwise distances (NaN where a descriptor is missing)."""
    return np.array([np.nan if (d := identity_distance(x, y)) is None else d for x, y in zip(a, b)], np.float64)


# ------------------------------------------------------------------------------------------ one clip
def _score_batch(t: _Tally, method: str, pred: Tensor, x: Tensor, lpips, ssim: bool = False) -> None:
    """pred, x: (B, 3, S, S) on one device."""
    diff = (pred - x).flatten(1)
    t.add(method, "mse", diff.pow(2).mean(1))
    t.add(method, "l1", diff.abs().mean(1))
    if lpips is not None:
        t.add(method, "lpips", lpips(pred, x))
    if ssim:
        t.add(method, "ssim", ssim_of(pred, x))


@torch.inference_mode()
def _clip_tally(model, clip: Clip, mean_frame: Tensor | None, lpips, identity: IdentityScorer | None,
                identity_stride: int, batch_size: int, ssim: bool = False) -> _Tally:
    device = model_device(model)
    frames = clip.frames
    x0 = frames[:1].to(device, torch.float32)  # (1, 3, S, S)
    ref = model.prepare_reference(x0)
    const = None if mean_frame is None else mean_frame.to(device, torch.float32).reshape(1, *x0.shape[1:])
    ref_desc = identity.descriptors(x0)[0] if identity is not None else None
    tally = _Tally()
    prev_x = prev_y = None
    for start in range(0, len(frames), batch_size):
        x = frames[start:start + batch_size].to(device, torch.float32)  # (B, 3, S, S)
        y = model.decode(model.encode_token(x), ref).float().clamp(0, 1)  # (B, 3, S, S)
        # motion: differences to the previous frame, across the batch boundary too
        xs = x if prev_x is None else torch.cat([prev_x, x])
        ys = y if prev_y is None else torch.cat([prev_y, y])
        tally.add("motion", "input", (xs[1:] - xs[:-1]).abs().flatten(1).mean(1))
        tally.add("motion", "output", (ys[1:] - ys[:-1]).abs().flatten(1).mean(1))
        prev_x, prev_y = x[-1:], y[-1:]
        keep = torch.arange(start, start + len(x), device=device) > 0  # frame 0 is the reference: not scored
        if not keep.any():
            continue
        xk, yk = x[keep], y[keep]
        _score_batch(tally, "model", yk, xk, lpips, ssim)
        _score_batch(tally, "copy", x0.expand_as(xk), xk, lpips, ssim)
        if const is not None:
            _score_batch(tally, "mean_frame", const.expand_as(xk), xk, lpips, ssim)
        if identity is not None:
            index = torch.arange(start, start + len(x))[keep.cpu()]
            pick = (index - 1) % identity_stride == 0  # frames 1, 1 + stride, ...
            if pick.any():
                truth = identity.descriptors(xk[pick.to(device)])
                outs = identity.descriptors(yk[pick.to(device)])
                tally.add("model", "identity", _distances(outs, truth))
                tally.add("copy", "identity", _distances([ref_desc] * len(truth), truth))
    return tally


def _summary(tally: _Tally, with_identity: bool) -> dict:
    out = {m: _pixel_summary(tally, m) for m in tally.methods() if m != "motion"}
    out["motion"] = _motion_summary(tally)
    if with_identity:
        out["identity"] = {m: _identity_summary(tally, m) for m in ("model", "copy")}
    psnr = out["model"]["psnr"]
    out["gain_db"] = {m: psnr - out[m]["psnr"] for m in ("copy", "mean_frame") if m in out}
    return out


def evaluate_clip(model, clip: Clip, *, mean_frame: Tensor | None = None, lpips=None,
                  identity: IdentityScorer | None = None, identity_stride: int = 1, batch_size: int = 16) -> dict:
    """Scores of one clip (see the module docstring): {"name", "person", "model", "copy", ["mean_frame"],
    "motion", ["identity"], "gain_db"}. mean_frame: (3, S, S) in [0, 1] or None; lpips: an
    ``imf.eval.lpips.LPIPS`` on the model's device or None."""
    model.eval()
    return _clip_result(model, clip, mean_frame, lpips, identity, identity_stride, batch_size)[1]


def _clip_result(model, clip: Clip, mean_frame, lpips, identity, identity_stride: int,
                 batch_size: int, ssim: bool = False) -> tuple[_Tally, dict]:
    tally = _clip_tally(model, clip, mean_frame, lpips, identity, identity_stride, batch_size, ssim)
    return tally, {"name": clip.name, "person": clip.person, **_summary(tally, identity is not None)}


def evaluate_splits(model, splits: Mapping[str, Sequence[Clip]], *, mean_frame: Tensor | None = None, lpips=None,
                    identity: IdentityScorer | None = None, identity_splits: Collection[str] | None = None,
                    identity_stride: int = 1, batch_size: int = 16, ssim: bool = False) -> dict:
    """Per clip and per split scores of ``model`` beside copy-the-reference and the mean training frame.

    splits: {split name: clips}. identity_splits: the splits that get identity distances (default: all, when
    ``identity`` is given). Returns {"protocol": str, "splits": {name: {"clips": [per clip], "summary":
    pooled over the split's frames}}}.
    """
    if identity_stride < 1 or batch_size < 1:
        raise ValueError("identity_stride and batch_size must be at least 1")
    model.eval()
    out: dict = {"protocol": PROTOCOL, "splits": {}}
    for name, clips in splits.items():
        scorer = identity if identity is not None and (identity_splits is None or name in identity_splits) else None
        pooled, rows, correlations = _Tally(), [], []
        for clip in clips:
            tally, row = _clip_result(model, clip, mean_frame, lpips, scorer, identity_stride, batch_size, ssim)
            rows.append(row)
            correlations.append(row["motion"]["correlation"])
            pooled.merge(tally)
        summary = _summary(pooled, scorer is not None) if rows else {}
        if rows:  # per-clip correlations, averaged: pooling the series would mix clips' motion levels
            valid = [c for c in correlations if c is not None]
            summary["motion"]["correlation"] = float(np.mean(valid)) if valid else None
        summary.update(clips=len(rows), people=sorted({c.person for c in clips}))
        out["splits"][name] = {"clips": rows, "summary": summary}
    return out


# ------------------------------------------------------------------------------------------ swap test
def default_pairs(clips: Sequence[Clip]) -> list[tuple[int, int]]:
    """(driving A, reference B) index pairs: each clip with the next clip (cyclically) of another person."""
    pairs = []
    for i, a in enumerate(clips):
        for k in range(1, len(clips)):
            j = (i + k) % len(clips)
            if clips[j].person != a.person:
                pairs.append((i, j))
                break
    return pairs


@torch.inference_mode()
def swap_test(model, clips: Sequence[Clip], identity: IdentityScorer, *, pairs: Sequence[tuple[int, int]] | None = None,
              frames_per_pair: int = 16, batch_size: int = 16) -> dict:
    """Cross-identity decoding (see the module docstring). pairs: (A, B) indices into ``clips`` (default
    ``default_pairs``); frames_per_pair: frames of A, evenly spaced over t = 1..N-1. Returns {"pairs": [per
    pair], "summary": pooled}, each with distances ``to_reference`` (x̂ vs B's reference), ``to_driving``
    (x̂ vs A's frame) and ``between_people`` (A's frame vs B's reference), as {"distance", "share_same",
    "no_face", "frames"}."""
    model.eval()
    device = model_device(model)
    pairs = default_pairs(clips) if pairs is None else list(pairs)
    pooled, rows = _Tally(), []
    for i, j in pairs:
        a, b = clips[i], clips[j]
        if a.person == b.person:
            raise ValueError(f"swap pair ({i}, {j}): both clips show {a.person!r}")
        index = np.unique(np.linspace(1, len(a.frames) - 1, min(frames_per_pair, len(a.frames) - 1)).round())
        x_b = b.frames[:1].to(device, torch.float32)  # (1, 3, S, S)
        ref = model.prepare_reference(x_b)
        b_desc = identity.descriptors(x_b)[0]
        tally = _Tally()
        for start in range(0, len(index), batch_size):
            x = a.frames[torch.as_tensor(index[start:start + batch_size], dtype=torch.long)].to(device, torch.float32)
            y = model.decode(model.encode_token(x), ref).float().clamp(0, 1)  # (B, 3, S, S)
            outs, truth = identity.descriptors(y), identity.descriptors(x)
            tally.add("to_reference", "identity", _distances(outs, [b_desc] * len(outs)))
            tally.add("to_driving", "identity", _distances(outs, truth))
            tally.add("between_people", "identity", _distances(truth, [b_desc] * len(truth)))
        rows.append({"driving": a.name, "driving_person": a.person, "reference": b.name, "reference_person": b.person,
                     **{m: _identity_summary(tally, m) for m in ("to_reference", "to_driving", "between_people")}})
        pooled.merge(tally)
    summary = {m: _identity_summary(pooled, m) for m in ("to_reference", "to_driving", "between_people")}
    return {"pairs": rows, "summary": {"pairs": len(rows), **summary}}


def translate(x: Tensor, dx: int, dy: int) -> Tensor:
    """x (B, C, H, W) moved dx px right and dy px down; the uncovered edge repeats the nearest pixels."""
    h, w = x.shape[-2:]
    p = max(abs(dx), abs(dy))
    padded = torch.nn.functional.pad(x, (p, p, p, p), mode="replicate")  # (B, C, H + 2p, W + 2p)
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w]


def _estimated_shift(moved: Tensor, still: Tensor, search: int, axis: str) -> int:
    """The integer translation along ``axis`` ("x" or "y") of ``still`` (C, H, W) that best matches ``moved``."""
    m = search
    def err(s: int) -> float:
        cand = translate(still[None], s, 0) if axis == "x" else translate(still[None], 0, s)
        return float((cand[0] - moved)[:, m:-m, m:-m].pow(2).mean())
    return min(range(-search, search + 1), key=err)


@torch.inference_mode()
def shift_test(model, clips: Sequence[Clip], *, shifts: Sequence[int] = (2, 4, 8), search: int = 12) -> dict:
    """Known translations of each clip's reference, rebuilt from it (module docstring): {"followed",
    "per_shift": {s: {"followed", "model_psnr", "copy_psnr"}}, "clips"}. Shifts must be < the side / 4."""
    device = model_device(model)
    per = {s: {"true": 0, "est": 0, "model_mse": [], "copy_mse": []} for s in shifts}
    for clip in clips:
        x0 = clip.frames[:1].to(device, torch.float32)  # (1, 3, S, S)
        ref = model.prepare_reference(x0)
        still = model.decode(model.encode_token(x0), ref).float().clamp(0, 1)[0]  # the model's own rebuild of x_0
        for s in shifts:
            for axis in ("x", "y"):
                xc = translate(x0, s, 0) if axis == "x" else translate(x0, 0, s)
                y = model.decode(model.encode_token(xc), ref).float().clamp(0, 1)
                per[s]["true"] += s
                per[s]["est"] += _estimated_shift(y[0], still, search, axis)
                per[s]["model_mse"].append(float((y - xc).pow(2).mean()))
                per[s]["copy_mse"].append(float((x0 - xc).pow(2).mean()))
    def db(mses: list[float]) -> float:
        return psnr_of_mse(max(float(np.mean(mses)), MSE_FLOOR))  # at most 100 dB, never inf

    out = {str(s): {"followed": v["est"] / v["true"], "model_psnr": db(v["model_mse"]), "copy_psnr": db(v["copy_mse"])}
           for s, v in per.items()}
    total_true = sum(v["true"] for v in per.values())
    return {"followed": sum(v["est"] for v in per.values()) / total_true, "per_shift": out, "clips": len(clips),
            "shifts": list(shifts), "search": search}
