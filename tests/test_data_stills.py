"""Pseudo-video pairs from stills (imf.data.stills), their mix with video pairs, and the DataConfig fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from imf.data.dataset import DataConfig, PairDataset
from imf.data.stills import MixedPairs, StillPairs, WarpConfig, random_warp_grid, training_pairs, warp_image
from imf.data.video import VideoWriter
from imf.errors import ConfigError, InputError
from imf.train.distributed import SeededItems

S = 32


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))


def _photo(seed: int, side: int = 48) -> np.ndarray:
    """A smooth random picture with structure everywhere (so any warp changes it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((side, side), Image.Resampling.BICUBIC))


@pytest.fixture
def stills_dir(tmp_path):
    folder = tmp_path / "stills"
    (folder / "more").mkdir(parents=True)
    for k in range(3):
        Image.fromarray(_photo(k)).save(folder / f"face_{k}.png")
    Image.fromarray(_photo(9)).save(folder / "more" / "face_9.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 25, 40, 40, crf=0, preset="veryfast") as w:
        for i in range(20):
            w.write(np.full((40, 40, 3), 10 + 10 * i, np.uint8))
    return path


def test_still_pairs_are_two_independent_warps_of_one_photo(stills_dir):
    ds = StillPairs([stills_dir], S, hflip_prob=0.0)
    assert len(ds) == 4  # recursive, images only
    item = ds[0]
    assert set(item) == {"reference", "current", "clip", "ref_index", "cur_index"}
    for key in ("reference", "current"):
        x = item[key]
        assert x.shape == (3, S, S) and x.dtype == torch.float32
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert (item["clip"], item["ref_index"], item["cur_index"]) == (0, 0, 0)
    diff = (item["reference"] - item["current"]).abs().mean()
    assert diff > 0.02  # the two frames differ ...
    original = ds.images[0].permute(2, 0, 1).float() / 255
    for key in ("reference", "current"):  # ... and each is still close to the photo (a mild warp)
        assert (item[key] - original).abs().mean() < 0.25
        assert (item[key] - original).abs().mean() > 1e-3
    # no warp and no jitter: the identity
    still = WarpConfig(0, 0, 0, 0, 0, 4, 0, 0, 0)
    assert torch.allclose(warp_image(original, still), original, atol=1e-5)


def test_warp_strengths():
    torch.manual_seed(0)
    grid = random_warp_grid(S, WarpConfig(rotation=0, scale=0, shift=0, perspective=0, elastic=0))
    lin = torch.linspace(-1, 1, S)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    assert torch.allclose(grid[0], torch.stack([xx, yy], -1), atol=1e-5)
    # shift only: every pixel moves by the same offset, at most 8 % of the side (0.16 in [-1, 1])
    for _ in range(20):
        g = random_warp_grid(S, WarpConfig(rotation=0, scale=0, perspective=0, elastic=0))
        d = g[0] - torch.stack([xx, yy], -1)
        assert torch.allclose(d, d[0, 0].expand_as(d), atol=1e-5) and float(d.abs().max()) <= 0.16 + 1e-6
    with pytest.raises(ConfigError):
        WarpConfig(rotation=90)
    assert WarpConfig().scaled(0).rotation == 0 and WarpConfig().scaled(2).rotation == 24


def test_still_pairs_are_deterministic_per_seed(stills_dir):
    ds = SeededItems(StillPairs([stills_dir], S), seed=7)
    a, b = ds[(3, 1)], ds[(3, 1)]
    assert torch.equal(a["reference"], b["reference"]) and torch.equal(a["current"], b["current"])
    c = ds[(4, 1)]
    assert not torch.equal(a["current"], c["current"])
    other = SeededItems(StillPairs([stills_dir], S), seed=8)[(3, 1)]
    assert not torch.equal(a["current"], other["current"])


def test_mixed_pairs_respect_the_ratio(stills_dir, clip):
    cfg = DataConfig(size=S, split_by="frames", val_fraction=0.0, stills=[str(stills_dir)], stills_ratio=0.5)
    mixed = training_pairs([clip], cfg, progress=False)
    assert isinstance(mixed, MixedPairs)
    videos = mixed.videos
    assert len(mixed) == 2 * len(videos) and mixed.num_stills == len(videos)
    for ratio in (0.1, 0.25, 0.5, 0.8):
        m = MixedPairs(videos, mixed.stills, ratio)
        assert abs(m.num_stills / len(m) - ratio) < 1.0 / len(m) + 1e-9
        assert [m.is_still(i) for i in range(len(m))].count(True) == m.num_stills
    # video items come first, untouched; still items cycle through the photos with their own clip ids
    torch.manual_seed(0)
    item = mixed[0]
    assert item["clip"] == 0 and item["cur_index"] == videos[0]["cur_index"]
    still_clips = {mixed[i]["clip"] for i in range(len(videos), len(mixed))}
    assert still_clips == {1, 2, 3, 4}
    with pytest.raises(IndexError):
        mixed[len(mixed)]
    # without stills, the plain PairDataset
    assert isinstance(training_pairs([clip], DataConfig(size=S, split_by="frames"), progress=False), PairDataset)


def test_data_config_stills_fields(stills_dir, tmp_path):
    cfg = DataConfig.from_dict({"stills": [str(stills_dir)], "stills_ratio": 0.5})
    assert cfg.stills == [str(stills_dir)] and cfg.stills_ratio == 0.5 and cfg.stills_warp == 1.0
    assert DataConfig.from_dict(cfg.to_dict()) == cfg
    assert yaml.safe_load(yaml.safe_dump(cfg.to_dict())) == cfg.to_dict()  # the trainer writes it as YAML
    assert DataConfig.from_dict({"stills": str(stills_dir), "stills_ratio": 0.3}).stills == [str(stills_dir)]
    for bad, match in (({"stills_ratio": 0.5}, "stills is not set"),
                       ({"stills": [str(stills_dir)]}, r"in \(0, 1\)"),
                       ({"stills": [str(stills_dir)], "stills_ratio": 1.0}, r"in \(0, 1\)"),
                       ({"stills": [str(stills_dir)], "stills_ratio": -0.1}, r"in \(0, 1\)"),
                       ({"stills": [str(stills_dir)], "stills_ratio": "half"}, "number"),
                       ({"stills": [], "stills_ratio": 0.5}, "non-empty list"),
                       ({"stills": [3], "stills_ratio": 0.5}, r"stills: \[3\]"),
                       ({"stills": [str(stills_dir)], "stills_ratio": 0.5, "stills_warp": 5}, "stills_warp"),
                       ({"still": ["x"]}, "unknown data config key")):
        with pytest.raises(ConfigError, match=match):
            DataConfig.from_dict(bad)
    from imf.train.config import TrainConfig

    train_cfg = TrainConfig.from_dict({"data": {"stills": [str(stills_dir)], "stills_ratio": 0.5}})
    assert train_cfg.data.stills == [str(stills_dir)]
    with pytest.raises(InputError, match="no such file"):
        StillPairs([tmp_path / "missing"], S)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image"):
        StillPairs([empty], S)


def test_trainer_mixes_stills_from_the_yaml_config(tmp_path, stills_dir):
    """`data: {stills: [...], stills_ratio: 0.5}` gives the trainer a mixed set; one step trains on it,
    and the same set built again draws the same items per (epoch, index) (what resuming relies on)."""
    from imf.train.trainer import Trainer

    from train_helpers import fast_config, moving_blob_clip

    clip = tmp_path / "blob.mp4"
    moving_blob_clip(clip)
    base = fast_config(max_steps=1).to_dict()
    base["data"].update(stills=[str(stills_dir)], stills_ratio=0.5)
    config = type(fast_config()).from_dict(yaml.safe_load(yaml.safe_dump(base)))
    trainer = Trainer(config, [str(clip)], tmp_path / "run", progress=False, device="cpu")
    assert isinstance(trainer.train_set, MixedPairs) and trainer.train_set.num_stills > 0
    trainer.fit(max_steps=1)
    assert trainer.step == 1 and math.isfinite(trainer.history[-1]["loss"])
    trainer.close()
    fresh = SeededItems(training_pairs([str(clip)], config.data, progress=False), config.run.seed)
    seeded = SeededItems(trainer.train_set, config.run.seed)
    for key in ((0, len(trainer.train_set) - 1), (3, 0)):
        assert torch.equal(seeded[key]["current"], fresh[key]["current"])
