"""Held-out measurement (imf.eval.generalisation) and dlib identity distances (imf.eval.identity)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from imf.eval.generalisation import (Clip, default_pairs, evaluate_clip, evaluate_splits, mean_training_frame,
                                     shift_test, swap_test, translate)

S = 64


def blob_clip(name: str, person: str, n: int = 6, seed: int = 0) -> Clip:
    """A disc moving over a gradient: (n, 3, S, S) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    tint = torch.rand(3, generator=g)
    base = torch.stack([xx / S, yy / S, torch.full((S, S), 0.4)]) * 0.6 + 0.2 * tint[:, None, None]
    frames = []
    for t in range(n):
        f = base.clone()
        f[:, (xx - 16 - 5 * t) ** 2 + (yy - 30) ** 2 < 80] = torch.tensor([0.9, 0.7, 0.35])[:, None]
        frames.append(f)
    return Clip(name, person, torch.stack(frames).clamp(0, 1))


class Echo(torch.nn.Module):
    """A stand-in model: the token is the frame itself, so x̂_t = x_t (``still``: x̂_t = the reference)."""

    def __init__(self, still: bool = False):
        super().__init__()
        self.still = still
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the model a device

    def prepare_reference(self, x_r):
        return x_r

    def encode_token(self, x):
        return x.flatten(1)

    def decode(self, t, ref):
        return ref.expand(len(t), -1, -1, -1) if self.still else t.reshape(len(t), 3, S, S)


# ------------------------------------------------------------------------------------------ pixels and motion
def test_report_shapes_and_keys_with_the_tiny_model(tiny_model):
    splits = {"heldout_frames": [blob_clip("a", "p1"), blob_clip("b", "p2", n=5, seed=1)],
              "heldout_people": [blob_clip("c", "p3", n=4, seed=2)]}
    mean_frame = torch.full((3, S, S), 0.5)
    report = evaluate_splits(tiny_model, splits, mean_frame=mean_frame, batch_size=4)
    json.dumps(report, allow_nan=False)  # plain JSON: no inf, no NaN, no tensors
    assert set(report["splits"]) == set(splits)
    frames = report["splits"]["heldout_frames"]
    assert [c["name"] for c in frames["clips"]] == ["a", "b"]
    clip = frames["clips"][0]
    assert set(clip) == {"name", "person", "model", "copy", "mean_frame", "motion", "gain_db"}
    assert set(clip["model"]) == {"frames", "psnr", "mean_frame_psnr", "l1"} and clip["model"]["frames"] == 5
    assert set(clip["motion"]) == {"input_change", "output_change", "ratio", "correlation"}
    summary = frames["summary"]
    assert summary["model"]["frames"] == 5 + 4 and summary["clips"] == 2 and summary["people"] == ["p1", "p2"]
    assert summary["gain_db"]["copy"] == pytest.approx(summary["model"]["psnr"] - summary["copy"]["psnr"])
    # the clip-level call gives the same numbers as the split-level one
    alone = evaluate_clip(tiny_model, splits["heldout_frames"][0], mean_frame=mean_frame, batch_size=3)
    assert alone["model"]["psnr"] == pytest.approx(clip["model"]["psnr"], abs=1e-4)


def test_baselines_equal_hand_computed_values():
    # x_t = 0.3 + 0.1·t everywhere: copying x_0 errs by 0.1·t, the constant 0.5 by |0.1·t − 0.2|
    n = 5
    frames = torch.stack([torch.full((3, S, S), 0.3 + 0.1 * t) for t in range(n)])
    row = evaluate_clip(Echo(), Clip("ramp", "p", frames), mean_frame=torch.full((3, S, S), 0.5))
    err_copy = np.array([0.1 * t for t in range(1, n)])
    err_mean = np.abs(err_copy - 0.2)
    assert row["copy"]["frames"] == n - 1
    assert row["copy"]["psnr"] == pytest.approx(10 * math.log10(1 / np.mean(err_copy**2)), abs=1e-4)
    assert row["copy"]["mean_frame_psnr"] == pytest.approx(np.mean(10 * np.log10(1 / err_copy**2)), abs=1e-4)
    assert row["copy"]["l1"] == pytest.approx(np.mean(err_copy), abs=1e-6)
    # frame 2 equals the constant: its MSE is floored, so the mean of per-frame PSNRs stays finite
    floored = np.maximum(err_mean**2, 1e-10)
    assert row["mean_frame"]["mean_frame_psnr"] == pytest.approx(np.mean(10 * np.log10(1 / floored)), rel=1e-3)
    assert row["mean_frame"]["l1"] == pytest.approx(np.mean(err_mean), abs=1e-6)
    # a perfect model: 100 dB (the floor), motion exactly that of the input
    assert row["model"]["psnr"] == pytest.approx(100.0)
    assert row["motion"]["ratio"] == pytest.approx(1.0) and row["motion"]["input_change"] == pytest.approx(0.1)


def test_still_output_has_zero_motion_and_no_correlation():
    clip = blob_clip("a", "p", n=7)
    row = evaluate_clip(Echo(still=True), clip, batch_size=3)  # batches of 3: differences cross batch edges
    assert row["motion"]["ratio"] == 0.0 and row["motion"]["output_change"] == 0.0
    assert row["motion"]["correlation"] is None
    assert row["model"] == row["copy"]  # x̂_t = x_0 is the copy baseline
    moving = evaluate_clip(Echo(), clip, batch_size=3)["motion"]
    assert moving["ratio"] == pytest.approx(1.0) and moving["correlation"] == pytest.approx(1.0)


def test_translate_moves_right_and_down():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    right = translate(x, 1, 0)
    assert torch.equal(right[..., 1:], x[..., :-1]) and torch.equal(right[..., 0], x[..., 0])  # edge repeated
    down = translate(x, 0, 2)
    assert torch.equal(down[..., 2:, :], x[..., :-2, :])


def test_shift_test_tells_a_model_that_moves_from_one_that_stays():
    """A model whose output is its input follows every shift (1.0, and 100 dB); one that returns its reference
    (the copy baseline) follows none (0.0) and scores copy's PSNR."""
    clips = [blob_clip("a", "p"), blob_clip("b", "q", seed=1)]
    moving = shift_test(Echo(), clips, shifts=(2, 4, 8))
    assert moving["followed"] == pytest.approx(1.0) and moving["clips"] == 2
    assert all(v["followed"] == pytest.approx(1.0) for v in moving["per_shift"].values())
    assert moving["per_shift"]["4"]["model_psnr"] == pytest.approx(100.0)
    still = shift_test(Echo(still=True), clips, shifts=(2, 4, 8))
    assert still["followed"] == 0.0
    for v in still["per_shift"].values():
        assert v["model_psnr"] == pytest.approx(v["copy_psnr"])
    assert json.dumps(still, allow_nan=False) and json.dumps(moving, allow_nan=False)


def test_lpips_is_reported_when_given(tiny_model):
    from imf.cache import FetchError

    try:
        from imf.eval.lpips import LPIPS

        lpips = LPIPS("alex")
    except FetchError as e:
        pytest.skip(f"LPIPS AlexNet weights unavailable offline: {e}")
    row = evaluate_clip(tiny_model, blob_clip("a", "p", n=3), lpips=lpips)
    assert row["model"]["lpips"] > 0 and row["copy"]["lpips"] >= 0


def test_mean_training_frame_averages_every_frame():
    batches = [torch.zeros(3, 3, 4, 4), torch.ones(1, 3, 4, 4)]  # 3 frames of 0, 1 of 1
    torch.testing.assert_close(mean_training_frame(iter(batches)), torch.full((3, 4, 4), 0.25))
    with pytest.raises(ValueError, match="no training frames"):
        mean_training_frame([])


def test_clip_needs_two_frames():
    with pytest.raises(ValueError, match="N >= 2"):
        Clip("x", "p", torch.zeros(1, 3, S, S))


# ------------------------------------------------------------------------------------------ identity
@pytest.fixture(scope="module")
def scorers():
    """dlib's descriptor with both boxes; skipped with the reason where dlib or its models cannot load."""
    from imf.cache import FetchError
    from imf.editing.landmarks import DlibMissing
    from imf.eval.identity import IdentityScorer

    try:
        return {"detect": IdentityScorer(box="detect"), "crop": IdentityScorer(box="crop")}
    except (DlibMissing, FetchError) as e:
        pytest.skip(f"dlib face descriptor unavailable: {e}")


def test_identity_distance_of_an_image_to_itself_is_zero(scorers):
    from imf.eval.identity import identity_distance

    img = (blob_clip("a", "p").frames[0].permute(1, 2, 0) * 255).round().byte().numpy()  # (S, S, 3)
    d = scorers["crop"].descriptor(img)
    assert d.shape == (128,) and identity_distance(d, scorers["crop"].descriptor(img)) == pytest.approx(0, abs=1e-6)
    try:
        from PIL import Image

        from imf.data.crop import crop_image
        from imf.data.samples import sample_path

        face, _ = crop_image(np.asarray(Image.open(sample_path("astronaut.png")).convert("RGB")), size=S)
    except Exception as e:  # the sample is fetched from PyPI on first use
        pytest.skip(f"astronaut sample unavailable: {e}")
    d = scorers["detect"].descriptor(face)  # a real 64×64 face crop, enlarged for dlib
    assert d is not None and identity_distance(d, scorers["detect"].descriptor(face)) < 1e-6
    flipped = scorers["detect"].descriptor(np.ascontiguousarray(face[:, ::-1]))
    assert identity_distance(d, flipped) < 0.6  # the mirrored face is still the same person


def test_no_face_is_reported_not_raised(tiny_model, scorers):
    report = evaluate_splits(tiny_model, {"heldout_people": [blob_clip("a", "p", n=3)]},
                             identity=scorers["detect"], identity_splits={"heldout_people"})
    ident = report["splits"]["heldout_people"]["summary"]["identity"]["model"]
    assert ident == {"frames": 2, "no_face": 2, "distance": None, "share_same": None}
    json.dumps(report, allow_nan=False)


def test_identity_only_on_the_splits_asked(tiny_model, scorers):
    splits = {"heldout_frames": [blob_clip("a", "p", n=3)], "heldout_people": [blob_clip("b", "q", n=4)]}
    report = evaluate_splits(tiny_model, splits, identity=scorers["crop"], identity_splits={"heldout_people"},
                             identity_stride=2)
    assert "identity" not in report["splits"]["heldout_frames"]["summary"]
    ident = report["splits"]["heldout_people"]["clips"][0]["identity"]
    assert ident["model"]["frames"] == 2 and ident["model"]["no_face"] == 0  # frames 1 and 3
    assert 0 <= ident["model"]["share_same"] <= 1 and ident["copy"]["distance"] >= 0


def test_swap_test_pairs_people_and_reports_distances(tiny_model, scorers):
    clips = [blob_clip("a", "p1", n=4), blob_clip("b", "p1", n=4, seed=1), blob_clip("c", "p2", n=5, seed=2)]
    assert default_pairs(clips) == [(0, 2), (1, 2), (2, 0)]
    result = swap_test(tiny_model, clips, scorers["crop"], pairs=[(0, 2)], frames_per_pair=2)
    json.dumps(result, allow_nan=False)
    pair = result["pairs"][0]
    assert (pair["driving_person"], pair["reference_person"]) == ("p1", "p2")
    for key in ("to_reference", "to_driving", "between_people"):
        assert pair[key]["frames"] == 2 and pair[key]["distance"] >= 0
    assert result["summary"]["pairs"] == 1
    with pytest.raises(ValueError, match="both clips show"):
        swap_test(tiny_model, clips, scorers["crop"], pairs=[(0, 1)])
