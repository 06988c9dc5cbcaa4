"""Integer probability tables for token symbols, and range coding with them (bit-exact on any machine).

Conventions
-----------
- A :class:`SymbolTable` holds one integer probability row per token dimension over the contiguous
  symbols ``min_symbol .. min_symbol + n - 1`` plus one escape entry (column ``n``). Every entry is
  ``>= 1`` and every row sums to exactly ``2**PRECISION`` (``PRECISION = 24``, the probability precision
  of constriction's default range coder), so ``P(symbol) = weight / 2**24`` exactly.
- A value outside the table's range is coded as the escape entry followed by its zigzag-mapped 32-bit
  value, as two 16-bit halves with constriction's integer ``Uniform(2**16)`` model (exactly 32 bits).
- Tables are fitted from data with floats at fit time (:func:`fit_table`), then stored as integers;
  nothing computed from floats at decode time decides a symbol.

Why the float-probability ``Categorical`` of constriction is exact here
----------------------------------------------------------------------
constriction's Python API takes categorical probabilities only as floats. Its ``perfect=False`` model
(``LazyContiguousCategoricalEntropyModel::from_floating_point_probabilities_fast``, float64 for a
float64 array) computes, for symbol ``i`` of ``n``, the fixed-point left CDF
``floor(sum(p[:i]) * scale) + i`` with ``scale = (2**24 - n) / sum(p)``. We pass ``p = weight - 1``:
non-negative integers summing to ``2**24 - n``. Then every partial sum is an integer below ``2**24``
(exact in float64), ``scale`` is exactly ``1.0``, every product is exact, and the fixed-point CDF it
builds is exactly ``sum(weight[:i])``: our integer table, with no rounding anywhere. The result is the
same on every IEEE-754 machine, and the ideal code length ``-log2(weight / 2**24)`` that
:meth:`SymbolTable.bits` reports is exactly the coder's model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import constriction
import numpy as np

from imf.errors import BitstreamError

PRECISION = 24
TOTAL = 1 << PRECISION
ESCAPE_BITS = 32
# Quantized symbols and temporal residuals are kept within +-MAX_SYMBOL so that every value (and the
# difference of two values) has a 32-bit zigzag code.
MAX_SYMBOL = 1 << 29

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_UNIFORM16 = constriction.stream.model.Uniform(1 << 16)


@dataclass(frozen=True)
class SymbolTable:
    """Per-dimension integer probability tables over a contiguous symbol range plus an escape.

    weights: (d, n + 1) int64; column n is the escape; rows sum to 2**PRECISION; all entries >= 1.
    min_symbol: the symbol coded by column 0.
    """

    weights: np.ndarray
    min_symbol: int
    _rows: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        w = np.ascontiguousarray(self.weights, dtype=np.int64)
        if w.ndim != 2 or w.shape[1] < 2:
            raise ValueError(f"SymbolTable weights must be (d, n + 1) with n >= 1, got shape {w.shape}")
        if (w < 1).any() or (w.sum(axis=1) != TOTAL).any():
            raise ValueError("SymbolTable rows must be >= 1 everywhere and sum to 2**24")
        object.__setattr__(self, "weights", w)
        # (d, n + 1) float64 of integers summing to 2**24 - (n + 1): see the module docstring.
        object.__setattr__(self, "_rows", (w - 1).astype(np.float64))

    @property
    def dim(self) -> int:
        return self.weights.shape[0]

    @property
    def num_symbols(self) -> int:
        """Symbols in range (without the escape)."""
        return self.weights.shape[1] - 1

    @property
    def max_symbol(self) -> int:
        return self.min_symbol + self.num_symbols - 1

    def indices(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column index of each value (escape column where out of range) and the escape mask."""
        idx = np.asarray(values, dtype=np.int64) - self.min_symbol
        escape = (idx < 0) | (idx >= self.num_symbols)
        return np.where(escape, self.num_symbols, idx), escape

    def bits(self, values: np.ndarray) -> float:
        """Ideal code length in bits of values (..., d) under this table, escapes' 32 bits included."""
        values = np.asarray(values).reshape(-1, self.dim)  # (m, d)
        idx, escape = self.indices(values)
        w = np.take_along_axis(self.weights, idx.T, axis=1).T  # (m, d)
        return float(np.sum(PRECISION - np.log2(w)) + ESCAPE_BITS * escape.sum())


def zigzag(v: np.ndarray) -> np.ndarray:
    """Signed -> unsigned: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ... (int64 in, int64 in [0, 2**32) out)."""
    v = np.asarray(v, dtype=np.int64)
    return np.where(v >= 0, 2 * v, -2 * v - 1)


def unzigzag(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.int64)
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


def encode_values(encoder: "constriction.stream.queue.RangeEncoder", table: SymbolTable, values: np.ndarray) -> None:
    """Append one row of d values (one frame) to a range encoder: d table symbols, then escapes."""
    values = np.asarray(values, dtype=np.int64).reshape(table.dim)
    if np.abs(values).max(initial=0) > 2 * MAX_SYMBOL:
        raise ValueError(f"value out of the codable range +-{2 * MAX_SYMBOL}")
    idx, escape = table.indices(values)
    encoder.encode(idx.astype(np.int32), _CATEGORICAL, table._rows)
    if escape.any():
        z = zigzag(values[escape])  # (e,) each < 2**32
        halves = np.stack([z >> 16, z & 0xFFFF], axis=1).reshape(-1)  # (2e,)
        encoder.encode(halves.astype(np.int32), _UNIFORM16)


def decode_values(decoder: "constriction.stream.queue.RangeDecoder", table: SymbolTable) -> np.ndarray:
    """Inverse of :func:`encode_values`: one row of d int64 values. Raises BitstreamError on bad data."""
    try:
        idx = np.asarray(decoder.decode(_CATEGORICAL, table._rows), dtype=np.int64)  # (d,)
        values = idx + table.min_symbol
        escape = idx == table.num_symbols
        if escape.any():
            halves = np.asarray(decoder.decode(_UNIFORM16, 2 * int(escape.sum())), dtype=np.int64)
            z = (halves[0::2] << 16) | halves[1::2]
            values[escape] = unzigzag(z)
    except BitstreamError:
        raise
    except Exception as e:  # constriction reports undecodable data with assorted exception types
        raise BitstreamError(f"entropy-coded data cannot be decoded ({type(e).__name__})") from None
    return values


def _integer_weights(p: np.ndarray) -> np.ndarray:
    """Float probabilities (n,) (>= 0, sum > 0) -> int64 weights >= 1 summing to 2**PRECISION.

    Each symbol gets 1 plus the floor of its share of the free weight; the remainder goes to the
    largest fractional parts (ties to the lower index), so the result is deterministic.
    """
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    free = TOTAL - p.size
    raw = p * free
    w = np.floor(raw).astype(np.int64)
    rest = free - int(w.sum())
    if rest > 0:
        order = np.lexsort((np.arange(p.size), -(raw - w)))
        w[order[:rest]] += 1
    return w + 1


def fit_table(values: np.ndarray, *, max_abs: int = 1023, margin: float = 1.25, prior_strength: float = 1.0) -> SymbolTable:
    """Fit one integer table per dimension to training values (N, d) int (symbols or residuals).

    Range: +-L per table, L = ceil(margin * max |v|) + 1 capped at max_abs (values beyond are escapes).
    Smoothing: counts plus ``prior_strength * sqrt(N)`` pseudo-counts spread by a discrete Laplace
    centred at 0 with the dimension's mean |v| as scale, so unseen values near the data stay cheap;
    the escape gets its count plus 0.5.
    """
    values = np.asarray(values, dtype=np.int64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"fit_table needs values of shape (N, d) with N >= 1, got {values.shape}")
    n_obs, dim = values.shape
    top = int(np.abs(values).max())
    half = int(min(max_abs, math.ceil(margin * top) + 1))
    support = np.arange(-half, half + 1)  # (n,)
    n = support.size
    rows = np.empty((dim, n + 1), dtype=np.int64)
    pseudo = prior_strength * math.sqrt(n_obs)
    for j in range(dim):
        v = values[:, j]
        inside = np.abs(v) <= half
        counts = np.bincount(v[inside] + half, minlength=n).astype(np.float64)  # (n,)
        scale = max(float(np.mean(np.abs(v))), 0.5)
        prior = np.exp(-np.abs(support) / scale)
        prior *= pseudo / prior.sum()
        escape = float((~inside).sum()) + 0.5
        rows[j] = _integer_weights(np.append(counts + prior, escape))
    return SymbolTable(rows, -half)
