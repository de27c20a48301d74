"""Canonical length-limited Huffman codes: optimality, canonical form, round trips, errors."""

from __future__ import annotations

import hashlib
import heapq
import itertools

import numpy as np
import pytest

from neurocodec.entropy.bitio import BitReader, BitWriter
from neurocodec.entropy.huffman import TABLE_BITS, HuffmanCode, package_merge_lengths
from neurocodec.errors import CorruptStreamError


def huffman_cost(counts) -> float:
    """Reference: total cost of an (unlimited) Huffman code, sum of merged weights."""
    heap = [float(c) for c in counts if c > 0]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0.0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total


def round_trip(code: HuffmanCode, symbols: np.ndarray) -> None:
    w = BitWriter()
    w.write(0b101, 3)  # misalign on purpose
    code.encode(symbols, w)
    assert w.bit_length == 3 + code.cost(symbols)
    w.write(0x3C, 8)
    r = BitReader(w.getvalue())
    assert r.read(3) == 0b101
    out = code.decode(r, symbols.size)
    np.testing.assert_array_equal(out, symbols)
    assert r.read(8) == 0x3C


@pytest.mark.parametrize("k,alpha", [(3, 1.0), (17, 0.3), (256, 0.5), (4096, 2.0)])
def test_round_trip_random_distributions(k, alpha):
    rng = np.random.default_rng(k)
    p = rng.dirichlet(np.full(k, alpha))
    s = rng.choice(k, size=20000, p=p)
    code = HuffmanCode.from_frequencies(np.bincount(s, minlength=k))
    round_trip(code, s)
    # optimal: same total cost as a textbook Huffman code
    assert code.cost(s) == pytest.approx(huffman_cost(np.bincount(s, minlength=k)))


def test_degenerate_single_symbol_gets_one_bit():
    code = HuffmanCode.from_frequencies([0, 0, 7, 0])
    assert code.lengths == (0, 0, 1, 0)
    s = np.full(9, 2)
    round_trip(code, s)
    assert code.cost(s) == 9


def test_two_symbols_one_bit_each():
    code = HuffmanCode.from_frequencies([1, 1000])
    assert code.lengths == (1, 1)
    assert code.codewords() == ["0", "1"]
    round_trip(code, np.array([1, 0, 1, 1, 0]))


def test_very_skewed_distribution():
    rng = np.random.default_rng(3)
    counts = np.array([10 ** 6, 3, 2, 1, 1, 1])
    code = HuffmanCode.from_frequencies(counts)
    assert code.lengths[0] == 1
    s = rng.choice(6, size=5000, p=counts / counts.sum())
    round_trip(code, s)


def test_canonical_codewords_are_consecutive_and_prefix_free():
    code = HuffmanCode.from_frequencies([5, 9, 12, 13, 16, 45, 0, 1])
    words = code.codewords()
    ordered = sorted((len(c), s) for s, c in enumerate(words) if c)
    values = [int(words[s], 2) for _, s in ordered]
    # canonical: next code = (previous + 1) << (length increase)
    for (l0, _), (l1, _), v0, v1 in zip(ordered, ordered[1:], values, values[1:]):
        assert v1 == (v0 + 1) << (l1 - l0)
    assert values[0] == 0
    for a, b in itertools.permutations([c for c in words if c], 2):
        assert not b.startswith(a)
    assert words[6] == ""
    assert code.code_values().tolist() == [int(c, 2) if c else 0 for c in words]


def test_kraft_sum_is_one_for_full_codes_and_at_most_one_in_general():
    rng = np.random.default_rng(5)
    for _ in range(20):
        counts = rng.integers(0, 50, size=rng.integers(2, 40))
        counts[:2] += 1
        code = HuffmanCode.from_frequencies(counts, max_length=rng.integers(6, 16))
        lens = code.code_lengths()
        assert np.sum(np.exp2(-lens[lens > 0].astype(float))) == pytest.approx(1.0)
        assert code.is_complete()


def test_length_limit_respected_and_optimal():
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    free = HuffmanCode.from_frequencies(fib, max_length=40)
    assert free.max_code_length == 29  # Fibonacci weights give the deepest Huffman tree
    limited = HuffmanCode.from_frequencies(fib, max_length=10)
    assert limited.max_code_length == 10
    cost = int(np.dot(limited.code_lengths(), fib))
    # brute-force check on a small instance that package-merge is optimal under the limit
    small = [1, 1, 2, 3, 5, 8]
    best = min(int(np.dot(ls, small)) for ls in itertools.product(range(1, 5), repeat=6)
               if sum(2.0 ** -v for v in ls) <= 1)
    got = HuffmanCode.from_frequencies(small, max_length=4)
    assert int(np.dot(got.code_lengths(), small)) == best
    assert cost >= int(np.dot(free.code_lengths(), fib))


def test_long_codes_decode_without_table():
    fib = [1, 1]
    while len(fib) < 26:
        fib.append(fib[-1] + fib[-2])
    code = HuffmanCode.from_frequencies(fib, max_length=40)
    assert code.max_code_length > TABLE_BITS
    s = np.r_[np.arange(26), np.random.default_rng(0).integers(0, 26, 500)]
    round_trip(code, s)


def test_ensure_all_gives_every_symbol_a_codeword():
    code = HuffmanCode.from_frequencies([0, 100, 0, 50, 0], ensure_all=True)
    assert all(v > 0 for v in code.lengths)
    round_trip(code, np.array([0, 2, 4, 1, 3]))
    plain = HuffmanCode.from_frequencies([0, 100, 0, 50, 0])
    with pytest.raises(ValueError, match="no codeword"):
        plain.cost([2])
    with pytest.raises(ValueError, match="outside the alphabet"):
        plain.encode([5], BitWriter())


def test_invalid_construction_raises_value_error():
    with pytest.raises(ValueError, match="Kraft"):
        HuffmanCode.from_lengths([1, 1, 1])
    with pytest.raises(ValueError):
        HuffmanCode.from_lengths([0, 0])
    with pytest.raises(ValueError):
        HuffmanCode.from_frequencies([0, 0, 0])
    with pytest.raises(ValueError):
        HuffmanCode.from_frequencies([1, 2, 3, 4, 5], max_length=2)
    with pytest.raises(ValueError):
        HuffmanCode.from_frequencies([1, -2])


def test_package_merge_matches_brute_force_on_random_small_inputs():
    rng = np.random.default_rng(11)
    for _ in range(30):
        w = rng.integers(1, 100, size=5)
        limit = int(rng.integers(3, 5))
        best = min(int(np.dot(ls, w)) for ls in itertools.product(range(1, limit + 1), repeat=5)
                   if sum(2.0 ** -v for v in ls) <= 1)
        lens = package_merge_lengths(w, limit)
        assert lens.max() <= limit and np.sum(np.exp2(-lens.astype(float))) <= 1
        assert int(np.dot(lens, w)) == best


def test_invalid_codeword_raises_corrupt_stream_error():
    code = HuffmanCode.from_lengths([1, 2, 0])  # '0' and '10'; '11' is unassigned
    with pytest.raises(CorruptStreamError, match="invalid"):
        code.decode(BitReader(bytes([0b01100000])), 3)


@pytest.mark.parametrize("count", [1, 40, 5000])
def test_truncated_data_raises_corrupt_stream_error(count):
    rng = np.random.default_rng(count)
    code = HuffmanCode.from_frequencies(rng.integers(1, 100, size=40))
    s = rng.integers(0, 40, size=count)
    w = BitWriter()
    code.encode(s, w)
    data = w.getvalue()
    with pytest.raises(CorruptStreamError):
        code.decode(BitReader(data), count + 8 * len(data) + 1)
    with pytest.raises(CorruptStreamError):
        code.decode(BitReader(data[: len(data) // 2]), count)
    with pytest.raises(CorruptStreamError):
        code.decode(BitReader(b""), 1)


def test_serialisation_round_trip_and_errors():
    rng = np.random.default_rng(2)
    code = HuffmanCode.from_frequencies(rng.integers(0, 1000, size=300), max_length=15)
    data = code.to_bytes()
    assert HuffmanCode.from_bytes(data) == code
    assert len(data) <= 5 + (300 * 4 + 7) // 8 + 1  # 4 bits per length for max length 15
    with pytest.raises(CorruptStreamError):
        HuffmanCode.from_bytes(data[:-10])
    with pytest.raises(CorruptStreamError):
        HuffmanCode.from_bytes(data + b"\x00")
    bad = BitWriter()
    bad.write(3, 32)
    bad.write(2, 6)
    bad.write_bits(np.array([1, 1, 1]), np.array([2, 2, 2]))  # Kraft violated
    with pytest.raises(CorruptStreamError, match="invalid"):
        HuffmanCode.from_bytes(bad.getvalue())


def test_golden_stream_md5():
    code = HuffmanCode.from_frequencies([40, 20, 10, 5, 3, 1, 1, 0], max_length=5)
    # unlimited Huffman would give (1, 2, 3, 4, 5, 6, 6); the optimum under 5 bits is:
    assert code.lengths == (1, 2, 3, 5, 5, 5, 5, 0)
    assert code.codewords()[:4] == ["0", "10", "110", "11100"]
    w = BitWriter()
    code.encode(np.arange(7).repeat(3), w)
    assert w.getvalue().hex() == "156db9ce77bdf7bdfffc"
    data = code.to_bytes() + w.getvalue()
    assert hashlib.md5(data).hexdigest() == "f24e325f14c6eca61fa732b69e05c71a"


def test_data_much_longer_than_the_code_expects_still_decodes():
    # the decoder sizes its look-ahead from the code's implied distribution; here every symbol
    # is a longest codeword, which forces several look-ahead rounds
    counts = np.r_[10 ** 6, np.ones(63, dtype=np.int64)]
    code = HuffmanCode.from_frequencies(counts)
    s = np.random.default_rng(4).integers(1, 64, size=3000)
    round_trip(code, s)


def test_random_garbage_gives_symbols_or_corrupt_stream_error_only():
    rng = np.random.default_rng(8)
    codes = [HuffmanCode.from_lengths([1, 2, 0, 4]), HuffmanCode.from_frequencies(rng.integers(1, 9, 30))]
    for trial in range(200):
        code = codes[trial % 2]
        data = rng.integers(0, 256, size=rng.integers(0, 12), dtype=np.uint8).tobytes()
        try:
            out = code.decode(BitReader(data), int(rng.integers(1, 40)))
        except CorruptStreamError:
            continue
        assert np.all(code.code_lengths()[out] > 0)
