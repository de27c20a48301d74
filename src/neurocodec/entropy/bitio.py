"""MSB-first bit packing: :class:`BitWriter` and :class:`BitReader` (entropy layer).

Bits are written most-significant-bit first: the first bit written is bit 7 of byte 0.
``BitWriter.getvalue`` pads the last byte with zero bits.  ``BitWriter.write_bits`` packs a
whole batch of variable-length codewords with numpy (no Python loop per codeword), which is
what :meth:`neurocodec.entropy.huffman.HuffmanCode.encode` uses.

``BitReader`` reads the same layout back and raises
:class:`neurocodec.errors.CorruptStreamError` when a read runs past the end of the data.
"""

from __future__ import annotations

import numpy as np

from ..errors import CorruptStreamError

__all__ = ["BitWriter", "BitReader", "pack_codewords"]

_U64 = np.uint64
#: codewords packed per vectorised pass in BitWriter.write_bits
_PACK_CHUNK = 1 << 14


def _split_long_codewords(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split codewords longer than 32 bits into a high part and a 32-bit low part."""
    long = lengths > 32
    if not long.any():
        return codes, lengths
    reps = np.where(long, 2, 1)
    out_codes = np.repeat(codes, reps)
    out_lengths = np.repeat(lengths, reps)
    first = np.cumsum(reps) - reps  # index of each codeword's first piece in the output
    hi = first[long]
    out_codes[hi] = codes[long] >> _U64(32)
    out_lengths[hi] = lengths[long] - 32
    out_codes[hi + 1] = codes[long] & _U64(0xFFFFFFFF)
    out_lengths[hi + 1] = 32
    return out_codes, out_lengths


def pack_codewords(codes: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int, int]:
    """Concatenate codewords MSB-first into bytes.

    ``codes[i]`` is written with ``lengths[i]`` bits.  Returns ``(full_bytes, tail, ntail)``:
    the complete bytes and the ``ntail < 8`` leftover bits (as an integer ``tail``).

    Vectorised: every codeword (at most 32 bits after splitting longer ones) lands in at most
    two adjacent 32-bit words; because codewords occupy disjoint bits, OR equals addition, so
    the words are the exact float64 sums ``np.bincount(word, weights=part)`` (all partial sums
    stay below 2**32 < 2**53).
    """
    codes = np.asarray(codes, dtype=_U64).ravel()
    lengths = np.asarray(lengths, dtype=np.int64).ravel()
    keep = lengths > 0
    if not keep.all():
        codes, lengths = codes[keep], lengths[keep]
    codes, lengths = _split_long_codewords(codes, lengths)
    total = int(lengths.sum())
    if total == 0:
        return b"", 0, 0
    start = np.cumsum(lengths) - lengths
    word = start >> 5
    r = start & 31
    # code placed so that its first bit is bit (63 - r) of a 64-bit window over words w, w+1
    shift = (64 - r - lengths).astype(_U64)
    v = codes << shift
    hi = (v >> _U64(32)).astype(np.float64)
    lo = (v & _U64(0xFFFFFFFF)).astype(np.float64)
    nwords = (total + 31) // 32 + 1
    words = np.bincount(word, weights=hi, minlength=nwords) + np.bincount(word + 1, weights=lo,
                                                                           minlength=nwords)
    raw = words.astype(np.uint64).astype(">u4").tobytes()
    nfull = total // 8
    ntail = total - 8 * nfull
    tail = raw[nfull] >> (8 - ntail) if ntail else 0
    return raw[:nfull], tail, ntail


class BitWriter:
    """Accumulates bits MSB-first; :meth:`getvalue` returns them zero-padded to whole bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._acc = 0  # pending bits (fewer than 8), right-aligned
        self._nacc = 0

    def write(self, value: int, nbits: int) -> None:
        """Append the ``nbits`` low bits of ``value`` (``0 <= value < 2**nbits``, ``0 <= nbits <= 64``)."""
        value = int(value)
        nbits = int(nbits)
        if not 0 <= nbits <= 64:
            raise ValueError(f"nbits must be in 0..64, got {nbits}")
        if value < 0 or value >> nbits:
            raise ValueError(f"value {value} does not fit in {nbits} bits")
        acc = (self._acc << nbits) | value
        n = self._nacc + nbits
        nbytes = n >> 3
        if nbytes:
            rest = n & 7
            self._buf += (acc >> rest).to_bytes(nbytes, "big")
            acc &= (1 << rest) - 1
            n = rest
        self._acc, self._nacc = acc, n

    def write_bits(self, codes: np.ndarray, lengths: np.ndarray) -> None:
        """Append many codewords at once: ``codes[i]`` with ``lengths[i]`` bits (0..64 each)."""
        codes = np.asarray(codes)
        lengths = np.asarray(lengths)
        if codes.shape != lengths.shape:
            raise ValueError(f"codes {codes.shape} and lengths {lengths.shape} differ in shape")
        if codes.size == 0:
            return
        if codes.dtype.kind not in "iu" or lengths.dtype.kind not in "iu":
            raise ValueError("codes and lengths must be integer arrays")
        lengths = lengths.astype(np.int64).ravel()
        if lengths.min() < 0 or lengths.max() > 64:
            raise ValueError("codeword lengths must be in 0..64")
        if codes.dtype.kind == "i" and codes.min() < 0:
            raise ValueError("codes must be non-negative")
        codes = codes.astype(_U64).ravel()
        short = lengths < 64
        if np.any(codes[short] >> lengths[short].astype(_U64)):
            raise ValueError("a code does not fit in its length")
        for a in range(0, codes.size, _PACK_CHUNK):  # chunks stay in cache
            c, n = codes[a:a + _PACK_CHUNK], lengths[a:a + _PACK_CHUNK]
            if self._nacc:
                c = np.concatenate([np.array([self._acc], dtype=_U64), c])
                n = np.concatenate([np.array([self._nacc], dtype=np.int64), n])
            full, tail, ntail = pack_codewords(c, n)
            self._buf += full
            self._acc, self._nacc = tail, ntail

    def write_unary(self, value: int) -> None:
        """Append ``value`` one bits followed by a zero bit."""
        value = int(value)
        if value < 0:
            raise ValueError("unary value must be non-negative")
        while value >= 64:
            self.write((1 << 64) - 1, 64)
            value -= 64
        self.write(((1 << value) - 1) << 1, value + 1)

    def align(self) -> None:
        """Pad with zero bits up to the next byte boundary."""
        if self._nacc:
            self.write(0, 8 - self._nacc)

    @property
    def bit_length(self) -> int:
        """Number of bits written so far."""
        return 8 * len(self._buf) + self._nacc

    def getvalue(self) -> bytes:
        """The bits written so far, the last byte padded with zeros."""
        if self._nacc:
            return bytes(self._buf) + bytes([self._acc << (8 - self._nacc)])
        return bytes(self._buf)


class BitReader:
    """Reads MSB-first bits from ``data``; reading past the end raises ``CorruptStreamError``."""

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0  # bit position
        self._nbits = 8 * len(self._data)

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def position(self) -> int:
        """Index of the next bit to read."""
        return self._pos

    @property
    def bits_left(self) -> int:
        """Number of unread bits (including the padding bits of the last byte)."""
        return self._nbits - self._pos

    def read(self, nbits: int) -> int:
        """Read ``nbits`` (0..64) bits as an unsigned integer."""
        nbits = int(nbits)
        if not 0 <= nbits <= 64:
            raise ValueError(f"nbits must be in 0..64, got {nbits}")
        pos = self._pos
        end = pos + nbits
        if end > self._nbits:
            raise CorruptStreamError(
                f"bitstream ends early: need {nbits} bits at bit {pos}, only {self._nbits - pos} left")
        if nbits == 0:
            return 0
        b0 = pos >> 3
        b1 = (end + 7) >> 3
        chunk = int.from_bytes(self._data[b0:b1], "big")
        self._pos = end
        return (chunk >> (8 * b1 - end)) & ((1 << nbits) - 1)

    def read_unary(self, limit: int = 1 << 20) -> int:
        """Read ones up to a zero bit; more than ``limit`` ones is treated as corruption."""
        n = 0
        while self.read(1):
            n += 1
            if n > limit:
                raise CorruptStreamError(f"unary code longer than {limit} bits")
        return n

    def align(self) -> None:
        """Skip to the next byte boundary."""
        self.skip((-self._pos) & 7)

    def skip(self, nbits: int) -> None:
        """Advance by ``nbits`` bits."""
        nbits = int(nbits)
        if nbits < 0 or self._pos + nbits > self._nbits:
            raise CorruptStreamError(f"cannot skip {nbits} bits with {self.bits_left} left")
        self._pos += nbits

    def windows(self, count: int, width: int) -> np.ndarray:
        """``width``-bit big-endian windows starting at each of the next ``count`` bit positions.

        Bits beyond the end of the data read as zero.  ``width`` may be at most 57 (a window
        starting at any bit offset within a byte must fit in 64 bits).  Used by table-driven
        decoders that peek ahead without consuming.
        """
        if not 1 <= width <= 57:
            raise ValueError("window width must be in 1..57")
        count = max(int(count), 0)
        if count == 0:
            return np.zeros(0, dtype=_U64)
        pos = self._pos
        first = pos >> 3
        last = (pos + count - 1) >> 3  # byte of the last window start
        nb = last - first + 1
        seg = np.frombuffer(self._data, dtype=np.uint8)[first:first + nb + 8]
        padded = np.zeros(nb + 8, dtype=_U64)
        padded[:seg.size] = seg
        w = np.zeros(nb, dtype=_U64)
        for j in range(8):
            w |= padded[j:j + nb] << _U64(56 - 8 * j)
        p = np.arange(pos, pos + count, dtype=np.int64)
        sh = (p & 7).astype(_U64)
        return (w[(p >> 3) - first] << sh) >> _U64(64 - width)

    def seek(self, bit_position: int) -> None:
        """Move to an absolute bit position (0 .. total bits)."""
        bit_position = int(bit_position)
        if not 0 <= bit_position <= self._nbits:
            raise CorruptStreamError(f"bit position {bit_position} is outside the stream")
        self._pos = bit_position


class BitSerializable:
    """Byte (de)serialisation for tables that know how to ``write_to`` a :class:`BitWriter`
    and ``read_from`` a :class:`BitReader` (Huffman and pair-Huffman tables).

    ``_table_name`` names the table in the error raised for trailing bytes."""

    _table_name = "table"

    def to_bytes(self) -> bytes:
        """Compact serialisation (see ``write_to``), zero-padded to whole bytes."""
        w = BitWriter()
        self.write_to(w)  # type: ignore[attr-defined]
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes):
        """Inverse of :meth:`to_bytes`; raises CorruptStreamError on malformed data."""
        r = BitReader(data)
        obj = cls.read_from(r)  # type: ignore[attr-defined]
        if r.bits_left >= 8:
            raise CorruptStreamError(f"{r.bits_left // 8} unexpected bytes after the {cls._table_name}")
        return obj
