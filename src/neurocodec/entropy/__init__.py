"""Entropy coding: bit I/O, canonical Huffman codes, pair Huffman codes, range coding.

* :mod:`.bitio` - MSB-first :class:`BitWriter` / :class:`BitReader`;
* :mod:`.huffman` - length-limited canonical :class:`HuffmanCode` (package-merge), vectorised
  encoder, table-driven decoder;
* :mod:`.pairs` - :class:`PairHuffmanCode`, Huffman coding of adjacent symbol pairs
  (zhen2019 §2.3, zhen2020 §3.3);
* :mod:`.range_coder` - range coding driven by integer CDF tables (static or per-symbol), on
  ``constriction``.
"""

from .bitio import BitReader, BitWriter
from .huffman import HuffmanCode
from .pairs import PairHuffmanCode
from .range_coder import (CoderComparison, RangeDecoder, RangeEncoder, compare_coders,
                          decode_symbols, encode_symbols, quantize_pmf)

__all__ = [
    "BitReader", "BitWriter", "HuffmanCode", "PairHuffmanCode", "RangeEncoder", "RangeDecoder",
    "encode_symbols", "decode_symbols", "quantize_pmf", "CoderComparison", "compare_coders",
]
