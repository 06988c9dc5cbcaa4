"""Decoding .imf files, frame by frame in bounded memory.

Two stages:
- :func:`iter_units` parses and entropy-decodes the stream (no neural network): it yields
  ``("keyframe", image uint8 (H, W, 3))`` and ``("tokens", symbols (d,) int64)`` per frame, in order,
  and validates everything (BitstreamError otherwise).
- :func:`decode_file` runs the model on those units: a keyframe is output as its decoded image and
  becomes the reference; a token frame is ``D(dequantize(symbols), reference)``. Frames come out as
  soon as their record is read, long before the end of the file.

The encoder reconstructs frames with the same function (:func:`reconstruct_frame`), one frame per
call (batch 1), so the decoder's frames equal the encoder's own reconstruction exactly in fp32.

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


def codec_pipeline(model, precision: str = "fp32") -> Pipeline:
    """The inference core the codec runs the model through: the model's own device, one frame at a time.
    The encoder's closed loop always uses fp32 (its token extraction decides the symbols, see the module
    docstring); the decoder may ask for another ``precision`` (``imf.pipeline.resolve_precision``)."""
    return Pipeline(model, device=model_device(model), precision=precision, batch_size=1)


def reconstruct_frame(pipe: Pipeline, codec: TokenCodec, symbols: np.ndarray, reference) -> np.ndarray:
    """Decoder-side frame of one token: symbols (d,) int -> uint8 (S, S, 3)."""
    from imf.data.video import to_uint8

    token = codec.dequantize(symbols[None])  # (1, d)
    return to_uint8(pipe.decode_tokens(token, reference))[0]


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
            units = [("keyframe", image)]
        elif record.kind == TOKENS:
            if not have_reference:
                raise BitstreamError(f"{name}: token packet at byte {record.offset} before any keyframe")
            units = [("tokens", row) for row in codec.decode_symbols(record.payload)]
        else:  # pragma: no cover - the reader yields only these two kinds
            raise BitstreamError(f"{name}: unexpected record type {record.kind}")
        count += len(units)
        if count > header.frame_count:
            raise BitstreamError(f"{name}: more frames than the {header.frame_count} the header announces")
        yield from units
    if not (count == header.frame_count == reader.end_frame_count):
        raise BitstreamError(f"{name}: holds {count} frames, its header says {header.frame_count} "
                             f"and its end record {reader.end_frame_count}")


def decode_file(path: str | os.PathLike, model, *, tables: CodecTables | None,
                model_hash: str | None = None, precision: str = "fp32") -> Iterator[np.ndarray]:
    """Decoded frames of an .imf file, uint8 (H, W, 3), one at a time as the file is read.

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
        for kind, unit in iter_units(f, tables=tables, name=name):
            if kind == "keyframe":
                reference = pipe.prepare_reference(unit)
                yield unit
            else:
                assert codec is not None  # iter_units checked the quality
                yield reconstruct_frame(pipe, codec, unit, reference)
