"""The .imf container: round trip, one-line errors, and fuzzing of the reader (no neural network)."""

import io
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imf.codec.bitstream import KEYFRAME, MAGIC, TOKENS, BitstreamReader, BitstreamWriter, ImfHeader
from imf.codec.decoder import iter_units
from imf.codec.fit import fit_tables
from imf.codec.keyframe import decode_keyframe, encode_keyframe
from imf.codec.packets import TokenCoder
from imf.errors import BitstreamError

SIZE, D, QUALITY = 16, 4, 6
FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _image(seed):
    rng = np.random.default_rng(seed)
    return (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)


def _build(tables, entropy="temporal", seed=0):
    """A valid stream: keyframe, 2 packets, keyframe, 1 packet (2 + 7 frames); and its units."""
    rng = np.random.default_rng(seed)
    level = tables.level(QUALITY)
    symbols = level.quantizer.quantize(np.cumsum(rng.normal(0, 0.3, (7, D)), axis=0).astype(np.float32))
    header = ImfHeader("ab" * 32, tables.identity(), SIZE, SIZE, Fraction(30000, 1001), 0, QUALITY, entropy, "webp", D)
    buf = io.BytesIO()
    writer = BitstreamWriter(buf, header)
    coder = TokenCoder(level, entropy)
    units = []
    for seed, chunks in ((1, [symbols[:3], symbols[3:5]]), (2, [symbols[5:]])):
        data = encode_keyframe(_image(seed), codec="webp", quality=80)
        writer.write_record(KEYFRAME, data)
        units.append(("keyframe", decode_keyframe(data, codec="webp", width=SIZE, height=SIZE)))
        coder.reset()
        for chunk in chunks:
            writer.write_record(TOKENS, coder.encode_packet(chunk)[0])
            units += [("tokens", row) for row in chunk]
    writer.finish(len(units))
    assert writer.total_bytes == len(buf.getvalue())
    return buf.getvalue(), units


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    return fit_tables([np.cumsum(rng.normal(0, 0.3, (30, D)), axis=0).astype(np.float32)], qualities=(QUALITY,))


@pytest.fixture(scope="module")
def stream(tables):
    return _build(tables)


def _parse(data, tables):
    return list(iter_units(io.BytesIO(data), tables=tables, name="f.imf"))


def test_roundtrip_header_and_units(stream, tables):
    data, units = stream
    header = BitstreamReader(io.BytesIO(data)).header
    assert (header.width, header.height, header.fps, header.frame_count) == (SIZE, SIZE, Fraction(30000, 1001), 9)
    assert (header.entropy, header.keyframe_codec, header.quality, header.token_dim) == ("temporal", "webp", QUALITY, D)
    got = _parse(data, tables)
    assert [k for k, _ in got] == [k for k, _ in units]
    for (_, a), (_, b) in zip(got, units):
        np.testing.assert_array_equal(a, b)


def test_static_stream_roundtrip(tables):
    data, units = _build(tables, entropy="static")
    got = _parse(data, tables)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, units)) and len(got) == len(units)


def _expect(data, tables, match):
    with pytest.raises(BitstreamError, match=match) as info:
        _parse(data, tables)
    assert "\n" not in str(info.value)


def test_errors_name_the_problem(stream, tables):
    data, _ = stream
    _expect(b"GIF89a" + data[6:], tables, "not an .imf file")
    _expect(data[:5], tables, "not an .imf file")
    _expect(data[: len(data) - 9], tables, "truncated")
    _expect(data[:300], tables, "truncated")
    _expect(data + b"\x00", tables, "unexpected bytes after the end record")
    newer = data[:8] + struct.pack("<H", 3) + data[10:]
    _expect(newer, tables, "unsupported .imf format version 3")
    older = data[:8] + struct.pack("<H", 1) + data[10:]
    _expect(older, tables, "format version 1, whose records are not bound")
    flipped = bytearray(data)
    flipped[200] ^= 0x10
    _expect(bytes(flipped), tables, "CRC chain broken")
    flipped = bytearray(data)
    flipped[20] ^= 0x01
    _expect(bytes(flipped), tables, "corrupted header")


def test_wrong_tables_and_lying_header(stream, tables):
    data, _ = stream
    other = fit_tables([np.random.default_rng(5).normal(0, 1, (20, D)).astype(np.float32)], qualities=(QUALITY,))
    _expect(data, other, "entropy tables")
    # a header announcing fewer frames than the records hold (with a valid CRC)
    body = bytearray(data[10:96])
    struct.pack_into("<I", body, 32 + 32 + 4 + 8, 3)
    crc = struct.pack("<I", zlib.crc32(data[8:10] + bytes(body)))
    _expect(data[:10] + bytes(body) + crc + data[100:], tables, "more frames than the 3")


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(tables, blob):
    for data in (blob, MAGIC + blob, MAGIC + b"\x01\x00" + blob):
        with pytest.raises(BitstreamError):
            _parse(data, tables)


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_files(stream, tables, draw):
    data, _ = stream
    mutated = bytearray(data)
    kind = draw.draw(st.sampled_from(["flip", "truncate", "overwrite"]))
    if kind == "flip":  # CRC32 catches every 1-, 2- and 3-bit error: each flip must be reported
        for bit in draw.draw(st.lists(st.integers(0, 8 * len(data) - 1), min_size=1, max_size=3, unique=True)):
            mutated[bit // 8] ^= 1 << (bit % 8)
    elif kind == "truncate":
        del mutated[draw.draw(st.integers(0, len(data) - 1)):]
    else:
        at = draw.draw(st.integers(0, len(data) - 1))
        chunk = draw.draw(st.binary(min_size=1, max_size=64))
        mutated[at : at + len(chunk)] = chunk
        if bytes(mutated) == data:
            return
    with pytest.raises(BitstreamError):
        _parse(bytes(mutated), tables)


@pytest.mark.parametrize("field, value, message", [
    ("fps", Fraction(2**32 - 1, 1), "frame rate"),
    ("fps", Fraction(1, 2**20), "frame rate"),
    ("width", 65535, "size"),
    ("height", 2, "size"),
    ("quality", 200, "quality"),
    ("token_dim", 65535, "token dim"),
])
def test_header_values_at_their_extremes_are_rejected(tables, field, value, message):
    """Each header field is range-checked against what a real video can be, with one line, no traceback."""
    good = ImfHeader("ab" * 32, tables.identity(), SIZE, SIZE, Fraction(25), 1, QUALITY, "temporal", "webp", D)
    buf = io.BytesIO()
    writer = BitstreamWriter(buf, ImfHeader(**{**good.__dict__, field: value}))
    writer.finish(0)
    with pytest.raises(BitstreamError, match=message):
        BitstreamReader(io.BytesIO(buf.getvalue()), "x.imf")


def _records(data):
    """(offset, end) of every record after the 100-byte preamble."""
    from imf.codec.bitstream import record_spans

    return record_spans(data)


def test_reordered_dropped_or_spliced_records_are_rejected(stream, tables):
    """Each record's CRC is chained to the one before it: no record can move, vanish or come from another
    file (with the same header) without the file being refused."""
    data, _ = stream
    spans = _records(data)
    parts = [data[a:b] for a, b in spans]
    head = data[:spans[0][0]]
    assert len(parts) >= 4  # keyframe, packets..., end
    swapped = head + b"".join([parts[0], parts[2], parts[1], *parts[3:]])
    _expect(swapped, tables, "CRC chain broken")
    dropped = head + b"".join([parts[0], *parts[2:]])
    _expect(dropped, tables, "CRC chain broken")
    other, _ = _build(tables, entropy="temporal", seed=1)
    other_parts = [other[a:b] for a, b in _records(other)]
    spliced = head + b"".join([parts[0], other_parts[1], *parts[2:]])
    _expect(spliced, tables, "CRC chain broken")


@FUZZ
@given(st.data())
def test_fuzz_record_level_edits(stream, tables, draw):
    """Any reordering, drop, duplication or splice (from a file with the same header) of whole records is
    refused: none decodes silently."""
    data, _ = stream
    spans = _records(data)
    head, parts = data[:spans[0][0]], [data[a:b] for a, b in spans]
    other, _ = _build(tables, entropy="temporal", seed=3)
    foreign = [other[a:b] for a, b in _records(other)]
    pool = [("own", i) for i in range(len(parts))] + [("foreign", i) for i in range(len(foreign))]
    picked = draw.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=len(parts) + 2))
    if picked in ([("own", i) for i in range(len(parts))], [("foreign", i) for i in range(len(foreign))]):
        return  # one of the two files itself (their headers are byte-identical)
    body = b"".join(parts[i] if src == "own" else foreign[i] for src, i in picked)
    with pytest.raises(BitstreamError):
        _parse(head + body, tables)
