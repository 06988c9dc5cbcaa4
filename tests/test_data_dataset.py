"""PairDataset: pairs from one clip at allowed distances, splits, augmentation, bad clips, workers, cache."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from imf.data import dataset as dataset_module
from imf.data.augment import augment_pair
from imf.data.dataset import DataConfig, PairDataset, find_clips, held_out_frames
from imf.data.video import VideoWriter
from imf.errors import ConfigError, InputError

S = 16  # model resolution in these tests
STEP = 8  # grey level step between frames: frame i of clip c has channel c = 8 * i + 40


def clip_frame(clip: int, i: int, h: int = 40, w: int = 48) -> np.ndarray:
    """Flat colour coding (clip, frame): channel ``clip`` carries the frame index, others stay dark;
    the left quarter is white so that a horizontal flip is visible."""
    frame = np.full((h, w, 3), 10, np.uint8)
    frame[..., clip] = 40 + STEP * i
    frame[:, : w // 4] = 250
    return frame


def write_clip(path, clip: int, n: int) -> None:
    with VideoWriter(path, 25, 48, 40, crf=0, preset="veryfast") as writer:
        for i in range(n):
            writer.write(clip_frame(clip, i))


def decode_index(x: torch.Tensor, clip: int) -> float:
    """Frame index coded in a (3, S, S) item frame (centre region, away from the white band)."""
    level = float(x[clip, :, S // 2 :].mean()) * 255
    return (level - 40) / STEP


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for c, n in enumerate((20, 24, 20)):
        write_clip(folder / f"clip{c}.mp4", c, n)
    return folder


def test_pairs_come_from_one_clip_at_allowed_distances(clips):
    cfg = DataConfig(size=S, min_distance=2, max_distance=5, hflip_prob=0.0)
    ds = PairDataset([clips], cfg, split="all")
    assert len(ds.clip_paths) == 3
    assert len(ds) == 20 + 24 + 20  # every frame has a partner at distance 2..5
    seen = set()
    for index in range(len(ds)):
        item = ds[index]
        assert item["reference"].shape == (3, S, S) and item["current"].dtype == torch.float32
        c = int(ds.clip_paths[item["clip"]].stem[-1])
        d = abs(item["ref_index"] - item["cur_index"])
        assert 2 <= d <= 5
        seen.add(d)
        # Both frames really are those frames of that clip (flat colours survive crf 0 and resizing).
        assert decode_index(item["current"], c) == pytest.approx(item["cur_index"], abs=0.3)
        assert decode_index(item["reference"], c) == pytest.approx(item["ref_index"], abs=0.3)
        for other in {0, 1, 2} - {c}:
            assert float(item["current"][other, :, S // 2 :].mean()) < 0.1
    assert seen == {2, 3, 4, 5}


def test_split_by_frames_is_disjoint_and_covers_the_clip(clips):
    cfg = DataConfig(size=S, split_by="frames", val_fraction=0.25, max_distance=3)
    train = PairDataset([clips / "clip1.mp4"], cfg, split="train")
    val = PairDataset([clips / "clip1.mp4"], cfg, split="val")
    assert train.clip_range(0) == (0, 18) and val.clip_range(0) == (18, 24)
    train_frames = {i for k in range(len(train)) for i in (train[k]["ref_index"], train[k]["cur_index"])}
    val_frames = {i for k in range(len(val)) for i in (val[k]["ref_index"], val[k]["cur_index"])}
    assert train_frames == set(range(18)) and val_frames == set(range(18, 24))
    held = held_out_frames(clips / "clip1.mp4", S, val_fraction=0.25)
    assert held.indices == list(range(18, 24)) and held.frames.shape == (6, S, S, 3)
    assert held.reference.shape == (S, S, 3)
    assert decode_index(torch.from_numpy(held.reference).permute(2, 0, 1) / 255, 1) == pytest.approx(0, abs=0.3)


def test_split_by_clip(clips):
    cfg = DataConfig(size=S, split_by="clip", val_fraction=0.3)
    train = PairDataset([clips], cfg, split="train")
    val = PairDataset([clips], cfg, split="val")
    assert len(val.clip_paths) == 1 and len(train.clip_paths) == 2
    assert set(train.clip_paths) | set(val.clip_paths) == set(find_clips([clips])[i].path for i in range(3))
    assert not set(train.clip_paths) & set(val.clip_paths)
    with pytest.raises(InputError, match="split_by='frames'"):
        PairDataset([clips / "clip0.mp4"], cfg, split="val")


def test_flip_is_applied_to_both_frames(clips):
    base = DataConfig(size=S, max_distance=3, hflip_prob=1.0)
    flipped = PairDataset([clips / "clip0.mp4"], base, split="all", augment=True)
    plain = PairDataset([clips / "clip0.mp4"], base, split="all", augment=False)
    torch.manual_seed(3)
    a = flipped[5]
    torch.manual_seed(3)
    b = plain[5]
    assert (a["ref_index"], a["cur_index"]) == (b["ref_index"], b["cur_index"])
    for key in ("reference", "current"):
        assert float(b[key][:, :, : S // 4 - 1].mean()) > 0.9  # white band on the left
        assert torch.equal(a[key], b[key].flip(-1))


def test_colour_jitter_is_the_same_on_both_frames():
    torch.manual_seed(0)
    frame = torch.rand(3, 8, 8)
    out = augment_pair(torch.stack([frame, frame]), 0.5, 0.4, 0.4, 0.4)  # (2, 3, 8, 8)
    assert torch.equal(out[0], out[1])
    assert not torch.allclose(out[0], frame) and not torch.allclose(out[0], frame.flip(-1))
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_bad_clips_are_skipped_with_a_warning(clips, tmp_path, caplog):
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x01garbage" * 100)
    write_clip(tmp_path / "one_frame.mp4", 0, 1)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# clips\n{clips / 'clip2.mp4'}\nbroken.mp4\n\none_frame.mp4\nmissing.mp4\n")
    with caplog.at_level(logging.WARNING):
        ds = PairDataset([listing], DataConfig(size=S), split="all")
    assert [p.name for p in ds.clip_paths] == ["clip2.mp4"]
    for name in ("broken.mp4", "one_frame.mp4", "missing.mp4"):
        assert name in caplog.text
    with pytest.raises(InputError, match="no usable clip"):
        PairDataset([tmp_path / "broken.mp4"], DataConfig(size=S), split="all")
    with pytest.raises(InputError, match="no such file"):
        PairDataset([tmp_path / "nope"], DataConfig(size=S))


def test_multi_worker_dataloader(clips):
    ds = PairDataset([clips], DataConfig(size=S, max_distance=4), split="all")
    ds[0]  # opens a memmap in this process; it must not travel to the workers
    assert pickle.loads(pickle.dumps(ds))._arrays == {}
    loader = DataLoader(ds, batch_size=16, shuffle=True, num_workers=2)
    seen = []
    for batch in loader:
        assert batch["reference"].shape[1:] == (3, S, S)
        seen.extend(zip(batch["clip"].tolist(), batch["cur_index"].tolist()))
    assert len(seen) == len(ds) == len(set(seen))


def test_frame_cache_is_reused(clips, monkeypatch, caplog):
    cfg = DataConfig(size=S)
    PairDataset([clips / "clip0.mp4"], cfg, split="all")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr("imf.data.frame_cache.iter_frames", no_decoding)
    ds = PairDataset([clips / "clip0.mp4"], cfg, split="all")
    assert len(ds) == 20
    with pytest.raises(InputError, match="no usable clip"):  # another size is another cache: decodes
        PairDataset([clips / "clip0.mp4"], DataConfig(size=S * 2), split="all")
    assert "decoded again" in caplog.text


def test_config_from_dict():
    cfg = DataConfig.from_dict({"size": 32, "max_distance": 10, "split_by": "frames", "brightness": 0.2})
    assert cfg.size == 32 and cfg.split_by == "frames"
    assert DataConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="frame_size"):
        DataConfig.from_dict({"frame_size": 64})
    for bad in ({"split_by": "random"}, {"val_fraction": 1.0}, {"size": 64.0}, {"max_distance": 0},
                {"min_distance": 5, "max_distance": 3}, {"hflip_prob": 2}):
        with pytest.raises(ConfigError):
            DataConfig.from_dict(bad)


def test_usable_current_frames():
    # With min_distance 3 in a 5-frame range, only frames that have a partner 3 away qualify.
    assert dataset_module.usable_current_frames(0, 5, 3).tolist() == [0, 1, 3, 4]
    assert dataset_module.usable_current_frames(10, 13, 0).tolist() == [10, 11, 12]
    assert dataset_module.usable_current_frames(0, 3, 3).tolist() == []


def test_frame_folders_are_clips(tmp_path):
    from PIL import Image

    root = tmp_path / "frames"
    for c in (0, 2):
        folder = root / f"person{c}" / "take"
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(clip_frame(c, i)).save(folder / f"{i:04d}.png")
    found = find_clips([root])
    assert [c.key for c in found] == ["person0/take", "person2/take"]
    ds = PairDataset([root], DataConfig(size=S, min_distance=1, max_distance=2), split="all", augment=False)
    item = ds[len(ds) - 1]
    assert ds.clip_paths[item["clip"]].parent.name == "person2"
    assert decode_index(item["current"], 2) == pytest.approx(item["cur_index"], abs=0.3)  # PNGs: exact levels
