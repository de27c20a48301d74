"""Canonical, length-limited Huffman codes (entropy layer).

A :class:`HuffmanCode` is fully described by the code length of each symbol ``0..K-1``
(0 = the symbol has no codeword).  Codewords are assigned canonically (Deflate-style): symbols
sorted by ``(length, symbol)`` get consecutive codes, so the lengths are all a decoder needs.

* Construction from counts uses the package-merge algorithm (Larmore & Hirschberg 1990), which
  gives the optimal prefix code whose longest codeword is at most ``max_length`` bits; when the
  limit does not bind it has the cost of a Huffman code (Huffman 1952, ref. [28] of zhen2019,
  whose §2.3 Huffman-codes the quantised symbols).
* Encoding is vectorised (``BitWriter.write_bits``).
* Decoding is table-driven and vectorised: for every candidate bit position the next
  ``max_len`` bits are looked up in a ``2**max_len`` table of ``(symbol, length)`` (or, for
  codes longer than :data:`TABLE_BITS`, found by binary search over the canonical codeword
  intervals), which gives a "next codeword start" pointer per position; the chain of codeword
  starts from the current position is then followed with pointer doubling.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Iterable

import numpy as np

from ..errors import CorruptStreamError
from .bitio import BitReader, BitSerializable, BitWriter

__all__ = ["HuffmanCode", "MAX_CODE_LENGTH", "TABLE_BITS", "package_merge_lengths"]

#: longest codeword supported (a decoder window of this many bits must fit in 64 bits)
MAX_CODE_LENGTH = 57
#: codes whose longest codeword is at most this long decode through a 2**max_len lookup table
TABLE_BITS = 20

_U64 = np.uint64
#: symbols decoded per vectorised pass (bounds memory and the pointer-doubling depth)
_DECODE_CHUNK = 1 << 16


def package_merge_lengths(weights: np.ndarray, max_length: int) -> np.ndarray:
    """Optimal code lengths (at most ``max_length``) for positive ``weights`` (package-merge).

    Returns an int array of lengths in the order of ``weights``.  For ``n`` weights the
    algorithm builds ``max_length`` lists: the first is the sorted leaves; each next one merges
    the leaves with the "packages" (sums of consecutive pairs) of the previous list.  The
    ``2n - 2`` cheapest items of the last list are selected, selected packages expand into
    their two items one list down, and a leaf's code length is the number of lists in which it
    is selected.  Lists are truncated to ``2n - 2`` items, the most ever selected.
    """
    w = np.asarray(weights, dtype=np.float64)
    n = w.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1:
        return np.ones(1, dtype=np.int64)
    if n > 2 ** max_length:
        raise ValueError(f"{n} symbols cannot be coded with codewords of at most {max_length} bits")
    order = np.argsort(w, kind="stable")
    leaves = w[order]
    keep = 2 * n - 2
    prev = leaves[:keep]
    is_leaf_levels = [np.ones(prev.size, dtype=bool)]
    for _ in range(1, max_length):
        m = prev.size // 2
        packages = prev[0:2 * m:2] + prev[1:2 * m:2]
        # stable merge: a leaf goes before a package of equal weight
        pkg_pos = np.searchsorted(leaves, packages, side="right") + np.arange(m)
        size = min(n + m, keep)
        is_leaf = np.ones(n + m, dtype=bool)
        is_leaf[pkg_pos] = False
        merged = np.empty(n + m, dtype=np.float64)
        merged[pkg_pos] = packages
        merged[is_leaf] = leaves
        prev = merged[:size]
        is_leaf_levels.append(is_leaf[:size])
    lengths_sorted = np.zeros(n, dtype=np.int64)
    c = keep
    for is_leaf in reversed(is_leaf_levels):
        x = int(is_leaf[:c].sum())
        lengths_sorted[:x] += 1
        c = 2 * (c - x)
    out = np.empty(n, dtype=np.int64)
    out[order] = lengths_sorted
    return out


def _as_symbols(symbols) -> np.ndarray:
    arr = np.asarray(symbols)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.floor(arr) == arr):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"symbols must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False).ravel()


@dataclass(frozen=True)
class _Tables:
    codes: np.ndarray  # uint64 code per symbol (0 where no codeword)
    sorted_symbols: np.ndarray  # symbols with codewords in canonical order
    starts: np.ndarray  # left-justified (max_len bits) start of each codeword, canonical order
    ends: np.ndarray  # exclusive left-justified end
    max_len: int


@dataclass(frozen=True)
class HuffmanCode(BitSerializable):
    """Canonical prefix code over symbols ``0..K-1`` given by its code lengths."""

    _table_name = "Huffman table"

    lengths: tuple[int, ...]

    def __post_init__(self) -> None:
        lengths = tuple(int(v) for v in self.lengths)
        object.__setattr__(self, "lengths", lengths)
        if not lengths:
            raise ValueError("a Huffman code needs at least one symbol")
        if min(lengths) < 0 or max(lengths) > MAX_CODE_LENGTH:
            raise ValueError(f"code lengths must be in 0..{MAX_CODE_LENGTH}")
        if max(lengths) == 0:
            raise ValueError("a Huffman code needs at least one codeword (all lengths are 0)")
        top = max(lengths)
        kraft = sum(1 << (top - v) for v in lengths if v)
        if kraft > 1 << top:
            raise ValueError(f"code lengths violate the Kraft inequality (sum 2^-l = {kraft / 2 ** top:.6g} > 1)")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_frequencies(cls, counts, max_length: int = 20, ensure_all: bool = False) -> "HuffmanCode":
        """Optimal code with codewords of at most ``max_length`` bits for symbol ``counts``.

        Symbols with zero count get no codeword unless ``ensure_all`` is set, in which case one
        is added to every count (add-one smoothing) so that every symbol can be coded.  A single
        used symbol gets a 1-bit codeword.
        """
        c = np.asarray(counts, dtype=np.float64).ravel()
        if c.size == 0:
            raise ValueError("counts is empty")
        if not np.all(np.isfinite(c)) or c.min() < 0:
            raise ValueError("counts must be finite and non-negative")
        max_length = int(max_length)
        if not 1 <= max_length <= MAX_CODE_LENGTH:
            raise ValueError(f"max_length must be in 1..{MAX_CODE_LENGTH}")
        if ensure_all:
            c = c + 1.0
        used = np.flatnonzero(c > 0)
        if used.size == 0:
            raise ValueError("all counts are zero; pass ensure_all=True to code every symbol")
        lengths = np.zeros(c.size, dtype=np.int64)
        lengths[used] = package_merge_lengths(c[used], max_length)
        return cls(tuple(lengths.tolist()))

    @classmethod
    def from_lengths(cls, lengths: Iterable[int]) -> "HuffmanCode":
        """Code with the given lengths (0 = no codeword); raises ValueError if Kraft fails."""
        return cls(tuple(int(v) for v in np.asarray(list(lengths)).ravel()))

    # -- properties ---------------------------------------------------------------------
    @property
    def num_symbols(self) -> int:
        """Alphabet size K (symbols with and without codewords)."""
        return len(self.lengths)

    @property
    def max_code_length(self) -> int:
        """Length of the longest codeword."""
        return max(self.lengths)

    def code_lengths(self) -> np.ndarray:
        """Code length per symbol as an int64 array (0 = no codeword)."""
        return self._length_array.copy()

    @cached_property
    def _length_array(self) -> np.ndarray:
        return np.asarray(self.lengths, dtype=np.int64)

    def is_complete(self) -> bool:
        """Whether the Kraft sum is exactly 1 (every bit string starts with a codeword)."""
        top = self.max_code_length
        return sum(1 << (top - v) for v in self.lengths if v) == 1 << top

    @cached_property
    def _tables(self) -> _Tables:
        lens = self._length_array
        top = int(lens.max())
        syms = np.flatnonzero(lens > 0)
        order = np.lexsort((syms, lens[syms]))
        sorted_symbols = syms[order]
        sl = lens[sorted_symbols].astype(_U64)
        span = _U64(1) << (_U64(top) - sl)
        ends = np.cumsum(span, dtype=_U64)
        starts = ends - span
        codes = np.zeros(lens.size, dtype=_U64)
        codes[sorted_symbols] = starts >> (_U64(top) - sl)
        return _Tables(codes, sorted_symbols, starts, ends, top)

    @cached_property
    def _lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """``2**max_len`` table of (symbol, length); length 0 marks an unassigned bit pattern."""
        t = self._tables
        size = 1 << t.max_len
        span = (t.ends - t.starts).astype(np.int64)
        used = int(span.sum())
        sym = np.zeros(size, dtype=np.int32)
        length = np.zeros(size, dtype=np.uint8)
        sym[:used] = np.repeat(t.sorted_symbols, span)
        length[:used] = np.repeat(self._length_array[t.sorted_symbols], span)
        return sym, length

    def code_values(self) -> np.ndarray:
        """Canonical codeword of each symbol as an integer (uint64; 0 for symbols without one).

        With :meth:`code_lengths` this is what ``BitWriter.write_bits`` takes, for callers that
        merge several codes' codewords into one vectorised write."""
        return self._tables.codes.copy()

    def codewords(self) -> list[str]:
        """Codeword of each symbol as a '0'/'1' string ('' for symbols without one)."""
        codes = self._tables.codes
        return [format(int(codes[s]), f"0{v}b") if v else "" for s, v in enumerate(self.lengths)]

    # -- coding -------------------------------------------------------------------------
    def _check(self, symbols) -> np.ndarray:
        s = _as_symbols(symbols)
        if s.size == 0:
            return s
        if s.min() < 0 or s.max() >= self.num_symbols:
            bad = s[(s < 0) | (s >= self.num_symbols)][0]
            raise ValueError(f"symbol {bad} is outside the alphabet 0..{self.num_symbols - 1}")
        lens = self._length_array[s]
        if not lens.all():
            bad = s[lens == 0][0]
            raise ValueError(f"symbol {bad} has no codeword (build the code with ensure_all=True)")
        return s

    def cost(self, symbols) -> int:
        """Exact number of bits :meth:`encode` writes for ``symbols``."""
        s = self._check(symbols)
        return int(self._length_array[s].sum())

    def encode(self, symbols, writer: BitWriter) -> None:
        """Append the codewords of ``symbols`` to ``writer``."""
        s = self._check(symbols)
        if s.size:
            writer.write_bits(self._tables.codes[s], self._length_array[s])

    def _lookup_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(symbol, length) for each ``max_len``-bit window; length 0 = invalid pattern."""
        t = self._tables
        if t.max_len <= TABLE_BITS:
            sym, length = self._lookup
            idx = windows.astype(np.int64)
            return sym[idx], length[idx]
        k = np.searchsorted(t.ends, windows, side="right")
        valid = k < t.sorted_symbols.size
        k = np.minimum(k, t.sorted_symbols.size - 1)
        syms = t.sorted_symbols[k]
        return syms, np.where(valid, self._length_array[syms], 0)

    def decode(self, reader: BitReader, count: int) -> np.ndarray:
        """Decode ``count`` symbols from ``reader`` (int64 array).

        Raises :class:`CorruptStreamError` on a bit pattern that is no codeword or when the
        data ends before ``count`` symbols.
        """
        count = int(count)
        if count < 0:
            raise ValueError("count must be non-negative")
        out = np.empty(count, dtype=np.int64)
        if count == 0:
            return out
        top = self._tables.max_len
        # expected bits per symbol if data follow the code's implied distribution 2^-l
        lens = self._length_array[self._length_array > 0]
        expected = float(np.sum(lens * np.exp2(-lens.astype(np.float64))))
        done = 0
        while done < count:
            need = min(count - done, _DECODE_CHUNK)
            left = reader.bits_left
            if left <= 0:
                raise CorruptStreamError(
                    f"Huffman data ends after {done} of {count} symbols")
            span = min(left, (need - 1) * top + 1, int(need * expected * 1.25) + 8 * top)
            windows = reader.windows(span, top)
            sym_at, len_at = self._lookup_windows(windows)
            # next codeword start from every position; `span` is the absorbing "left" state
            nxt = np.arange(span, dtype=np.int64) + len_at
            nxt[(len_at == 0) | (nxt >= span)] = span
            nxt = np.append(nxt, span)
            visited = np.zeros(1, dtype=np.int64)
            jump = nxt
            while visited.size < need:
                visited = np.concatenate([visited, jump[visited]])
                if visited.size < need:
                    jump = jump[jump]
            visited = visited[:need]
            inside = visited < span
            n_ok = need if inside.all() else int(np.argmin(inside))
            pos = visited[:n_ok]
            lens_ok = len_at[pos]
            bad = np.flatnonzero(lens_ok == 0)
            if bad.size:
                raise CorruptStreamError(
                    f"invalid Huffman codeword at bit {reader.position + int(pos[bad[0]])}")
            end = int(pos[-1] + lens_ok[-1])
            if end > left:
                raise CorruptStreamError(f"Huffman data ends inside symbol {done + n_ok} of {count}")
            out[done:done + n_ok] = sym_at[pos]
            reader.skip(end)
            done += n_ok
        return out

    # -- serialisation ------------------------------------------------------------------
    def write_to(self, writer: BitWriter) -> None:
        """Serialise the lengths: K (32 bits), field width b (6 bits), then K b-bit lengths."""
        b = max(1, self.max_code_length.bit_length())
        writer.write(self.num_symbols, 32)
        writer.write(b, 6)
        lens = self._length_array
        writer.write_bits(lens.astype(_U64), np.full(lens.size, b, dtype=np.int64))

    @classmethod
    def read_from(cls, reader: BitReader) -> "HuffmanCode":
        """Read a code written by :meth:`write_to` (CorruptStreamError when invalid)."""
        k = reader.read(32)
        b = reader.read(6)
        if k == 0 or not 1 <= b <= 6:
            raise CorruptStreamError("Huffman table header is invalid")
        if k * b > reader.bits_left:
            raise CorruptStreamError("Huffman table is truncated")
        lengths = reader.windows(k * b, b)[::b]
        reader.skip(k * b)
        try:
            return cls(tuple(lengths.astype(np.int64).tolist()))
        except ValueError as exc:
            raise CorruptStreamError(f"Huffman table is invalid: {exc}") from None

