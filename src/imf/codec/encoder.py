"""Encoding a video into an .imf file, closed loop.

The encoder runs the decoder on itself: a keyframe's reference is the *decoded* intra image, and each
token packet is reconstructed exactly as the decoder will (:func:`imf.codec.decoder.reconstruct_frames`,
the same chunks of the same packet), so ``on_frame`` receives the decoder's frames bit for bit in fp32.
A new keyframe is sent
- for the first frame,
- at a scene cut (colour-histogram jump between consecutive source frames, :mod:`imf.codec.scenecut`),
- when the encoder's own reconstruction falls below ``min_quality_psnr`` dB (if set),
- when ``max_keyframe_interval`` frames have passed since the last keyframe (if set).
A keyframe frame is shown as its decoded intra image; every other frame costs one quantized token.
Tokens are grouped into packets of up to ``packet_frames`` frames (a packet never spans a keyframe).
The model is put in eval mode. E_T runs one frame at a time; the closed-loop reconstruction runs once a
packet is complete, so ``on_frame`` is called in frame order up to ``packet_frames`` frames late (bounded
memory). With ``min_quality_psnr`` every token frame is also synthesised alone first, for its test.
The closed-loop reconstructions also feed the out-of-domain check (``EncodeStats.copy_check``): their PSNR
beside copying the decoded keyframe, over every frame reconstructed from a token (``imf.eval.domain``).
"""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from imf.codec.bitstream import KEYFRAME, TOKENS, BitstreamWriter, ImfHeader
from imf.codec.decoder import codec_pipeline, reconstruct_frame, reconstruct_frames
from imf.codec.keyframe import (DEFAULT_KEYFRAME_CODEC, DEFAULT_KEYFRAME_QUALITY, KEYFRAME_CODECS, decode_keyframe,
                                encode_keyframe, keyframe_codec_available)
from imf.codec.packets import ENTROPY_MODES, MAX_PACKET_FRAMES
from imf.codec.quantizer import DEFAULT_QUALITY
from imf.codec.scenecut import DEFAULT_SCENE_CUT_THRESHOLD, SceneCutDetector
from imf.codec.stats import EncodeStats
from imf.codec.tables import CodecTables
from imf.codec.token_codec import TokenCodec
from imf.errors import CheckpointError, ConfigError, InputError
from imf.eval.domain import CopyComparer
from imf.eval.metrics import psnr_uint8
from imf.progress import progress_bar

DEFAULT_PACKET_FRAMES = 8
FrameCallback = Callable[[int, np.ndarray], None]


def _check_options(quality, entropy, packet_frames, max_keyframe_interval, min_quality_psnr, scene_cut_threshold,
                   keyframe_codec, keyframe_quality, tables: CodecTables, model, model_hash: str) -> None:
    """ConfigError naming the first impossible option; CheckpointError if the tables do not fit the model."""
    problems = []
    if entropy not in ENTROPY_MODES:
        problems.append(f"entropy must be one of {ENTROPY_MODES}, got {entropy!r}")
    if not 1 <= packet_frames <= MAX_PACKET_FRAMES:
        problems.append(f"packet_frames must be in [1, {MAX_PACKET_FRAMES}], got {packet_frames}")
    if max_keyframe_interval is not None and max_keyframe_interval < 1:
        problems.append(f"max_keyframe_interval must be >= 1 or None, got {max_keyframe_interval}")
    if min_quality_psnr is not None and not min_quality_psnr > 0:
        problems.append(f"min_quality_psnr must be a positive number of dB or None, got {min_quality_psnr}")
    if scene_cut_threshold is not None and not 0.0 < scene_cut_threshold <= 1.0:
        problems.append(f"scene_cut_threshold must be in (0, 1] or None, got {scene_cut_threshold}")
    if keyframe_codec not in KEYFRAME_CODECS or not keyframe_codec_available(keyframe_codec):
        problems.append(f"keyframe codec {keyframe_codec!r} is not available here "
                        f"(known: {KEYFRAME_CODECS}; AVIF needs a Pillow built with it)")
    if not 0 <= keyframe_quality <= 100:
        problems.append(f"keyframe_quality must be in [0, 100], got {keyframe_quality}")
    if problems:
        raise ConfigError(problems[0])
    tables.level(quality)  # CheckpointError naming the fitted qualities
    if tables.dim != model.config.d_m:
        raise CheckpointError(f"codec tables are for {tables.dim}-dim tokens, the model's are {model.config.d_m}")
    if tables.model_hash and tables.model_hash != model_hash:
        raise CheckpointError(f"codec tables were fitted for model {tables.model_hash[:16]}, this model is "
                              f"{model_hash[:16]}: refit them with `imf codec fit`")


def encode_frames(
    model,
    frames: Iterable[np.ndarray],
    out_path: str | os.PathLike,
    *,
    fps: float | Fraction,
    tables: CodecTables | None = None,
    quality: int = DEFAULT_QUALITY,
    entropy: str = "temporal",
    keyframe_codec: str = DEFAULT_KEYFRAME_CODEC,
    keyframe_quality: int = DEFAULT_KEYFRAME_QUALITY,
    max_keyframe_interval: int | None = None,
    min_quality_psnr: float | None = None,
    scene_cut_threshold: float | None = DEFAULT_SCENE_CUT_THRESHOLD,
    packet_frames: int = DEFAULT_PACKET_FRAMES,
    total: int | None = None,
    progress: bool = True,
    on_frame: FrameCallback | None = None,
    tokens: Iterable | None = None,
) -> EncodeStats:
    """Encode uint8 frames (S, S, 3) (S = model.config.resolution) into ``out_path``; see the module doc.

    The file is written under a temporary name and renamed when complete. ``on_frame(i, frame)``
    receives each decoder-side frame (uint8 (S, S, 3)). ``total``: frame count for the progress bar.
    ``tokens``: E_T's token (d_m,) of each frame if already computed, one per frame, as
    :func:`frame_tokens` gives them (``imf rd`` codes one clip at several qualities: E_T runs once).
    """
    from imf.checkpoint import model_hash

    if tables is None:
        raise CheckpointError("encoding needs the model's codec tables: tables=imf.codec.load_tables(CKPT_DIR)")
    identity = model_hash(model)
    _check_options(quality, entropy, packet_frames, max_keyframe_interval, min_quality_psnr, scene_cut_threshold,
                   keyframe_codec, keyframe_quality, tables, model, identity)
    model.eval()
    size = model.config.resolution
    codec = TokenCodec(tables, quality, entropy)
    # fp32 always, whatever the decoder will use: E_T's output decides the symbols, and an fp32 E_T keeps them
    # as close to machine-independent as floats allow (bf16 would move tokens across quantiser bins).
    pipe = codec_pipeline(model, "fp32")
    detector = SceneCutDetector(scene_cut_threshold)
    fps = Fraction(fps).limit_denominator(1001)
    header = ImfHeader(identity, tables.identity(), size, size, fps, 0, quality, entropy,
                       keyframe_codec, tables.dim)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.partial")
    pending: list[tuple[int, np.ndarray, np.ndarray]] = []  # (index, source frame, symbols (d,)) of the packet
    keyframes: list[int] = []
    estimate = 0.0
    packets = 0
    count = 0
    copy_check = CopyComparer(out_path.name)
    start = time.perf_counter()
    try:
        with open(tmp, "wb") as f, progress_bar(total=total, unit="frame", desc="encode", enabled=progress) as bar:
            writer = BitstreamWriter(f, header)
            reference = ref_image = None  # the decoded keyframe: its ReferenceState and its uint8 (S, S, 3)

            def flush() -> None:
                """Write the pending packet and hand its frames, as the decoder will make them, on."""
                nonlocal estimate, packets
                if not pending:
                    return
                symbols = np.stack([s for _, _, s in pending])  # (n, d)
                payload, bits = codec.encode_symbols(symbols)
                writer.write_record(TOKENS, payload)
                estimate += bits
                packets += 1
                recon = reconstruct_frames(pipe, codec, symbols, reference)  # (n, S, S, 3)
                for (i, frame, _), out in zip(pending, recon):
                    copy_check.add(frame, out, ref_image)  # only frames that go out as tokens: a keyframe is no test
                    if on_frame is not None:
                        on_frame(i, out)
                pending.clear()

            given = iter(tokens) if tokens is not None else None
            for i, frame in enumerate(frames):
                if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == (size, size, 3)):
                    raise InputError(f"frame {i}: expected uint8 ({size}, {size}, 3), got "
                                     f"{getattr(frame, 'dtype', type(frame))} {getattr(frame, 'shape', '')}")
                token = next(given, None) if given is not None else None
                if given is not None and token is None:
                    raise InputError(f"frame {i}: no token given for it (fewer tokens than frames)")
                cut = detector.is_cut(frame)
                key = (reference is None or cut
                       or (max_keyframe_interval is not None and i - keyframes[-1] >= max_keyframe_interval))
                if not key:
                    t = pipe.encode_tokens([frame]) if token is None else torch.as_tensor(token).reshape(1, -1)
                    symbols = codec.quantize(t)[0]  # (d,)
                    if min_quality_psnr is not None:  # this frame's own test: synthesised alone
                        alone = reconstruct_frame(pipe, codec, symbols, reference)
                        key = psnr_uint8(alone, frame) < min_quality_psnr
                if key:
                    flush()
                    data = encode_keyframe(frame, codec=keyframe_codec, quality=keyframe_quality)
                    recon = decode_keyframe(data, codec=keyframe_codec, width=size, height=size)
                    writer.write_record(KEYFRAME, data)
                    reference, ref_image = pipe.prepare_reference(recon), recon
                    codec.reset()
                    keyframes.append(i)
                    if on_frame is not None:
                        on_frame(i, recon)
                else:
                    pending.append((i, frame, symbols))
                    if len(pending) == packet_frames:
                        flush()
                count = i + 1
                bar.update(1)
            if count == 0:
                raise InputError("no frames to encode")
            flush()
            writer.finish(count)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    return EncodeStats(
        total_bytes=writer.total_bytes, header_bits=8 * writer.header_bytes, keyframe_bits=8 * writer.keyframe_bytes,
        token_bits=8 * writer.token_bytes, num_frames=count, num_keyframes=len(keyframes), num_packets=packets,
        width=size, height=size, fps=float(fps), quality=quality, entropy=entropy, keyframe_codec=keyframe_codec,
        keyframe_quality=keyframe_quality, estimated_token_bits=estimate, encode_seconds=seconds,
        keyframe_indices=keyframes, copy_check=copy_check.result())


def frame_tokens(model, frames: Iterable[np.ndarray]) -> torch.Tensor:
    """E_T's tokens (N, d_m) float32 of uint8 frames (S, S, 3), exactly as :func:`encode_frames` computes them
    (fp32, one frame per call), for its ``tokens`` argument."""
    pipe = codec_pipeline(model.eval(), "fp32")
    return torch.cat([pipe.encode_tokens([f]) for f in frames])


def encode_video(
    model,
    video_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    tables: CodecTables | None = None,
    quality: int = DEFAULT_QUALITY,
    entropy: str = "temporal",
    keyframe_codec: str = DEFAULT_KEYFRAME_CODEC,
    keyframe_quality: int = DEFAULT_KEYFRAME_QUALITY,
    max_keyframe_interval: int | None = None,
    min_quality_psnr: float | None = None,
    scene_cut_threshold: float | None = DEFAULT_SCENE_CUT_THRESHOLD,
    packet_frames: int = DEFAULT_PACKET_FRAMES,
    progress: bool = True,
    on_frame: FrameCallback | None = None,
) -> EncodeStats:
    """Encode a video file (or frame folder) into ``out_path``.

    Frames are centre-cropped and resized to the model's resolution (``imf.data.video.iter_frames``);
    ``tables`` are the model's codec tables (``imf.codec.load_tables(ckpt_dir)``); the other options
    are those of :func:`encode_frames`.
    """
    from imf.data.video import iter_frames, probe

    info = probe(video_path)
    frames = iter_frames(video_path, size=model.config.resolution)
    return encode_frames(
        model, frames, out_path, fps=info.fps, tables=tables, quality=quality, entropy=entropy,
        keyframe_codec=keyframe_codec, keyframe_quality=keyframe_quality,
        max_keyframe_interval=max_keyframe_interval, min_quality_psnr=min_quality_psnr,
        scene_cut_threshold=scene_cut_threshold, packet_frames=packet_frames, total=info.num_frames,
        progress=progress, on_frame=on_frame)
