"""Data: video I/O (``video``), training pairs (``dataset``, ``frame_cache``, ``augment``; pseudo-video pairs
of still photos in ``stills``), face-centred crops (``crop``, ``face_detect``), the sample clips and photos
(``samples``) and the split-by-person face corpus built from them (``corpus``); paper-scale data sets as
tar shards (``prepare`` writes them from VFHQ / CelebV-HQ / VoxCeleb metadata, ``shards`` is their format,
``shard_pairs`` streams training pairs out of them).

Frames are uint8 (H, W, 3) RGB numpy arrays on the I/O side and float32 (B, 3, H, W) tensors in [0, 1] on
the model side (``to_tensor`` / ``to_uint8``).
"""

from imf.data.dataset import DataConfig, HeldOutFrames, PairDataset, find_clips, held_out_frames
from imf.data.samples import SAMPLES, fetch_samples, sample_path
from imf.data.video import VideoInfo, VideoWriter, iter_frames, probe, resize_center_crop, to_tensor, to_uint8

__all__ = [
    "DataConfig", "HeldOutFrames", "PairDataset", "find_clips", "held_out_frames",
    "SAMPLES", "fetch_samples", "sample_path",
    "VideoInfo", "VideoWriter", "iter_frames", "probe", "resize_center_crop", "to_tensor", "to_uint8",
]
