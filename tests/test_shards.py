"""Shard folders (imf.data.shards) and their pair loader (imf.data.shard_pairs): frames round-trip exactly
(also through the `webdataset` package where it is installed), pairs come from one clip at allowed
distances, DataLoader workers and two gloo ranks read disjoint clips and shards, a resumed stream
continues exactly where it stopped, and `imf train` streams shard folders and saves the position."""

from __future__ import annotations

import json
import socket
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from imf.data.dataset import DataConfig
from imf.data.shard_pairs import ShardLoader, ShardPairDataset, ShardPairStream, shard_sources
from imf.data.shards import (ShardError, ShardReader, ShardWriter, encode_png, is_shard_folder, load_shard_folder,
                             write_manifest)
from imf.errors import InputError

S = 16


def coded_frame(clip: int, i: int, size: int = S) -> np.ndarray:
    """Channel 1 codes the clip, channel 2 the frame index; channel 0 is noise (PNG must keep it exactly)."""
    rng = np.random.default_rng(clip * 1000 + i)
    frame = np.empty((size, size, 3), np.uint8)
    frame[..., 0] = rng.integers(0, 256, (size, size))
    frame[..., 1] = 10 * clip
    frame[..., 2] = 5 * i
    return frame


def make_shards(folder: Path, clips: dict[str, int], per_shard: int = 2, val: dict[str, int] | None = None,
                size: int = S) -> dict[str, list[np.ndarray]]:
    """A shard folder: ``clips`` (name -> frame count) in train shards of ``per_shard`` clips, ``val`` in one."""
    frames_of: dict[str, list[np.ndarray]] = {}
    for split, group in (("train", clips), ("val", val or {})):
        writer = ShardWriter(folder, split)
        for k, (name, n) in enumerate(group.items()):
            if k and k % per_shard == 0:
                writer.close()  # the next clip starts the next shard
            c = len(frames_of)
            frames_of[name] = [coded_frame(c, i, size) for i in range(n)]
            writer.add(name, {"person": f"p{c}"}, [encode_png(f) for f in frames_of[name]])
        writer.close()
    write_manifest(folder, {"dataset": "test", "size": size}, complete=True)
    return frames_of


def clip_and_frame(x: torch.Tensor) -> tuple[int, int]:
    """(clip, frame index) coded in a (3, S, S) item frame."""
    return round(float(x[1].mean()) * 255 / 10), round(float(x[2].mean()) * 255 / 5)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    frames = make_shards(folder, {f"clip{c}": 12 + c for c in range(8)}, per_shard=2, val={"held": 10})
    return folder, frames


CFG = DataConfig(size=S, min_distance=2, max_distance=5, hflip_prob=0.0, shard_pairs_per_clip=4, shard_window=3)


def test_frames_round_trip_exactly(shards):
    folder, frames = shards
    assert is_shard_folder(folder) and shard_sources([folder])
    sf = load_shard_folder(folder)
    assert [c["clip"] for c in sf.clips] == [*[f"clip{c}" for c in range(8)], "held"]
    assert sorted(p.name for p in folder.glob("*.tar")) == [*(f"train-{i:06d}.tar" for i in range(4)), "val-000000.tar"]
    reader = ShardReader()
    for c in sf.clips:
        got = reader.frames(c, list(range(c["frames"])))
        assert all(np.array_equal(a, b) for a, b in zip(got, frames[c["clip"]], strict=True)), c["clip"]
    # any subset, in any order, by random access
    c = sf.clips[5]
    assert [np.array_equal(f, frames["clip5"][i]) for f, i in zip(reader.frames(c, [9, 0, 3]), [9, 0, 3])] == [True] * 3
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["splits"]["train"] == {"clips": 8, "frames": sum(12 + c for c in range(8)), "people": 8, "shards": 4}


def test_webdataset_reads_the_shards(shards):
    wds = pytest.importorskip("webdataset")
    folder, frames = shards
    samples = list(wds.WebDataset(str(folder / "train-000001.tar"), shardshuffle=False).decode("rgb8"))
    assert [s["__key__"] for s in samples] == ["clip2", "clip3"]
    for s in samples:
        n = s["json"]["frames"]
        assert n == len(frames[s["__key__"]])
        for i in range(n):
            assert np.array_equal(s[f"{i:06d}.png"], frames[s["__key__"]][i])


def test_damaged_shard_is_a_clear_error(shards, tmp_path):
    folder, _ = shards
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in folder.iterdir():
        if p.is_file():
            (copy / p.name).write_bytes(p.read_bytes())
    tar = copy / "train-000000.tar"
    with tarfile.open(tar) as tf:
        members = {m.name: m for m in tf.getmembers()}
    png0, header2 = members["clip0.000000.png"].offset_data, members["clip0.000002.png"].offset
    data = bytearray(tar.read_bytes())
    data[png0 + 100: png0 + 200] = b"\0" * 100  # inside frame 0's PNG
    data[header2: header2 + 100] = b"\1" * 100  # frame 2's tar header
    tar.write_bytes(bytes(data))
    clip0 = load_shard_folder(copy).clips[0]
    with pytest.raises(ShardError, match=r"train-000000.tar: frame 0 of clip 'clip0' is not a readable PNG"):
        ShardReader().frames(clip0, [0])
    with pytest.raises(ShardError, match=rf"train-000000.tar: .* at byte {header2}"):
        ShardReader().frames(clip0, [2])
    with pytest.raises(ShardError, match="no manifest.json"):
        load_shard_folder(tmp_path)


def test_stream_pairs_come_from_one_clip_at_allowed_distances(shards):
    folder, _ = shards
    stream = ShardPairStream([folder], CFG, batch_size=4)
    assert len(stream.clips) == 8 and len(stream.shards) == 4
    seen = set()
    for _, batch in zip(range(16), ShardLoader(stream)):  # 64 pairs: two passes of 8 clips × 4 pairs
        for k in range(4):
            (c_r, f_r), (c_c, f_c) = clip_and_frame(batch["reference"][k]), clip_and_frame(batch["current"][k])
            assert c_r == c_c == int(batch["clip"][k])
            assert (f_r, f_c) == (int(batch["ref_index"][k]), int(batch["cur_index"][k]))
            assert 2 <= abs(f_r - f_c) <= 5
            seen.add(c_c)
    assert seen == set(range(8))  # the held-out clip is not in the train split
    assert stream.position == 16
    val = ShardPairDataset([folder], CFG, split="val")
    assert len(val) == 10 and {clip_and_frame(val[i]["current"])[0] for i in range(len(val))} == {8}
    with pytest.raises(InputError, match="data.size"):
        ShardPairStream([folder], DataConfig(size=32))


def test_augmentation_as_pair_dataset(shards):
    folder, _ = shards
    cfg = DataConfig(size=S, hflip_prob=0.5, brightness=0.3, contrast=0.3, saturation=0.3, shard_pairs_per_clip=2)
    plain = DataConfig(size=S, hflip_prob=0.0, shard_pairs_per_clip=2)
    a = next(iter(ShardLoader(ShardPairStream([folder], cfg, batch_size=8))))
    b = next(iter(ShardLoader(ShardPairStream([folder], plain, batch_size=8))))
    assert torch.equal(a["cur_index"], b["cur_index"])  # the same pairs, augmentation apart
    assert not torch.equal(a["current"], b["current"])
    from imf.data.augment import augment_pair

    # item 0's augmentation is augment_pair with the item's own seeded generator, on both frames at once
    stream = ShardPairStream([folder], cfg, batch_size=8)
    c, cur, ref, seed = stream._window_pairs(0, 0, 0, stream.pass_clips(0)[: cfg.shard_window])[0]
    assert (cur, ref) == (int(a["cur_index"][0]), int(a["ref_index"][0]))
    x = torch.stack([b["reference"][0], b["current"][0]])
    y = augment_pair(x, 0.5, 0.3, 0.3, 0.3, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(y, torch.stack([a["reference"][0], a["current"][0]]))


def _batches(stream: ShardPairStream, n: int) -> list[dict]:
    out = []
    for batch in ShardLoader(stream):
        out.append(batch)
        if len(out) == n:
            return out
    raise AssertionError("the stream ended")


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def test_workers_read_disjoint_clips_and_resume_exactly(shards):
    folder, _ = shards
    make = lambda: ShardPairStream([folder], CFG, batch_size=2, num_workers=2)  # noqa: E731
    stream = make()
    w0, w1 = stream.pass_clips(0, 0), stream.pass_clips(0, 1)
    assert not set(w0) & set(w1) and set(w0) | set(w1) == set(range(8))
    shards_of = lambda cs: {stream.clips[c]["shard"] for c in cs}  # noqa: E731
    assert not shards_of(w0) & shards_of(w1)  # 4 shards for 2 slots: whole shards each
    full = _batches(make(), 18)  # a pass is 4 clips × 4 pairs = 8 batches per worker
    # batch b comes from worker b mod 2: the first pass of each worker is its own clips
    for w, clips in ((0, w0), (1, w1)):
        first = full[w::2][: len(clips) * 4 // 2]  # 4 pairs per clip, 2 per batch
        assert {int(c) for b in first for c in b["clip"]} == set(clips)
    # resumed after 3 batches (odd: the workers stopped at different places) = uninterrupted
    head = make()
    part = _batches(head, 3)
    resumed = make()
    assert resumed.load_state_dict(head.state_dict())
    rest = _batches(resumed, 15)
    assert _same(part + rest, full)
    # another layout: a warning, the stream starts over
    other = ShardPairStream([folder], CFG, batch_size=2, num_workers=1)
    assert not other.load_state_dict(head.state_dict()) and other.position == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank: int, port: int, folder: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        make = lambda: ShardPairStream([folder], CFG, batch_size=2)  # noqa: E731  rank/world from torch.distributed
        stream = make()
        assert (stream.rank, stream.world_size) == (rank, 2)
        mine = stream.pass_clips(0)
        first_pass = _batches(make(), len(mine) * 2)  # 4 pairs per clip, 2 per batch: one whole pass
        head = make()
        part = _batches(head, 3)
        resumed = make()
        resumed.load_state_dict(head.state_dict())
        rest = _batches(resumed, len(mine) * 2 - 3)
        torch.save({"clips": mine, "shards": sorted({stream.clips[c]["shard"] for c in mine}),
                    "seen": sorted({int(c) for b in first_pass for c in b["clip"]}),
                    "resumed_equal": _same(part + rest, first_pass)}, f"{out}/rank{rank}.pt")
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_read_disjoint_shards_and_resume(shards, tmp_path):
    folder, _ = shards
    mp.spawn(_rank_worker, args=(_free_port(), str(folder), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert not set(r0["clips"]) & set(r1["clips"]) and set(r0["clips"]) | set(r1["clips"]) == set(range(8))
    assert not set(r0["shards"]) & set(r1["shards"]) and len(r0["shards"]) == len(r1["shards"]) == 2
    assert r0["seen"] == sorted(r0["clips"]) and r1["seen"] == sorted(r1["clips"])  # what each rank really read
    assert r0["resumed_equal"] and r1["resumed_equal"]


def test_fewer_shards_than_slots_deals_clips(tmp_path):
    make_shards(tmp_path, {f"c{c}": 8 for c in range(5)}, per_shard=5)  # one shard, 5 clips
    stream = ShardPairStream([tmp_path], CFG, batch_size=2, num_workers=2, rank=1, world_size=2)  # 4 slots
    clips = [set(ShardPairStream([tmp_path], CFG, batch_size=2, num_workers=2, rank=r, world_size=2).pass_clips(0, w))
             for r in (0, 1) for w in (0, 1)]
    assert all(clips) and sum(len(c) for c in clips) == 5 and set().union(*clips) == set(range(5))
    assert repr(stream).startswith("ShardPairStream(")
    with pytest.raises(InputError, match="cannot feed"):
        ShardPairStream([tmp_path], CFG, batch_size=2, num_workers=3, rank=0, world_size=2)


def test_trainer_streams_shards_and_resumes_the_position(tmp_path, monkeypatch):
    sys.path.insert(0, str(Path(__file__).parent))
    from train_helpers import fast_config

    from imf.train.checkpointing import load_latest
    from imf.train.trainer import Trainer

    monkeypatch.setenv("IMF_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "shards"
    make_shards(folder, {f"clip{c}": 10 for c in range(4)}, val={"v": 8}, size=64)  # the tiny config's size
    config = fast_config(batch_size=2)
    trainer = Trainer(config, [str(folder)], tmp_path / "run", progress=False)
    assert trainer.sampler is None and isinstance(trainer.val_set, ShardPairDataset)
    trainer.fit(max_steps=2)
    assert trainer.stream.state_dict()["position"] == 2
    assert load_latest(tmp_path / "run")["data"]["position"] == 2
    resumed = Trainer(config, [str(folder)], tmp_path / "run", resume=True, progress=False)
    assert resumed.step == 2 and resumed.stream.stream.position == 2
    expected = _batches(ShardPairStream([folder], config.data, seed=config.run.seed, batch_size=2), 3)[2]
    got = next(iter(resumed._loader()))
    assert all(torch.equal(got[k], expected[k]) for k in ("clip", "cur_index", "ref_index"))
    with pytest.raises(InputError, match="mixes shard folders"):
        shard_sources([folder, tmp_path / "run"])
