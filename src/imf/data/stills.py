"""Pseudo-video pairs from still face photos, and their mix with the real clips (more identities than the clips have).

A still photo gives one identity but no motion. ``StillPairs`` makes a (reference, current) pair of it by
warping the photo twice, **independently**: each frame gets its own random affine (rotation ±12°, scale
±12 %, shift ±8 % of the side), a mild perspective (corners moved by up to 4 % of the side, a
homography), a smooth thin-plate-like displacement (a random 4×4 grid of offsets up to 1.5 % of the
side, bicubically upsampled) and its own colour jitter (brightness, contrast, saturation ±15 %). The
model must then explain the difference between the two frames as motion, while the appearance comes
from the reference, as with video pairs. All of it is plain torch (``affine_grid``-style sampling with
``grid_sample``, reflection padding so no black borders appear); torchvision is not used.

``MixedPairs`` puts the stills beside a ``PairDataset``: with ratio r, the dataset has
``ceil(n / (1 - r))`` items for n video items; item i < n is video item i, the others are still pairs
(still ``(i - n) mod stills``). So exactly a share ≈ r of each epoch's items are stills, and, since the
trainer shuffles items, each batch holds r of its items in expectation (hypergeometric around it). Items
are the same dict as ``PairDataset``'s; a still's ``clip`` is ``len(video clips) + still index`` and its
frame indices are 0. Random draws use torch's global generator, so the trainer's ``SeededItems``
(seeded per (epoch, index)) makes every item, and a resumed run, deterministic.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from imf.data.augment import augment_pair
from imf.data.video import is_image_file, list_frame_files, resize_center_crop
from imf.errors import ConfigError, InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarpConfig:
    """Strengths of the independent per-frame warps (see the module docstring).

    rotation: degrees (±). scale: relative (±). shift: fraction of the side (±, each axis).
    perspective: corner displacement as a fraction of the side. elastic: amplitude of the smooth
    displacement field as a fraction of the side; elastic_grid: its control grid (n × n).
    brightness, contrast, saturation: colour jitter strengths (factor in [1 - s, 1 + s]), per frame.
    """

    rotation: float = 12.0
    scale: float = 0.12
    shift: float = 0.08
    perspective: float = 0.04
    elastic: float = 0.015
    elastic_grid: int = 4
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.15

    def __post_init__(self) -> None:
        limits = {"rotation": 45.0, "scale": 0.5, "shift": 0.3, "perspective": 0.2, "elastic": 0.1,
                  "brightness": 1.0, "contrast": 1.0, "saturation": 1.0}
        for name, hi in limits.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= hi:
                raise ConfigError(f"stills warp {name} must be a number in [0, {hi}], got {value!r}")
        if not isinstance(self.elastic_grid, int) or self.elastic_grid < 2:
            raise ConfigError(f"stills warp elastic_grid must be an integer >= 2, got {self.elastic_grid!r}")

    def scaled(self, factor: float) -> WarpConfig:
        """The same warp with its geometric strengths times ``factor`` (colour jitter unchanged)."""
        return WarpConfig(min(45.0, self.rotation * factor), min(0.5, self.scale * factor),
                          min(0.3, self.shift * factor), min(0.2, self.perspective * factor),
                          min(0.1, self.elastic * factor), self.elastic_grid,
                          self.brightness, self.contrast, self.saturation)


def _uniform(n: int, strength: float) -> torch.Tensor:
    """n draws from U(-strength, strength) out of torch's global generator."""
    return (torch.rand(n) * 2.0 - 1.0) * strength


def _homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """The 3 × 3 homography taking 4 points ``src`` (4, 2) to ``dst`` (4, 2) (float64 solve)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src.tolist(), dst.tolist()):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    h = torch.linalg.solve(torch.tensor(rows, dtype=torch.float64), torch.tensor(rhs, dtype=torch.float64))
    return torch.cat([h, h.new_ones(1)]).reshape(3, 3).float()


def random_warp_grid(size: int, warp: WarpConfig) -> torch.Tensor:
    """A (1, size, size, 2) ``grid_sample`` grid: for each output pixel, where to read the source, in
    normalized [-1, 1] coordinates (x, y). Draws from torch's global generator."""
    angle = math.radians(float(_uniform(1, warp.rotation)))
    scale = 1.0 + float(_uniform(1, warp.scale))
    tx, ty = (_uniform(2, warp.shift) * 2.0).tolist()  # a fraction of the side is twice that in [-1, 1]
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    affine = torch.tensor([[cos, -sin, tx], [sin, cos, ty], [0.0, 0.0, 1.0]])  # output -> source
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    moved = corners + _uniform(8, warp.perspective * 2.0).reshape(4, 2)
    matrix = affine @ _homography(corners, moved)

    lin = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    points = torch.stack([xx, yy, torch.ones_like(xx)], dim=-1).reshape(-1, 3)  # (S*S, 3)
    mapped = points @ matrix.T
    grid = (mapped[:, :2] / mapped[:, 2:].clamp_min(1e-6)).reshape(1, size, size, 2)
    if warp.elastic > 0:
        n = warp.elastic_grid
        offsets = _uniform(2 * n * n, warp.elastic * 2.0).reshape(1, 2, n, n)
        field = F.interpolate(offsets, size=(size, size), mode="bicubic", align_corners=True)
        grid = grid + field.permute(0, 2, 3, 1)
    return grid


def warp_image(image: torch.Tensor, warp: WarpConfig) -> torch.Tensor:
    """One independent random warp and colour jitter of ``image`` (3, S, S) float in [0, 1]."""
    grid = random_warp_grid(image.shape[-1], warp)
    out = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    out = out.clamp(0.0, 1.0)
    return augment_pair(out, 0.0, warp.brightness, warp.contrast, warp.saturation)[0]


def find_stills(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """Image files of ``sources`` (folders, searched recursively, or image files), in a stable order."""
    found: list[Path] = []
    for s in sources:
        path = Path(s).expanduser()
        if not path.exists():
            raise InputError(f"{path}: no such file or folder (data.stills)")
        if path.is_file():
            if not is_image_file(path):
                raise InputError(f"{path}: not an image file (data.stills)")
            found.append(path)
            continue
        stack = [path]
        while stack:
            folder = stack.pop()
            found.extend(list_frame_files(folder))
            stack.extend(sorted((c for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")),
                                reverse=True))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InputError(f"no image found in data.stills {[str(s) for s in sources]}")
    return unique


class StillPairs(Dataset):
    """Pseudo-video pairs of still photos; see the module docstring. One item per photo.

    Item: the dict of ``PairDataset`` ({"reference", "current": (3, S, S) float32 in [0, 1], "clip",
    "ref_index", "cur_index"}), ``clip`` being ``clip_offset`` + the photo's index.
    """

    def __init__(self, sources: Sequence[str | os.PathLike], size: int, warp: WarpConfig | None = None,
                 hflip_prob: float = 0.5, clip_offset: int = 0) -> None:
        self.paths = find_stills(sources)
        self.size, self.warp, self.hflip_prob, self.clip_offset = size, warp or WarpConfig(), hflip_prob, clip_offset
        images, upscaled = [], 0
        from PIL import Image

        for p in self.paths:
            try:
                with Image.open(p) as im:
                    array = np.asarray(im.convert("RGB"))
            except (OSError, ValueError) as e:
                raise InputError(f"{p}: not a readable image ({e})") from e
            upscaled += min(array.shape[:2]) < size
            images.append(resize_center_crop(array, size))
        if upscaled:
            log.warning("%d of %d stills are smaller than %d px and are upscaled", upscaled, len(images), size)
        self.images = torch.from_numpy(np.stack(images))  # (N, S, S, 3) uint8, small: kept in memory

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} stills")
        image = self.images[index].permute(2, 0, 1).float().div_(255.0)  # (3, S, S)
        pair = torch.stack([warp_image(image, self.warp), warp_image(image, self.warp)])
        if self.hflip_prob > 0:  # one flip for both, as for video pairs
            pair = augment_pair(pair, self.hflip_prob, 0.0, 0.0, 0.0)
        return {"reference": pair[0], "current": pair[1], "clip": self.clip_offset + index,
                "ref_index": 0, "cur_index": 0}

    def __repr__(self) -> str:
        return f"StillPairs(stills={len(self)}, size={self.size})"


class MixedPairs(Dataset):
    """Video pairs and still pairs at a share ``ratio`` of stills; see the module docstring."""

    def __init__(self, videos: Dataset, stills: StillPairs, ratio: float) -> None:
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f"stills ratio must be in (0, 1), got {ratio}")
        self.videos, self.stills, self.ratio = videos, stills, ratio
        self.num_videos = len(videos)
        self.length = max(self.num_videos + 1, math.ceil(self.num_videos / (1.0 - ratio)))

    @property
    def num_stills(self) -> int:
        """How many of the items are still pairs."""
        return self.length - self.num_videos

    def is_still(self, index: int) -> bool:
        return index >= self.num_videos

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        if index < self.num_videos:
            return self.videos[index]
        return self.stills[(index - self.num_videos) % len(self.stills)]

    def __repr__(self) -> str:
        return f"MixedPairs({self.videos!r}, {self.stills!r}, ratio={self.ratio}, items={self.length})"


def training_pairs(sources: Sequence[str | os.PathLike], config: Any, progress: bool = True) -> Dataset:
    """The training set the trainer uses: ``PairDataset(sources, config, "train")``, mixed with still
    pairs of ``config.stills`` at ``config.stills_ratio`` when those are set (``DataConfig``)."""
    from imf.data.dataset import PairDataset

    videos = PairDataset(sources, config, split="train", progress=progress)
    if not getattr(config, "stills", None):
        return videos
    warp = WarpConfig().scaled(config.stills_warp)
    stills = StillPairs(config.stills, config.size, warp, config.hflip_prob, clip_offset=len(videos.clip_paths))
    return MixedPairs(videos, stills, config.stills_ratio)
