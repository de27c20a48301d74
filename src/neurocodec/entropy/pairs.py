"""Huffman coding of adjacent symbol pairs (entropy layer).

zhen2019 §2.3 and zhen2020 §3.3 (end of "Model training") Huffman-code "a short
symbol sequence of adjacent symbols, i.e., two symbols" / "grouped sample pairs (two adjacent
samples per pair)" to exploit the temporal correlation of the quantised codes.  Here a pair
``(a, b)`` of symbols from an alphabet of size K becomes the pair symbol ``a * K + b`` and one
canonical Huffman code over the ``K * K`` pair symbols codes them.  When the number of symbols
is odd, the last one is coded with a second Huffman code over the K single symbols (trained on
the marginal symbol counts); the decoder knows the count, so it knows whether a tail follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import CorruptStreamError
from .bitio import BitReader, BitSerializable, BitWriter
from .huffman import HuffmanCode, _as_symbols

__all__ = ["PairHuffmanCode", "pair_symbols"]


def pair_symbols(symbols, alphabet_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``symbols`` into pair symbols ``a*K + b`` and the (0 or 1 element) odd tail."""
    s = _as_symbols(symbols)
    k = int(alphabet_size)
    if s.size and (s.min() < 0 or s.max() >= k):
        bad = s[(s < 0) | (s >= k)][0]
        raise ValueError(f"symbol {bad} is outside the alphabet 0..{k - 1}")
    m = s.size // 2
    return s[0:2 * m:2] * k + s[1:2 * m:2], s[2 * m:]


@dataclass(frozen=True)
class PairHuffmanCode(BitSerializable):
    """Pair Huffman code: ``pair_code`` over ``K*K`` pair symbols plus ``tail_code`` over K."""

    _table_name = "pair table"

    alphabet_size: int
    pair_code: HuffmanCode
    tail_code: HuffmanCode

    def __post_init__(self) -> None:
        k = int(self.alphabet_size)
        object.__setattr__(self, "alphabet_size", k)
        if k < 1:
            raise ValueError("alphabet_size must be at least 1")
        if self.pair_code.num_symbols != k * k or self.tail_code.num_symbols != k:
            raise ValueError(
                f"pair code has {self.pair_code.num_symbols} symbols and tail code "
                f"{self.tail_code.num_symbols}; expected {k * k} and {k}")

    @classmethod
    def from_symbols(cls, train_symbols: np.ndarray | Sequence[np.ndarray], alphabet_size: int,
                     max_length: int = 20, ensure_all: bool = True) -> "PairHuffmanCode":
        """Train on ``train_symbols``: one 1-D array, or a list of 1-D arrays (e.g. frames), each
        paired from its own start.  With ``ensure_all`` (default) every pair and every single
        symbol gets a codeword (add-one smoothing), so any sequence can be coded."""
        k = int(alphabet_size)
        if k < 1:
            raise ValueError("alphabet_size must be at least 1")
        if isinstance(train_symbols, np.ndarray) and train_symbols.ndim <= 1:
            seqs: Iterable = [train_symbols]
        else:
            seqs = train_symbols
        pair_counts = np.zeros(k * k, dtype=np.int64)
        single_counts = np.zeros(k, dtype=np.int64)
        for seq in seqs:
            pairs, _ = pair_symbols(seq, k)
            pair_counts += np.bincount(pairs, minlength=k * k)
            single_counts += np.bincount(_as_symbols(seq), minlength=k)
        if not ensure_all and pair_counts.sum() == 0:
            raise ValueError("training data contains no symbol pairs")
        pair_code = HuffmanCode.from_frequencies(pair_counts, max_length, ensure_all)
        tail_code = HuffmanCode.from_frequencies(single_counts, max_length, ensure_all or
                                                 single_counts.sum() == 0)
        return cls(k, pair_code, tail_code)

    def cost(self, symbols) -> int:
        """Exact number of bits :meth:`encode` writes for ``symbols``."""
        pairs, tail = pair_symbols(symbols, self.alphabet_size)
        return self.pair_code.cost(pairs) + self.tail_code.cost(tail)

    def encode(self, symbols, writer: BitWriter) -> None:
        """Append the pair codewords (and the tail codeword when the count is odd)."""
        pairs, tail = pair_symbols(symbols, self.alphabet_size)
        self.pair_code._check(pairs)
        self.tail_code._check(tail)
        self.pair_code.encode(pairs, writer)
        self.tail_code.encode(tail, writer)

    def decode(self, reader: BitReader, count: int) -> np.ndarray:
        """Decode ``count`` symbols (CorruptStreamError on invalid or truncated data)."""
        count = int(count)
        if count < 0:
            raise ValueError("count must be non-negative")
        k = self.alphabet_size
        pairs = self.pair_code.decode(reader, count // 2)
        out = np.empty(count, dtype=np.int64)
        out[0:2 * (count // 2):2] = pairs // k
        out[1:2 * (count // 2):2] = pairs % k
        if count % 2:
            out[-1] = self.tail_code.decode(reader, 1)[0]
        return out

    def write_to(self, writer: BitWriter) -> None:
        """Serialise: K (32 bits), then the pair code and the tail code (HuffmanCode.write_to)."""
        writer.write(self.alphabet_size, 32)
        self.pair_code.write_to(writer)
        self.tail_code.write_to(writer)

    @classmethod
    def read_from(cls, reader: BitReader) -> "PairHuffmanCode":
        k = reader.read(32)
        pair_code = HuffmanCode.read_from(reader)
        tail_code = HuffmanCode.read_from(reader)
        try:
            return cls(k, pair_code, tail_code)
        except ValueError as exc:
            raise CorruptStreamError(f"pair Huffman table is invalid: {exc}") from None

