"""BitWriter / BitReader: layout, round trips, batch writes, error paths."""

from __future__ import annotations

import random

import numpy as np
import pytest

from neurocodec.entropy.bitio import BitReader, BitWriter, pack_codewords
from neurocodec.errors import CorruptStreamError


def test_msb_first_layout_and_zero_padding():
    w = BitWriter()
    w.write(0b101, 3)
    w.write(0b1, 1)
    w.write(0xABC, 12)
    w.write(0b11, 2)
    assert w.bit_length == 18
    assert w.getvalue() == bytes([0b10111010, 0b10111100, 0b11000000])


def test_scalar_round_trip_mixed_widths_including_64():
    rnd = random.Random(0)
    widths = [rnd.randint(0, 64) for _ in range(500)]
    values = [rnd.getrandbits(n) if n else 0 for n in widths]
    values[0], widths[0] = (1 << 64) - 1, 64
    w = BitWriter()
    for v, n in zip(values, widths):
        w.write(v, n)
    r = BitReader(w.getvalue())
    assert [r.read(n) for n in widths] == values
    assert r.bits_left == 8 * len(w.getvalue()) - w.bit_length


@pytest.mark.parametrize("max_len,n", [(1, 3000), (7, 40000), (32, 3000), (33, 3000), (64, 3000)])
def test_write_bits_equals_scalar_writes(max_len, n):
    rnd = random.Random(max_len)
    lengths = np.array([rnd.randint(0, max_len) for _ in range(n)])
    codes = np.array([rnd.getrandbits(int(n)) if n else 0 for n in lengths], dtype=np.uint64)
    a, b = BitWriter(), BitWriter()
    a.write(0b10, 2)  # unaligned start exercises the pending-bits path
    b.write(0b10, 2)
    a.write_bits(codes, lengths)
    for c, n in zip(codes, lengths):
        b.write(int(c), int(n))
    a.write(1, 1)
    b.write(1, 1)
    assert a.bit_length == b.bit_length == 3 + int(lengths.sum())
    assert a.getvalue() == b.getvalue()


def test_pack_codewords_returns_tail_bits():
    full, tail, ntail = pack_codewords(np.array([0b1, 0b0110101011]), np.array([1, 10]))
    assert full == bytes([0b10110101])
    assert (tail, ntail) == (0b011, 3)


def test_unary_and_align_round_trip():
    w = BitWriter()
    for v in [0, 1, 5, 70]:
        w.write_unary(v)
    w.align()
    assert w.bit_length % 8 == 0
    w.write(0x5A, 8)
    r = BitReader(w.getvalue())
    assert [r.read_unary() for _ in range(4)] == [0, 1, 5, 70]
    r.align()
    assert r.read(8) == 0x5A
    assert r.bits_left == 0


def test_write_rejects_bad_values():
    w = BitWriter()
    with pytest.raises(ValueError):
        w.write(4, 2)
    with pytest.raises(ValueError):
        w.write(-1, 3)
    with pytest.raises(ValueError):
        w.write(0, 65)
    with pytest.raises(ValueError):
        w.write_bits(np.array([4]), np.array([2]))
    with pytest.raises(ValueError):
        w.write_bits(np.array([1, 2]), np.array([3]))
    assert w.bit_length == 0


def test_read_past_end_raises_corrupt_stream_error():
    r = BitReader(b"\xff")
    assert r.read(5) == 0b11111
    with pytest.raises(CorruptStreamError):
        r.read(4)
    assert r.read(3) == 0b111  # a failed read consumes nothing
    with pytest.raises(CorruptStreamError):
        r.read(1)
    with pytest.raises(CorruptStreamError):
        BitReader(b"").read_unary()


def test_windows_peek_without_consuming_and_zero_pad():
    r = BitReader(bytes([0b10110011, 0b01000000]))
    r.read(3)
    win = r.windows(5, 4)
    assert win.tolist() == [0b1001, 0b0011, 0b0110, 0b1101, 0b1010]
    assert r.position == 3
    r.seek(14)
    assert r.windows(2, 4).tolist() == [0b0000, 0b0000]
