"""Range coding with integer CDF tables, on top of ``constriction`` (entropy layer).

Models are integer CDF tables, as in CompressAI's entropy bottleneck / Gaussian conditional
and the range coder of encodec2022 §3.3 ("a total range width of 2^24"): a table for an alphabet of ``n``
symbols is ``cdf[0..n]`` with ``cdf[0] = 0``, ``cdf[n] = 2**precision`` and the probability of
symbol ``s`` equal to ``(cdf[s+1] - cdf[s]) / 2**precision``.  :func:`quantize_pmf` builds such
tables from float PMFs, giving every symbol a nonzero probability.

Symbols are coded either with one static table or with per-symbol tables: a 2-D array of CDF
rows plus an ``indexes`` array choosing the row of each symbol (CompressAI's ``indexes``).  Rows
of a 2-D table share the total ``2**precision``; shorter alphabets are padded at the end by
repeating the total (padded symbols have probability 0 and cannot be coded).

Coding is done by ``constriction.stream.queue.RangeEncoder`` / ``RangeDecoder`` with the
``Categorical(perfect=False)`` model family, fed the exact dyadic probabilities of the table
as float32 (exact for ``precision <= 24``); constriction maps them deterministically onto its
own 24-bit fixed-point model, so encoder and decoder agree bit-exactly and every symbol with a
nonzero table probability is codable.  Symbols are coded in their natural order, in batches of
:data:`BATCH` symbols (batching does not change the output).

Wire format: constriction emits a sequence of 32-bit words; the payload is those words
serialised little-endian, in order (``words.astype('<u4').tobytes()``), so its length is a
multiple of 4 and an empty message is ``b''``.  Range decoding cannot detect most corruption
(it decodes garbage); streams are protected by the container's checksum.  Data whose length is
not a multiple of 4 raises :class:`CorruptStreamError`, and so does data left unread after
the last symbol (``RangeDecoder.finish``), which catches a wrong symbol count.
"""

from __future__ import annotations

from dataclasses import dataclass

import constriction
import numpy as np

from ..errors import CorruptStreamError
from .bitio import BitWriter
from .huffman import HuffmanCode

__all__ = [
    "quantize_pmf", "pmf_from_cdf", "RangeEncoder", "RangeDecoder", "encode_symbols",
    "decode_symbols", "CoderComparison", "compare_coders", "MAX_PRECISION", "BATCH",
]

#: largest supported CDF precision (bits); constriction's Categorical model uses 24 bits
MAX_PRECISION = 24
#: symbols handed to constriction per call (bounds the per-symbol probability matrix)
BATCH = 1 << 15


def quantize_pmf(pmf, precision: int = 16) -> np.ndarray:
    """Integer CDF(s) of total ``2**precision`` approximating ``pmf``, every symbol at least 1.

    ``pmf`` is a 1-D array of ``n`` non-negative weights (normalised here) or a 2-D array of
    such rows; the result has shape ``(..., n + 1)`` and dtype int64.  Each symbol gets
    ``1 + floor(p * (2**precision - n))`` and the remaining units go to the symbols with the
    largest fractional parts (largest-remainder rounding), so the total is exact.
    """
    p = np.asarray(pmf, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] == 0:
        raise ValueError(f"pmf must be a non-empty 1-D or 2-D array, got shape {p.shape}")
    precision = int(precision)
    if not 1 <= precision <= MAX_PRECISION:
        raise ValueError(f"precision must be in 1..{MAX_PRECISION}")
    n = p.shape[-1]
    total = 1 << precision
    if n > total:
        raise ValueError(f"{n} symbols do not fit in a {precision}-bit CDF")
    if not np.all(np.isfinite(p)) or p.min() < 0:
        raise ValueError("pmf must be finite and non-negative")
    rows = np.atleast_2d(p)
    sums = rows.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise ValueError("pmf rows must have a positive sum")
    scaled = rows / sums * (total - n)
    freq = np.floor(scaled).astype(np.int64)
    frac = scaled - freq
    freq += 1
    missing = total - freq.sum(axis=1)  # in 0..n-1 (n-1 at most from flooring)
    order = np.argsort(-frac, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[None, :].repeat(rows.shape[0], 0), axis=1)
    freq += (rank < missing[:, None]).astype(np.int64)
    cdf = np.zeros((rows.shape[0], n + 1), dtype=np.int64)
    np.cumsum(freq, axis=1, out=cdf[:, 1:])
    return cdf[0] if p.ndim == 1 else cdf


def _check_cdfs(cdfs) -> np.ndarray:
    c = np.asarray(cdfs)
    if c.dtype.kind not in "iu":
        raise ValueError(f"CDF tables must be integer arrays, got dtype {c.dtype}")
    if c.ndim not in (1, 2) or c.shape[-1] < 2:
        raise ValueError(f"CDF tables must be 1-D or 2-D with at least 2 entries per row, got {c.shape}")
    c = c.astype(np.int64)
    rows = np.atleast_2d(c)
    total = int(rows[0, -1])
    if total <= 0 or total & (total - 1) or total > 1 << MAX_PRECISION:
        raise ValueError(f"CDF total must be a power of two up to 2**{MAX_PRECISION}, got {total}")
    if np.any(rows[:, 0] != 0) or np.any(rows[:, -1] != total):
        raise ValueError("every CDF row must start at 0 and end at the same power-of-two total")
    if np.any(np.diff(rows, axis=1) < 0):
        raise ValueError("CDF rows must be non-decreasing")
    return c


def pmf_from_cdf(cdfs) -> np.ndarray:
    """Exact probabilities ``diff(cdf) / total`` of integer CDF table(s) (float64)."""
    c = _check_cdfs(cdfs)
    return np.diff(c, axis=-1) / float(c[..., -1:].max())


def _prepare(symbols, cdfs, indexes, count=None):
    """Validate and return (symbols or None, probability rows (float32), row index per symbol or None)."""
    c = _check_cdfs(cdfs)
    probs = (np.diff(np.atleast_2d(c), axis=1) / float(c.max())).astype(np.float32)
    if c.ndim == 1:
        if indexes is not None:
            raise ValueError("indexes are only used with a 2-D array of CDF tables")
        idx = None
    else:
        if indexes is None:
            n = count if symbols is None else np.asarray(symbols).size
            if c.shape[0] != n:
                raise ValueError(f"{c.shape[0]} CDF rows for {n} symbols; pass indexes to select rows")
            idx = np.arange(n, dtype=np.int64)
        else:
            idx = np.asarray(indexes)
            if idx.dtype.kind not in "iu":
                raise ValueError("indexes must be integers")
            idx = idx.astype(np.int64).ravel()
            if idx.size and (idx.min() < 0 or idx.max() >= c.shape[0]):
                raise ValueError(f"indexes must be in 0..{c.shape[0] - 1}")
    s = None
    if symbols is not None:
        s = np.asarray(symbols)
        if s.size and s.dtype.kind not in "iu":
            raise ValueError(f"symbols must be integers, got dtype {s.dtype}")
        s = s.astype(np.int64).ravel()
        if idx is not None and idx.size != s.size:
            raise ValueError(f"{s.size} symbols but {idx.size} indexes")
        n = probs.shape[1]
        if s.size:
            if s.min() < 0 or s.max() >= n:
                bad = s[(s < 0) | (s >= n)][0]
                raise ValueError(f"symbol {bad} is outside the table's alphabet 0..{n - 1}")
            p = probs[0, s] if idx is None else probs[idx, s]
            if np.any(p == 0):
                raise ValueError("a symbol has zero probability in its CDF table")
    return s, probs, idx


class RangeEncoder:
    """Incremental range encoder: call :meth:`encode` any number of times, then :meth:`getvalue`."""

    def __init__(self) -> None:
        self._enc = constriction.stream.queue.RangeEncoder()
        self._family = constriction.stream.model.Categorical(perfect=False)

    def encode(self, symbols, cdfs, indexes=None) -> None:
        """Append ``symbols`` coded with one static CDF (1-D ``cdfs``) or per-symbol rows of a
        2-D ``cdfs`` chosen by ``indexes`` (or row ``i`` for symbol ``i`` when omitted)."""
        s, probs, idx = _prepare(symbols, cdfs, indexes)
        if s.size == 0:
            return
        if idx is None:
            model = constriction.stream.model.Categorical(probs[0], perfect=False)
            for a in range(0, s.size, BATCH):
                self._enc.encode(s[a:a + BATCH].astype(np.int32), model)
        else:
            for a in range(0, s.size, BATCH):
                sl = slice(a, a + BATCH)
                self._enc.encode(s[sl].astype(np.int32), self._family, probs[idx[sl]])

    @property
    def num_bits(self) -> int:
        """Size of the payload so far in bits (a multiple of 32)."""
        return int(self._enc.num_bits())

    def getvalue(self) -> bytes:
        """The payload: constriction's 32-bit words, little-endian."""
        return self._enc.get_compressed().astype("<u4").tobytes()


class RangeDecoder:
    """Decoder for a payload written by :class:`RangeEncoder` (same tables, same order)."""

    def __init__(self, data: bytes) -> None:
        data = bytes(data)
        if len(data) % 4:
            raise CorruptStreamError(f"range-coded payload of {len(data)} bytes is not a whole number of 32-bit words")
        self._num_words = len(data) // 4
        words = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        self._dec = constriction.stream.queue.RangeDecoder(words)
        self._family = constriction.stream.model.Categorical(perfect=False)

    def decode(self, cdfs, count: int | None = None, indexes=None) -> np.ndarray:
        """Decode ``count`` symbols with a static CDF, or one symbol per entry of ``indexes``
        (rows of a 2-D ``cdfs``); returns an int64 array."""
        c = np.asarray(cdfs)
        if c.ndim == 1 or indexes is None:
            if count is None:
                if c.ndim == 2:
                    count = c.shape[0]
                else:
                    raise ValueError("count is required with a static CDF table")
        elif count is None:
            count = np.asarray(indexes).size
        count = int(count)
        if count < 0:
            raise ValueError("count must be non-negative")
        _, probs, idx = _prepare(None, cdfs, indexes, count)
        if idx is not None and idx.size != count:
            raise ValueError(f"count {count} differs from the {idx.size} indexes")
        out = np.empty(count, dtype=np.int64)
        if count == 0:
            return out
        try:
            if idx is None:
                model = constriction.stream.model.Categorical(probs[0], perfect=False)
                for a in range(0, count, BATCH):
                    n = min(BATCH, count - a)
                    out[a:a + n] = self._dec.decode(model, n)
            else:
                for a in range(0, count, BATCH):
                    sl = slice(a, a + BATCH)
                    out[sl] = self._dec.decode(self._family, probs[idx[sl]])
        except (ValueError, KeyError, RuntimeError, AssertionError) as exc:  # pragma: no cover - constriction detected an inconsistency
            raise CorruptStreamError(f"range-coded payload is corrupt: {exc}") from None
        return out

    def finish(self) -> None:
        """Raise CorruptStreamError unless all of the payload has been consumed."""
        if self._num_words and not self._dec.maybe_exhausted():
            raise CorruptStreamError("range-coded payload has data left after the last symbol")


def encode_symbols(symbols, cdfs, indexes=None) -> bytes:
    """Range-code ``symbols`` with a static 1-D CDF or per-symbol rows of a 2-D CDF array."""
    enc = RangeEncoder()
    enc.encode(symbols, cdfs, indexes)
    return enc.getvalue()


def decode_symbols(data: bytes, cdfs, count: int | None = None, indexes=None) -> np.ndarray:
    """Inverse of :func:`encode_symbols`; checks that the whole payload was used."""
    dec = RangeDecoder(data)
    out = dec.decode(cdfs, count, indexes)
    dec.finish()
    return out


@dataclass(frozen=True)
class CoderComparison:
    """Sizes of one symbol sequence under the same PMF: ideal, Huffman and range coding."""

    num_symbols: int
    entropy_bits: float  # sum of -log2 p(s) under the (normalised) given PMF
    huffman_bits: int  # canonical Huffman code built from the quantised PMF
    range_bits: int  # 8 * len(encode_symbols(...)) with the quantised PMF

    @property
    def huffman_overhead(self) -> float:
        """Huffman size relative to the ideal size, minus one."""
        return self.huffman_bits / self.entropy_bits - 1 if self.entropy_bits else float("inf")

    @property
    def range_overhead(self) -> float:
        """Range-coded size relative to the ideal size, minus one."""
        return self.range_bits / self.entropy_bits - 1 if self.entropy_bits else float("inf")


def compare_coders(symbols, pmf, precision: int = 16, max_length: int = 20) -> CoderComparison:
    """Code ``symbols`` with a Huffman code and with the range coder, both derived from ``pmf``.

    Both use the integer table ``quantize_pmf(pmf, precision)``: its frequencies are the
    Huffman counts (all nonzero, so every symbol has a codeword) and its CDF drives the range
    coder.  Both bitstreams are actually produced (and the Huffman one decoded back).
    """
    p = np.asarray(pmf, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("compare_coders takes one 1-D pmf")
    s = np.asarray(symbols).astype(np.int64).ravel()
    cdf = quantize_pmf(p, precision)
    code = HuffmanCode.from_frequencies(np.diff(cdf), max_length=max_length)
    w = BitWriter()
    code.encode(s, w)
    pn = p / p.sum()
    with np.errstate(divide="ignore"):
        info = -np.log2(pn[s]) if s.size else np.zeros(0)
    return CoderComparison(
        num_symbols=int(s.size),
        entropy_bits=float(info.sum()),
        huffman_bits=int(w.bit_length),
        range_bits=8 * len(encode_symbols(s, cdf)),
    )
