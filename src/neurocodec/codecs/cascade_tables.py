"""Entropy-coding tables and chunk payloads of the CMRL / CQ codecs (codecs layer).

zhen2019 §2.3 and zhen2020 §3.3 Huffman-code *pairs of adjacent symbols* of each softmax
quantizer.  Each quantizer of a codec (``lsp``, ``module1``, ``module2``...) owns an
:class:`EntropyTable`: symbol statistics gathered on training data (pair and single counts)
and, derived from them once by :meth:`EntropyTable.fit` and stored in the model state
(safetensors), the Huffman code lengths of the pair code and of the odd-tail code and the
integer CDFs of a range coder using the *same* statistics.  Storing the derived tables (not
just the counts) pins the bitstream to the checkpoint, independent of how a later version
would build codes from counts.

Pairs are formed inside each coding unit (one frame's code, one segment's LSPs), whose
symbol counts are always even here (256, 128 and 16), so pairs never straddle units.

Chunk payload (one per ~1 s of audio, see :mod:`neurocodec.codecs.cascade`)::

    u8 coder (bits 0-1: 0 = pair Huffman, 1 = pair range coder) | rate step << 2 (bits 2-7:
       signed 6-bit ladder step of module 1's quantizer, 0 = the trained step; see
       :func:`rate_step_multiplier`)
    f32 (big-endian) gain of each channel
    entropy-coded symbols: for each channel, for each quantizer in codec order, the symbols
    of the units that fall in the chunk, row by row.  Huffman: one MSB-first bit string
    padded to a byte; range: one constriction word stream.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..entropy.bitio import BitReader, BitWriter
from ..entropy.huffman import HuffmanCode
from ..entropy.pairs import PairHuffmanCode
from ..entropy import range_coder
from ..errors import CorruptStreamError

__all__ = ["SymbolCounts", "EntropyTable", "CODERS", "encode_chunk", "decode_chunk", "ChunkContent",
           "RATE_STEPS", "rate_step_multiplier", "step_table_key"]

#: entropy coders a chunk can use (the byte value is the index)
CODERS = ("huffman", "range")
#: longest Huffman codeword (bits) and range-coder CDF precision
MAX_CODE_LENGTH = 20
RANGE_PRECISION = 24
#: pseudo-count added to every pair and symbol count when the tables are fitted
PRIOR_COUNT = 1.0 / 64.0
#: the rate steps a chunk can carry (a signed 6-bit field); the ladder moves by 1/32 octave
#: per step up to 16 steps from the trained step, by 3/32 beyond (x0.25 .. x3.75 in all)
RATE_STEPS = range(-32, 32)
_FINE_STEPS = 16


def rate_step_multiplier(step: int) -> float:
    """Factor applied to the rate module's quantizer step (``code_scale``) in a chunk coded at ladder
    step ``step`` (file-level rate control; 0 leaves the trained step): ``2 ** (e / 32)`` with
    ``e = step`` for ``|step| <= 16`` and ``e = sign(step) (16 + 3 (|step| - 16))`` beyond, fine
    where most files land, wide enough for the rare file whose rate is 50% off."""
    if step not in RATE_STEPS:
        raise ValueError(f"rate step {step} is outside {RATE_STEPS.start}..{RATE_STEPS.stop - 1}")
    a = abs(step)
    e = a if a <= _FINE_STEPS else _FINE_STEPS + 3 * (a - _FINE_STEPS)
    return 2.0 ** ((e if step >= 0 else -e) / 32)


@dataclass
class SymbolCounts:
    """Counts of adjacent symbol pairs (``a*K + b``) and of single symbols of one quantizer."""

    alphabet_size: int
    pairs: np.ndarray
    singles: np.ndarray

    @classmethod
    def zeros(cls, alphabet_size: int) -> "SymbolCounts":
        k = int(alphabet_size)
        return cls(k, np.zeros(k * k, dtype=np.int64), np.zeros(k, dtype=np.int64))

    @classmethod
    def from_indices(cls, indices, alphabet_size: int) -> "SymbolCounts":
        """Counts from symbols shaped ``(..., m)``: pairs ``(s[2i], s[2i+1])`` of each last-axis row."""
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        s = np.asarray(indices, dtype=np.int64)
        k = int(alphabet_size)
        if s.size == 0:
            return cls.zeros(k)
        s = s.reshape(-1, s.shape[-1])
        if s.min() < 0 or s.max() >= k:
            raise ValueError(f"symbols must be in 0..{k - 1}")
        m = s.shape[-1] // 2
        pairs = s[:, 0:2 * m:2] * k + s[:, 1:2 * m:2]
        return cls(k, np.bincount(pairs.ravel(), minlength=k * k).astype(np.int64),
                   np.bincount(s.ravel(), minlength=k).astype(np.int64))

    def __add__(self, other: "SymbolCounts") -> "SymbolCounts":
        if other.alphabet_size != self.alphabet_size:
            raise ValueError("cannot add counts of different alphabets")
        return SymbolCounts(self.alphabet_size, self.pairs + other.pairs, self.singles + other.singles)

    def entropy_bits(self) -> float:
        """Empirical entropy of single symbols, bits per symbol."""
        n = self.singles.sum()
        if n == 0:
            return 0.0
        p = self.singles[self.singles > 0] / n
        return float(-(p * np.log2(p)).sum())

    def pair_entropy_bits(self) -> float:
        """Empirical entropy of pairs, bits per *symbol* (half the pair entropy)."""
        n = self.pairs.sum()
        if n == 0:
            return 0.0
        p = self.pairs[self.pairs > 0] / n
        return float(-(p * np.log2(p)).sum()) / 2.0


class EntropyTable(nn.Module):
    """Pair-Huffman and range-coder tables of one quantizer, kept as (persistent) buffers."""

    def __init__(self, alphabet_size: int) -> None:
        super().__init__()
        k = int(alphabet_size)
        if k < 2:
            raise ValueError("alphabet must have at least 2 symbols")
        self.alphabet_size = k
        self.register_buffer("pair_counts", torch.zeros(k * k, dtype=torch.int64))
        self.register_buffer("single_counts", torch.zeros(k, dtype=torch.int64))
        self.register_buffer("pair_lengths", torch.zeros(k * k, dtype=torch.uint8))
        self.register_buffer("tail_lengths", torch.zeros(k, dtype=torch.uint8))
        self.register_buffer("pair_cdf", torch.zeros(k * k + 1, dtype=torch.int64))
        self.fit(SymbolCounts.zeros(k))
        self._cache: tuple[bytes, PairHuffmanCode] | None = None

    def fit(self, counts: SymbolCounts) -> None:
        """Derive and store the tables from ``counts`` plus a pseudo-count of ``PRIOR_COUNT``
        per pair and symbol, so that any input stays codable.  (Add-one smoothing gave the
        65,536 LSP pairs of CQ, seen some 10^5 times in training, almost half of the
        probability mass and cost about a bit per pair.)"""
        if counts.alphabet_size != self.alphabet_size:
            raise ValueError(f"counts for {counts.alphabet_size} symbols given to a table of {self.alphabet_size}")
        pairs = np.asarray(counts.pairs, dtype=np.int64)
        singles = np.asarray(counts.singles, dtype=np.int64)
        pair_code = HuffmanCode.from_frequencies(pairs + PRIOR_COUNT, MAX_CODE_LENGTH)
        tail_code = HuffmanCode.from_frequencies(singles + PRIOR_COUNT, MAX_CODE_LENGTH)
        self.pair_counts.copy_(torch.from_numpy(pairs))
        self.single_counts.copy_(torch.from_numpy(singles))
        self.pair_lengths.copy_(torch.from_numpy(pair_code.code_lengths().astype(np.uint8)))
        self.tail_lengths.copy_(torch.from_numpy(tail_code.code_lengths().astype(np.uint8)))
        self.pair_cdf.copy_(torch.from_numpy(range_coder.quantize_pmf(pairs + PRIOR_COUNT, RANGE_PRECISION)))
        self._cache = None

    def counts(self) -> SymbolCounts:
        return SymbolCounts(self.alphabet_size, self.pair_counts.numpy().copy(), self.single_counts.numpy().copy())

    def huffman(self) -> PairHuffmanCode:
        """The pair Huffman code given by the stored code lengths."""
        key = self.pair_lengths.numpy().tobytes() + self.tail_lengths.numpy().tobytes()
        if self._cache is None or self._cache[0] != key:
            code = PairHuffmanCode(self.alphabet_size,
                                   HuffmanCode.from_lengths(self.pair_lengths.numpy().astype(np.int64)),
                                   HuffmanCode.from_lengths(self.tail_lengths.numpy().astype(np.int64)))
            self._cache = (key, code)
        return self._cache[1]

    def huffman_bits(self, symbols: np.ndarray) -> int:
        """Exact pair-Huffman cost of ``symbols`` (rows of even length)."""
        return self.huffman().cost(np.asarray(symbols).ravel())

    def extra_repr(self) -> str:
        return f"alphabet_size={self.alphabet_size}"


def _pairs(symbols: np.ndarray, k: int) -> np.ndarray:
    s = np.asarray(symbols, dtype=np.int64).ravel()
    if s.size % 2:
        raise ValueError("range-coded units must hold an even number of symbols")
    return s[0::2] * k + s[1::2]


def step_table_key(step: int) -> str:
    """Key of the entropy tables of ladder step ``step`` (``step+4``, ``step-4``) in a cascade
    codec's ``step_tables``."""
    return f"step{int(step):+d}"


@dataclass
class ChunkContent:
    """What one chunk carries: the coder, a gain per channel, per channel the symbols of each
    quantizer (2-D arrays: units x symbols per unit), and the ladder step of module 1's
    quantizer (:func:`rate_step_multiplier`)."""

    coder: str
    gains: np.ndarray
    symbols: list[dict[str, np.ndarray]]
    rate_step: int = 0


def encode_chunk(content: ChunkContent, tables: Mapping[str, EntropyTable], order: Sequence[str]) -> bytes:
    """Serialise one chunk (layout in the module docstring)."""
    coder = CODERS.index(content.coder)
    if content.rate_step not in RATE_STEPS:
        raise ValueError(f"rate step {content.rate_step} does not fit the chunk's 6-bit field")
    head = bytes([coder | ((content.rate_step & 0x3F) << 2)])
    head += struct.pack(f">{len(content.gains)}f", *[float(g) for g in content.gains])
    if content.coder == "huffman":
        writer = BitWriter()
        for channel in content.symbols:
            for name in order:
                tables[name].huffman().encode(channel[name].ravel(), writer)
        return head + writer.getvalue()
    enc = range_coder.RangeEncoder()
    for channel in content.symbols:
        for name in order:
            t = tables[name]
            enc.encode(_pairs(channel[name], t.alphabet_size), t.pair_cdf.numpy())
    return head + enc.getvalue()


def decode_chunk(data: bytes, num_channels: int,
                 tables: Mapping[str, EntropyTable] | Callable[[int], Mapping[str, EntropyTable]],
                 order: Sequence[str], shapes: Mapping[str, tuple[int, int]]) -> ChunkContent:
    """Inverse of :func:`encode_chunk`; ``shapes[name]`` is (units, symbols per unit) of each
    quantizer in this chunk; ``tables`` is the tables, or a function of the chunk's ladder step
    that gives them (steps with tables of their own).  Raises :class:`CorruptStreamError` on
    malformed data."""
    head = 1 + 4 * num_channels
    if len(data) < head:
        raise CorruptStreamError(f"chunk of {len(data)} bytes is shorter than its {head}-byte header")
    if data[0] & 3 >= len(CODERS):
        raise CorruptStreamError(f"unknown entropy coder id {data[0] & 3} in chunk")
    coder = CODERS[data[0] & 3]
    rate_step = data[0] >> 2
    rate_step -= 64 if rate_step >= 32 else 0
    if callable(tables):
        tables = tables(rate_step)
    gains = np.array(struct.unpack(f">{num_channels}f", data[1:head]), dtype=np.float32)
    if not np.all(np.isfinite(gains)) or np.any(gains <= 0):
        raise CorruptStreamError("chunk carries an invalid gain")
    body = data[head:]
    out: list[dict[str, np.ndarray]] = []
    if coder == "huffman":
        reader = BitReader(body)
        for _ in range(num_channels):
            ch = {}
            for name in order:
                units, m = shapes[name]
                ch[name] = tables[name].huffman().decode(reader, units * m).reshape(units, m)
            out.append(ch)
        if reader.bits_left >= 8:
            raise CorruptStreamError(f"{reader.bits_left // 8} unexpected bytes after the chunk's symbols")
    else:
        dec = range_coder.RangeDecoder(body)
        for _ in range(num_channels):
            ch = {}
            for name in order:
                units, m = shapes[name]
                t = tables[name]
                k = t.alphabet_size
                pairs = dec.decode(t.pair_cdf.numpy(), count=units * m // 2)
                sym = np.empty(units * m, dtype=np.int64)
                sym[0::2] = pairs // k
                sym[1::2] = pairs % k
                ch[name] = sym.reshape(units, m)
            out.append(ch)
        dec.finish()
    return ChunkContent(coder=coder, gains=gains, symbols=out, rate_step=rate_step)
