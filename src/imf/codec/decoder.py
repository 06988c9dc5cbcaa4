"""Decoding .imf files, frame by frame in bounded memory.

Two stages:
- :func:`iter_units` parses and entropy-decodes the stream (no neural network): it yields
  ``("keyframe", image uint8 (H, W, 3))`` and ``("tokens", symbols (d,) int64)`` per frame, in order,
  and validates everything (BitstreamError otherwise).
- :func:`decode_file` runs the model on those units: a keyframe is output as its decoded image and
  becomes the reference; a token frame is ``D(dequantize(symbols), reference)``. Frames come out as
  soon as their record is read, long before the end of the file.

Frame synthesis is batched per token packet: a packet's frames go through the model in chunks of up to
``SYNTHESIS_BATCH`` (:func:`reconstruct_frames`), at model speed (one frame per call is 2-3x slower for
small models on CPU). The encoder's closed loop reconstructs each packet with the same function and the
same chunks, so the decoder's frames equal the encoder's own reconstruction exactly in fp32. (A float
result can depend on the batch it was computed in, by ~1e-7: the same frames synthesised in other chunks
may differ by one uint8 level in a few pixels, never more.)

Precision (docs/imf-format.md, "Precision"): entropy decoding is integer arithmetic on integer CDF
tables, and the temporal model's context is the previous frame's *symbols*, never a reconstructed frame:
nothing the network computes on the decoder side feeds back into :func:`iter_units`. So the decoder's
frame synthesis may run in any precision (``decode_file(precision=...)``: bf16 where it is fast) and the
symbols stay bit-exact; only the frames move, by bf16 rounding. The reference ``precision="fp32"`` (the
library default) reproduces the encoder's closed-loop frames exactly. The encoder always runs E_T in fp32.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Iterator

import numpy as np

from imf.codec.bitstream import KEYFRAME, TOKENS, BitstreamReader, ImfHeader
from imf.codec.keyframe import decode_keyframe
from imf.codec.tables import CodecTables
from imf.codec.token_codec import TokenCodec
from imf.devices import model_device
from imf.errors import BitstreamError, CheckpointError
from imf.pipeline import Pipeline


def read_header(path: str | os.PathLike) -> ImfHeader:
    """The validated header of an .imf file (BitstreamError if it is not a readable .imf file)."""
    with open(path, "rb") as f:
        return BitstreamReader(f, name=str(path)).header


SYNTHESIS_BATCH = 8  # frames of one packet per model call, on both sides of the codec


def codec_pipeline(model, precision: str = "fp32") -> Pipeline:
    """The inference core the codec runs the model through: the model's own device, ``SYNTHESIS_BATCH``
    frames per call. The encoder's closed loop always uses fp32 (its token extraction decides the symbols, see
    the module docstring); the decoder may ask for another ``precision`` (``imf.pipeline.resolve_precision``)."""
    return Pipeline(model, device=model_device(model), precision=precision, batch_size=SYNTHESIS_BATCH)


def reconstruct_frames(pipe: Pipeline, codec: TokenCodec, symbols: np.ndarray, reference) -> np.ndarray:
    """Decoder-side frames of one token packet: symbols (n, d) int -> uint8 (n, S, S, 3), synthesised in
    chunks of ``pipe.batch_size`` (``SYNTHESIS_BATCH`` in the codec) frames."""
    from imf.data.video import to_uint8

    tokens = codec.dequantize(np.asarray(symbols).reshape(len(symbols), -1))  # (n, d)
    return to_uint8(pipe.decode_tokens(tokens, reference))


def reconstruct_frame(pipe: Pipeline, codec: TokenCodec, symbols: np.ndarray, reference) -> np.ndarray:
    """Decoder-side frame of one token (a packet of one frame, as a call sends): symbols (d,) int ->
    uint8 (S, S, 3)."""
    return reconstruct_frames(pipe, codec, np.asarray(symbols)[None], reference)[0]


def check_tables(header: ImfHeader, tables: CodecTables, name: str) -> None:
    identity = tables.identity()
    if header.codec_hash != identity:
        raise BitstreamError(f"{name} was coded with entropy tables {header.codec_hash[:16]}, the checkpoint's "
                             f"tables are {identity[:16]} (refit since encoding?)")
    if header.token_dim != tables.dim:
        raise BitstreamError(f"{name} has {header.token_dim}-dim tokens, the tables {tables.dim}")
    if header.quality not in tables.levels:
        raise BitstreamError(f"{name} uses token quality {header.quality}, which the tables do not have")


def check_model(header: ImfHeader, model, name: str, model_hash: str | None = None) -> None:
    """BitstreamError unless the file was made by this model (model_hash: precomputed, optional)."""
    from imf.checkpoint import model_hash as compute_hash

    have = model_hash or compute_hash(model)
    if header.model_hash != have:
        raise BitstreamError(f"{name} was encoded with model {header.model_hash[:16]}, "
                             f"but the given model is {have[:16]}")
    size = model.config.resolution
    if (header.width, header.height) != (size, size):
        raise BitstreamError(f"{name} is {header.width}x{header.height}, the model makes {size}x{size} frames")


def iter_units(f: BinaryIO, *, tables: CodecTables, name: str = "input") -> Iterator[tuple[str, np.ndarray]]:
    """Parse and entropy-decode a stream: ("keyframe", image) or ("tokens", symbols) per frame."""
    for kind, unit in iter_records(f, tables=tables, name=name):
        if kind == "keyframe":
            yield kind, unit
        else:
            yield from (("tokens", row) for row in unit)


def iter_records(f: BinaryIO, *, tables: CodecTables, name: str = "input") -> Iterator[tuple[str, np.ndarray]]:
    """Parse and entropy-decode a stream record by record: ("keyframe", image uint8 (H, W, 3)) or
    ("tokens", symbols (n, d) int64 of one packet's n frames), validated as :func:`iter_units` says."""
    reader = BitstreamReader(f, name)
    header = reader.header
    check_tables(header, tables, name)
    codec = TokenCodec(tables, header.quality, header.entropy)
    count = 0
    have_reference = False
    for record in reader.records():
        if record.kind == KEYFRAME:
            image = decode_keyframe(record.payload, codec=header.keyframe_codec,
                                    width=header.width, height=header.height)
            codec.reset()
            have_reference = True
            unit, frames = ("keyframe", image), 1
        elif record.kind == TOKENS:
            if not have_reference:
                raise BitstreamError(f"{name}: token packet at byte {record.offset} before any keyframe")
            symbols = codec.decode_symbols(record.payload)  # (n, d)
            unit, frames = ("tokens", symbols), len(symbols)
        else:  # pragma: no cover - the reader yields only these two kinds
            raise BitstreamError(f"{name}: unexpected record type {record.kind}")
        count += frames
        if count > header.frame_count:
            raise BitstreamError(f"{name}: more frames than the {header.frame_count} the header announces")
        yield unit
    if not (count == header.frame_count == reader.end_frame_count):
        raise BitstreamError(f"{name}: holds {count} frames, its header says {header.frame_count} "
                             f"and its end record {reader.end_frame_count}")


def decode_file(path: str | os.PathLike, model, *, tables: CodecTables | None,
                model_hash: str | None = None, precision: str = "fp32") -> Iterator[np.ndarray]:
    """Decoded frames of an .imf file, uint8 (H, W, 3), packet by packet as the file is read.

    BitstreamError if the file is not a valid .imf file, was made by another model (naming both
    hashes) or with other entropy tables. ``tables``: the codec tables stored with the model
    (``imf.codec.load_tables(ckpt_dir)``); ``model_hash``: ``imf.model_hash(model)`` if already known.
    ``precision``: of the frame synthesis ("fp32", the reference and the encoder's own frames; "auto",
    "bf16", "fp16" as in ``imf.pipeline.resolve_precision``); the decoded symbols do not depend on it.
    The model is put in eval mode.
    """
    if tables is None:
        raise CheckpointError("decode_file needs the model's codec tables: tables=imf.codec.load_tables(CKPT_DIR)")
    name = str(path)
    with open(path, "rb") as f:
        header = BitstreamReader(f, name).header
        check_model(header, model, name, model_hash)
        model.eval()
        f.seek(0)
        codec = TokenCodec(tables, header.quality, header.entropy) if header.quality in tables.levels else None
        pipe = codec_pipeline(model, precision)  # frame synthesis only: iter_units never sees its output
        reference = None
        for kind, unit in iter_records(f, tables=tables, name=name):
            if kind == "keyframe":
                reference = pipe.prepare_reference(unit)
                yield unit
            else:
                assert codec is not None  # iter_records checked the quality
                yield from reconstruct_frames(pipe, codec, unit, reference)
