"""Training pairs (x_r, x_c) out of shard folders (``imf.data.shards``): a stream for training on many GPUs,
and a map-style dataset for validation.

``ShardPairStream`` (an IterableDataset) is what ``imf train --data DIR`` uses when DIR is a shard folder:

- **Slots.** Under torchrun each rank has ``num_workers`` DataLoader workers (one when 0); slot
  ``rank · W + worker`` of ``world_size · W`` reads its own clips. Per pass p over the data ("epoch" of a
  slot), the shards are permuted by (seed, p) and dealt to the slots: when there are at least as many
  shards as slots, whole shards, each to the slot with the fewest clips so far (so the slots' passes are
  about as long); else clip by clip. Every clip is read by exactly one slot per pass: the slots' clips
  and shards are disjoint. Then each slot shuffles its clips by (seed, p, slot).
- **Pairs.** ``data.shard_pairs_per_clip`` current frames are drawn from each clip (distinct while the clip
  has that many usable frames), each with a reference drawn as ``PairDataset`` does
  (``imf.data.dataset.reference_for``: ``min_distance`` ≤ distance ≤ ``max_distance``), and the same
  augmentation (``imf.data.augment.augment_pair``: flip, brightness, contrast, saturation, one draw for
  both frames). The pairs of ``data.shard_window`` clips in a row are shuffled together, and only their
  frames are read (a frame is a tar member: the others are skipped by a seek).
- **Endless and deterministic.** Each slot goes on to its next pass by itself, so no rank runs dry
  before the others (a DDP step would hang on it). Every draw is seeded by (seed, pass, clip, pair), so
  the stream is the same on every run.
- **Resumable.** DataLoader takes a rank's batches from its workers in turn (batch b from worker
  b mod W), so "the first P batches of this rank" fixes how far each worker got (a loader started at P
  has its DataLoader worker w play worker (w + P) mod W). ``ShardLoader`` counts
  the batches it hands out; its ``state_dict()`` (the trainer saves it in the checkpoint) restores that
  position, and the workers skip what came before it by arithmetic, without reading it. A position only
  means something for the same shards, seed, world size, worker count and batch size: with other values
  ``load_state_dict`` warns and starts the stream over.

``ShardPairDataset`` gives ``PairDataset``'s items (one per usable current frame of every clip of the split,
the reference drawn from torch's global generator) by random access to the shards: the trainer's
validation split (the metadata's val and test clips) and benchmarks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from imf.data.augment import augment_pair
from imf.data.dataset import DataConfig, reference_for, usable_current_frames
from imf.data.shards import ShardError, ShardReader, decode_frame, is_shard_folder, load_shard_folder, select_split
from imf.errors import InputError

log = logging.getLogger(__name__)


def shard_sources(sources: Sequence[str | os.PathLike]) -> bool:
    """True when every source is a shard folder, False when none is; InputError for a mix."""
    kinds = [is_shard_folder(s) for s in sources]
    if any(kinds) and not all(kinds):
        shards = [str(s) for s, k in zip(sources, kinds) if k]
        raise InputError(f"--data mixes shard folders ({', '.join(shards)}) with clips: give one kind")
    return bool(kinds) and all(kinds)


def _load_clips(sources: Sequence[str | os.PathLike], split: str, config: DataConfig) -> list[dict[str, Any]]:
    """The usable clips of ``split`` in all shard folders, in order; a clip with no pair is skipped."""
    clips, frame_sizes = [], set()
    for s in sources:
        folder = load_shard_folder(s)
        frame_sizes.add(folder.manifest.get("size"))
        for c in select_split(folder.clips, split):
            if c["frames"] < 2 or len(usable_current_frames(0, c["frames"], config.min_distance)) == 0:
                log.warning("skipping shard clip %s: too short (%d frame(s), min_distance=%d)", c["clip"],
                            c["frames"], config.min_distance)
                continue
            clips.append(c)
    bad = frame_sizes - {config.size}
    if bad:
        raise InputError(f"the shard folders hold {sorted(map(str, frame_sizes))} px frames; data.size is "
                         f"{config.size}: prepare them with --size {config.size}")
    if not clips:
        raise InputError(f"no usable clip of split {split!r} in {[str(s) for s in sources]}")
    return clips


def _mix(*parts: int) -> int:
    """A seed from integers (the same on every machine), below 2^63."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h * 6364136223846793005 + int(p) + 1442695040888963407) % (1 << 64)
    return h >> 1


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _to_pair(ref: np.ndarray, cur: np.ndarray) -> torch.Tensor:
    pair = np.stack([ref, cur])  # (2, S, S, 3) uint8
    return torch.from_numpy(pair).permute(0, 3, 1, 2).float().div_(255.0)  # (2, 3, S, S)


class ShardPairStream(IterableDataset):
    """The endless, resumable stream of training pairs of one rank; see the module docstring.

    Items are ``PairDataset``'s: {"reference", "current": (3, S, S) float32 in [0, 1], "clip": index into
    ``self.clips``, "ref_index", "cur_index": frame indices in the clip}. Iterate it through a
    ``ShardLoader`` (which batches, runs the workers and keeps the position).

    rank, world_size: this process's place under torchrun (default: torch.distributed's when it is
    initialised, else 0 and 1). batch_size: items per batch of this rank (the trainer's local batch);
    num_workers: DataLoader workers per rank. Both fix which worker makes which batch.
    """

    def __init__(self, sources: Sequence[str | os.PathLike], config: DataConfig, split: str = "train", *,
                 seed: int = 0, batch_size: int = 1, num_workers: int = 0, rank: int | None = None,
                 world_size: int | None = None, augment: bool | None = None) -> None:
        super().__init__()
        self.config, self.split, self.seed = config, split, int(seed)
        self.batch_size, self.num_workers = int(batch_size), int(num_workers)
        self.rank, self.world_size = _rank_world(rank, world_size)
        self.augment = (split == "train") if augment is None else augment
        self.sources = [str(s) for s in sources]
        self.clips = _load_clips(sources, split, config)
        by_shard: dict[tuple[str, str], list[int]] = {}
        for i, c in enumerate(self.clips):
            by_shard.setdefault((c["folder"], c["shard"]), []).append(i)
        self.shards = sorted(by_shard)
        self._by_shard = [by_shard[s] for s in self.shards]  # clip indices of each shard, in file order
        slots = self.world_size * max(1, self.num_workers)
        if len(self.clips) < slots:
            raise InputError(f"{len(self.clips)} {split} clip(s) cannot feed {self.world_size} rank(s) × "
                             f"{max(1, self.num_workers)} worker(s): every worker needs a clip of its own; "
                             f"lower run.num_workers")
        self.position = 0  # batches of this rank handed out (by ShardLoader); where workers start
        self._reader = ShardReader()

    # ---- layout and position ------------------------------------------------------------------------
    def layout(self) -> dict[str, Any]:
        """What a saved position depends on."""
        return {"shards": [f"{os.path.basename(f)}/{s}" for f, s in self.shards], "clips": len(self.clips),
                "split": self.split, "seed": self.seed, "world_size": self.world_size,
                "num_workers": self.num_workers, "batch_size": self.batch_size,
                "pairs_per_clip": self.config.shard_pairs_per_clip, "window": self.config.shard_window,
                "min_distance": self.config.min_distance, "max_distance": self.config.max_distance}

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "layout": self.layout()}

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """Restore a saved position; False (with a warning, the stream starting over) when the layout differs."""
        layout = self.layout()
        if state.get("layout") != layout:
            changed = sorted(k for k in layout if state.get("layout", {}).get(k) != layout[k])
            log.warning("the saved data position was for other %s; the shard stream starts over",
                        ", ".join(changed) or "settings")
            self.position = 0
            return False
        self.position = int(state["position"])
        return True

    def pass_clips(self, epoch: int, worker: int = 0) -> list[int]:
        """The clips (indices into ``self.clips``) that DataLoader worker ``worker`` of this rank reads in
        pass ``epoch``, in its order."""
        workers = max(1, self.num_workers)
        return self._slot_clips(epoch, self.rank * workers + worker, self.world_size * workers)

    # ---- the plan of one slot ------------------------------------------------------------------------
    def _slot_clips(self, epoch: int, slot: int, slots: int) -> list[int]:
        """This slot's clips in pass ``epoch``, in the order it reads them."""
        g = np.random.default_rng(_mix(self.seed, epoch, 0x5AFE))
        order = g.permutation(len(self.shards)).tolist()
        if len(self.shards) >= slots:  # whole shards, each to the slot with the fewest clips so far
            load, owner = [0] * slots, {}
            for s in order:
                j = min(range(slots), key=lambda j: (load[j], j))
                owner[s], load[j] = j, load[j] + len(self._by_shard[s])
            mine = [c for s in order if owner[s] == slot for c in self._by_shard[s]]
        else:  # fewer shards than slots: deal clips, in shard order
            mine = [c for s in order for c in self._by_shard[s]][slot::slots]
        g = np.random.default_rng(_mix(self.seed, epoch, slot, 0xC11))
        return [mine[i] for i in g.permutation(len(mine))]

    def _clip_pairs(self, epoch: int, c: int) -> list[tuple[int, int, int, int]]:
        """(clip, current, reference, augmentation seed) of clip c's pairs in pass ``epoch``."""
        n, cfg = int(self.clips[c]["frames"]), self.config
        usable = usable_current_frames(0, n, cfg.min_distance)
        k = cfg.shard_pairs_per_clip
        g = np.random.default_rng(_mix(self.seed, epoch, c, 0xC0))
        currents = g.choice(usable, size=k, replace=len(usable) < k)
        pairs, gen = [], torch.Generator()
        for j, cur in enumerate(currents.tolist()):
            gen.manual_seed(_mix(self.seed, epoch, c, j, 1))
            pairs.append((c, cur, reference_for(cur, 0, n, cfg, gen), _mix(self.seed, epoch, c, j, 2)))
        return pairs

    def _window_pairs(self, epoch: int, slot: int, w: int, clips: list[int]) -> list[tuple[int, int, int, int]]:
        """The pairs of window ``w`` (clips ``clips``) of a slot's pass, shuffled together."""
        pairs = [p for c in clips for p in self._clip_pairs(epoch, c)]
        g = np.random.default_rng(_mix(self.seed, epoch, slot, w, 0x3))
        return [pairs[i] for i in g.permutation(len(pairs))]

    def _windows(self, slot: int, slots: int) -> Iterator[tuple[int, int, int, list[int]]]:
        """(pass, window index, pair count, clips) of this slot's windows, pass after pass (never ends).
        The count is known without drawing the pairs, so a resumed worker skips windows by arithmetic."""
        epoch, window, k = 0, self.config.shard_window, self.config.shard_pairs_per_clip
        while True:
            clips = self._slot_clips(epoch, slot, slots)
            for w, start in enumerate(range(0, len(clips), window)):
                chunk = clips[start:start + window]
                yield epoch, w, k * len(chunk), chunk
            epoch += 1

    # ---- iteration -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        loader_worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if workers != max(1, self.num_workers):  # the position and the slots assume the stream's worker count
            raise ValueError(f"a ShardPairStream made for num_workers={self.num_workers} is read by {workers} "
                             f"DataLoader worker(s): iterate it through ShardLoader")
        # Batch b of the rank is made by worker b mod W. A loader started at `position` asks its workers in
        # turn from worker 0, so DataLoader worker w plays worker (w + position) mod W of the whole run.
        worker = (loader_worker + self.position) % workers
        slot, slots = self.rank * workers + worker, self.world_size * workers
        # batches b < position with b mod W == worker were this worker's: skip their items
        skip = max(0, -(-(self.position - worker) // workers)) * self.batch_size
        for epoch, w, count, clips in self._windows(slot, slots):
            if skip >= count:
                skip -= count
                continue
            pairs, skip = self._window_pairs(epoch, slot, w, clips)[skip:], 0
            wanted: dict[int, set[int]] = {}
            for c, cur, ref, _ in pairs:
                wanted.setdefault(c, set()).update((cur, ref))
            data = {c: self._reader.read(self.clips[c], sorted(idx)) for c, idx in wanted.items()}
            for c, cur, ref, aug_seed in pairs:
                yield self._item(c, cur, ref, aug_seed, data[c])

    def _item(self, c: int, cur: int, ref: int, aug_seed: int, data: dict[int, bytes]) -> dict[str, Any]:
        entry = self.clips[c]
        x = _to_pair(decode_frame(data[ref], entry, ref), decode_frame(data[cur], entry, cur))
        if self.augment:
            cfg, g = self.config, torch.Generator().manual_seed(aug_seed)
            x = augment_pair(x, cfg.hflip_prob, cfg.brightness, cfg.contrast, cfg.saturation, generator=g)
        return {"reference": x[0], "current": x[1], "clip": c, "ref_index": ref, "cur_index": cur}

    def __repr__(self) -> str:
        return (f"ShardPairStream(split={self.split!r}, clips={len(self.clips)}, shards={len(self.shards)}, "
                f"rank={self.rank}/{self.world_size}, workers={self.num_workers}, position={self.position})")


class ShardLoader:
    """Batches of a ``ShardPairStream`` for this rank, resumable like torchdata's StatefulDataLoader:
    ``state_dict()`` is the position after the last batch handed out, and a new iteration (or a loader
    restored with ``load_state_dict``) continues from there. It has no length: the stream never ends."""

    def __init__(self, stream: ShardPairStream, pin_memory: bool = False) -> None:
        self.stream, self.pin_memory = stream, pin_memory

    def __iter__(self) -> Iterator[dict[str, Any]]:
        s = self.stream
        loader = DataLoader(s, batch_size=s.batch_size, num_workers=s.num_workers, pin_memory=self.pin_memory,
                            persistent_workers=False)  # workers start at s.position (pickled with it)
        for batch in loader:
            s.position += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        return self.stream.load_state_dict(state)


class ShardPairDataset(Dataset):
    """``PairDataset``'s items out of shard folders, by random access (validation, benchmarks).

    One item per usable current frame of every clip of ``split`` ("val": every clip the metadata does not
    put in "train"); the reference is drawn from torch's global generator (the trainer's ``SeededItems``
    seeds it per item). augment: the config's flip and jitter (default: only for "train")."""

    def __init__(self, sources: Sequence[str | os.PathLike], config: DataConfig, split: str = "val",
                 augment: bool | None = None) -> None:
        self.config, self.split = config, split
        self.augment = (split == "train") if augment is None else augment
        self.clips = _load_clips(sources, split, config)
        self._current = [usable_current_frames(0, c["frames"], config.min_distance) for c in self.clips]
        self._offsets = np.cumsum([0] + [len(u) for u in self._current])
        self._reader = ShardReader()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        c = int(np.searchsorted(self._offsets, index, side="right")) - 1
        clip, cur = self.clips[c], int(self._current[c][index - self._offsets[c]])
        ref = reference_for(cur, 0, int(clip["frames"]), self.config)
        ref_frame, cur_frame = self._reader.frames(clip, [ref, cur])
        x = _to_pair(ref_frame, cur_frame)
        if self.augment:
            cfg = self.config
            x = augment_pair(x, cfg.hflip_prob, cfg.brightness, cfg.contrast, cfg.saturation)
        return {"reference": x[0], "current": x[1], "clip": c, "ref_index": ref, "cur_index": cur}

    def __repr__(self) -> str:
        return f"ShardPairDataset(split={self.split!r}, clips={len(self.clips)}, items={len(self)})"


__all__ = ["ShardError", "ShardLoader", "ShardPairDataset", "ShardPairStream", "shard_sources"]
