"""Integer entropy tables, range coding and token quantization (no neural network: fast)."""

import math

import constriction
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imf.codec.entropy import (MAX_SYMBOL, PRECISION, TOTAL, SymbolTable, _integer_weights, decode_values,
                               encode_values, fit_table, unzigzag, zigzag)
from imf.codec.fit import fit_tables
from imf.codec.packets import TokenCoder
from imf.codec.quantizer import TokenQuantizer, step_scale
from imf.codec.tables import CodecTables
from imf.errors import BitstreamError, CheckpointError

D = 6


def _random_walk_tokens(rng, n_sources=3, length=40, dim=D):
    """Token sequences with temporal correlation: [(length, dim) float32]."""
    return [np.cumsum(rng.normal(0, 0.3, (length, dim)), axis=0).astype(np.float32) + rng.normal(0, 1, dim)
            for _ in range(n_sources)]


@pytest.fixture(scope="module")
def tables():
    return fit_tables(_random_walk_tokens(np.random.default_rng(0)), qualities=(2, 6, 10))


def test_integer_weights_are_exact_and_at_least_one():
    w = _integer_weights(np.array([0.0, 1e-12, 0.5, 0.25, 0.25]))
    assert w.sum() == TOTAL and w.min() >= 1 and w.dtype == np.int64
    assert w[0] == 1 and abs(w[2] / TOTAL - 0.5) < 1e-6


def test_fit_table_rows_and_range():
    values = np.array([[0, 1], [0, -1], [1, 0], [2, 0], [-3, 5]])
    t = fit_table(values)
    assert t.weights.shape[0] == 2 and (t.weights.sum(axis=1) == TOTAL).all() and t.weights.min() >= 1
    assert t.min_symbol <= -5 and t.max_symbol >= 5  # every seen value is in range (plus a margin)
    # frequent values are cheaper than rare ones
    assert t.bits(np.array([0, 0])) < t.bits(np.array([4, 4]))


def test_constriction_uses_exactly_our_integer_probabilities():
    # A symbol of weight w costs exactly PRECISION - log2(w) bits in constriction's model; with weight 1
    # that is 24 bits. 200 such symbols take 4800 bits plus at most two words of termination.
    weights = np.array([[1, TOTAL - 3, 2]])
    table = SymbolTable(weights, 0)
    enc = constriction.stream.queue.RangeEncoder()
    for _ in range(200):
        encode_values(enc, table, np.array([0]))
    assert 200 * PRECISION <= enc.num_bits() <= 200 * PRECISION + 64
    assert table.bits(np.zeros((200, 1), np.int64)) == 200 * PRECISION


def test_zigzag_roundtrip():
    v = np.array([0, -1, 1, -2, 2, 2**30, -(2**30), 2**31 - 1, -(2**31)])
    z = zigzag(v)
    assert (z >= 0).all() and (z < 2**32).all()
    assert list(z[:5]) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(unzigzag(z), v)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**30), 2**30), min_size=3, max_size=3), min_size=1, max_size=12))
def test_values_roundtrip_including_escapes(rows):
    table = fit_table(np.array([[0, 1, -1], [1, 0, 2], [0, 0, 0]]))  # range ~ +-4: most values escape
    rows = np.array(rows, dtype=np.int64)
    enc = constriction.stream.queue.RangeEncoder()
    for r in rows:
        encode_values(enc, table, r)
    dec = constriction.stream.queue.RangeDecoder(enc.get_compressed())
    out = np.stack([decode_values(dec, table) for _ in rows])
    np.testing.assert_array_equal(out, rows)


@pytest.mark.parametrize("mode", ["static", "temporal"])
@pytest.mark.parametrize("quality", [2, 10])
def test_token_packets_roundtrip_and_estimate(tables, mode, quality):
    rng = np.random.default_rng(1)
    level = tables.level(quality)
    tokens = _random_walk_tokens(rng, n_sources=1, length=50)[0]
    symbols = level.quantizer.quantize(tokens)  # (50, D)
    symbols[7, 2] = 10_000  # far outside both tables: an escape
    symbols[8, 0] = -MAX_SYMBOL
    enc, dec = TokenCoder(level, mode), TokenCoder(level, mode)
    chunks = [symbols[:8], symbols[8:9], symbols[9:30], symbols[30:]]
    payloads, estimate = [], 0.0
    for i, chunk in enumerate(chunks):
        if i == 2:  # a keyframe between packets: both sides start a new segment
            enc.reset()
        payload, bits = enc.encode_packet(chunk)
        payloads.append(payload)
        estimate += bits
    out = []
    for i, payload in enumerate(payloads):
        if i == 2:
            dec.reset()
        out.append(dec.decode_packet(payload))
    np.testing.assert_array_equal(np.concatenate(out), symbols)
    coded_bits = sum(8 * (len(p) - 1) for p in payloads)  # minus each packet's frame-count byte
    # the range coder stays within 2% of the tables' ideal code length, plus <= 2 words per packet
    assert estimate * 0.98 <= coded_bits <= estimate * 1.02 + 64 * len(payloads)


def test_temporal_model_is_cheaper_on_correlated_tokens(tables):
    tokens = _random_walk_tokens(np.random.default_rng(2), n_sources=1, length=60)[0]
    level = tables.level(6)
    symbols = level.quantizer.quantize(tokens)
    bits = {m: TokenCoder(level, m).encode_packet(symbols)[1] for m in ("static", "temporal")}
    assert bits["temporal"] < 0.8 * bits["static"]


def test_decode_packet_rejects_malformed_payloads(tables):
    coder = TokenCoder(tables.level(6), "static")
    for bad in (b"", b"\x01\x00\x00", b"\x00", b"\x03" + b"\xff" * 4):
        with pytest.raises(BitstreamError):
            coder.decode_packet(bad)


def test_quantizer_steps_follow_quality_and_roundtrip():
    center = np.array([0.5, -1.0], np.float32)
    spread = np.array([2.0, 0.1], np.float32)
    assert step_scale(4) == 1.0 and math.isclose(step_scale(6), 0.5)
    q6 = TokenQuantizer.from_spread(center, spread, 6)
    np.testing.assert_allclose(q6.step, [1.0, 0.05])
    t = np.array([[3.1, -1.2], [0.5, -1.0]], np.float32)
    sym = q6.quantize(t)
    np.testing.assert_array_equal(sym, [[3, -4], [0, 0]])
    back = q6.dequantize(sym).numpy()
    assert np.all(np.abs(back - t) <= q6.step / 2 + 1e-6)
    with pytest.raises(ValueError):
        step_scale(0)
    assert np.abs(q6.quantize(np.array([[1e30, np.nan]], np.float32))).max() <= MAX_SYMBOL


def test_tables_save_load_identity(tables, tmp_path):
    tables.save(tmp_path)
    back = CodecTables.load(tmp_path)
    assert back.identity() == tables.identity() and back.qualities == (2, 6, 10)
    np.testing.assert_array_equal(back.level(6).temporal.weights, tables.level(6).temporal.weights)
    # a table that differs in one weight has another identity
    lv = tables.level(2)
    w = lv.static.weights.copy()
    w[0, 0] += 1
    w[0, -1] -= 1
    changed = CodecTables(tables.center, tables.spread,
                          {**tables.levels, 2: type(lv)(2, lv.quantizer, SymbolTable(w, lv.static.min_symbol), lv.temporal)})
    assert changed.identity() != tables.identity()
    with pytest.raises(CheckpointError, match="quality 7"):
        tables.level(7)
    with pytest.raises(CheckpointError, match="codec fit"):
        CodecTables.load(tmp_path / "nowhere")


def test_golden_bytes_of_the_range_coder():
    # Fixed integer tables and values -> fixed bytes. If this changes (another constriction, another
    # machine), files written elsewhere would no longer decode: the format must stay put.
    row = [103884, 311652, 934954, 2804859, 8414575, 2804859, 934954, 311652, 103884, 51943]
    table = SymbolTable(np.array([row, [51943] + row[:-1]]), -4)
    values = np.array([[0, 0], [1, -1], [-4, 4], [100, -7], [0, 2]])  # 100: an escape
    enc = constriction.stream.queue.RangeEncoder()
    for v in values:
        encode_values(enc, table, v)
    data = np.asarray(enc.get_compressed(), "<u4").tobytes()
    assert data.hex() == "067f525a53252a9f00c0b5796e43bb19"
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").astype(np.uint32))
    np.testing.assert_array_equal(np.stack([decode_values(dec, table) for _ in values]), values)


def test_quality_for_token_rate(tables):
    measured = tables.info["bits_per_frame"]
    assert measured["2"]["static"] < measured["6"]["static"] < measured["10"]["static"]
    assert measured["6"]["temporal"] < measured["6"]["static"]  # the fitting tokens are a random walk
    fps = 25.0
    kbps_at_6 = measured["6"]["temporal"] * fps / 1000
    assert tables.quality_for_token_rate(kbps_at_6 * 1.001, fps) == 6
    assert tables.quality_for_token_rate(kbps_at_6 * 0.999, fps) == 2
    assert tables.quality_for_token_rate(1e-9, fps) == 2  # nothing fits: the coarsest level
    assert tables.quality_for_token_rate(1e9, fps, "static") == 10


@pytest.mark.parametrize("mode", ["static", "temporal"])
def test_token_codec_compress_decompress(tables, mode):
    """CompressAI's shape: compress(tokens) -> (bytes, tokens_hat); a second codec decompresses the same
    tokens_hat from the bytes alone, packet after packet and across a reset (a keyframe)."""
    import torch

    from imf.codec import TokenCodec

    tokens = torch.from_numpy(np.concatenate(_random_walk_tokens(np.random.default_rng(1), n_sources=1, length=24)))
    sender, receiver = TokenCodec(tables, 6, mode), TokenCodec(tables, 6, mode)
    for start, stop, reset in ((0, 8, False), (8, 13, False), (13, 24, True)):
        if reset:
            sender.reset()
            receiver.reset()
        payload, tokens_hat = sender.compress(tokens[start:stop])
        assert isinstance(payload, bytes) and tokens_hat.shape == (stop - start, D)
        step = torch.from_numpy(sender.quantizer.step)
        assert ((tokens_hat - tokens[start:stop]).abs() <= step / 2 + 1e-5).all()  # within half a step
        torch.testing.assert_close(receiver.decompress(payload), tokens_hat, rtol=0, atol=0)
    with pytest.raises(CheckpointError):
        TokenCodec(tables, 5, mode)  # not a fitted quality


def test_edited_fitted_statistics_are_noticed(tables, tmp_path):
    import json

    tables.save(tmp_path)
    CodecTables.load(tmp_path)
    meta = json.loads((tmp_path / "codec.json").read_text())
    meta["info"]["bits_per_frame"] = {"6": {"static": 1.0, "temporal": 1.0}}  # a lie --target-kbps would read
    (tmp_path / "codec.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="were edited after fitting"):
        CodecTables.load(tmp_path)
