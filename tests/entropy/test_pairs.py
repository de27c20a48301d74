"""Pair Huffman coding (zhen2019 §2.3): round trips, odd tails, gain on correlated data."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from neurocodec.entropy.bitio import BitReader, BitWriter
from neurocodec.entropy.huffman import HuffmanCode
from neurocodec.entropy.pairs import PairHuffmanCode, pair_symbols
from neurocodec.errors import CorruptStreamError


def correlated_symbols(n: int, k: int, seed: int) -> np.ndarray:
    """Random walk on 0..k-1: adjacent symbols are strongly dependent."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([-1, 0, 1], size=n, p=[0.15, 0.7, 0.15])
    return np.clip(k // 2 + np.cumsum(steps), 0, k - 1) % k


def test_pair_symbols_mapping():
    pairs, tail = pair_symbols([1, 2, 3, 0, 4], 5)
    assert pairs.tolist() == [1 * 5 + 2, 3 * 5 + 0]
    assert tail.tolist() == [4]
    with pytest.raises(ValueError):
        pair_symbols([5], 5)


@pytest.mark.parametrize("n", [0, 1, 2, 999, 1000])
def test_round_trip_even_and_odd_counts(n):
    k = 16
    code = PairHuffmanCode.from_symbols(correlated_symbols(20000, k, 0), k)
    s = correlated_symbols(n, k, 1) if n else np.zeros(0, dtype=np.int64)
    w = BitWriter()
    code.encode(s, w)
    assert w.bit_length == code.cost(s)
    w.write(0b1011, 4)
    r = BitReader(w.getvalue())
    np.testing.assert_array_equal(code.decode(r, n), s)
    assert r.read(4) == 0b1011


def test_unseen_pairs_are_codable_with_default_smoothing():
    code = PairHuffmanCode.from_symbols(np.zeros(100, dtype=np.int64), 4)
    s = np.array([3, 2, 1, 0, 3])
    w = BitWriter()
    code.encode(s, w)
    np.testing.assert_array_equal(code.decode(BitReader(w.getvalue()), 5), s)


def test_pairs_beat_single_symbol_huffman_on_correlated_data():
    k = 32
    train = correlated_symbols(50000, k, 2)
    test = correlated_symbols(20000, k, 3)
    pair = PairHuffmanCode.from_symbols(train, k)
    single = HuffmanCode.from_frequencies(np.bincount(train, minlength=k), ensure_all=True)
    assert pair.cost(test) < 0.8 * single.cost(test)


def test_training_on_frames_pairs_within_each_frame():
    frames = [np.array([0, 1, 0]), np.array([1, 0])]
    code = PairHuffmanCode.from_symbols(frames, 2, ensure_all=False)
    lens = code.pair_code.code_lengths()
    # pairs seen: (0,1) and (1,0); (1,0) across the frame boundary would be (0,1) at index 2
    assert lens[0 * 2 + 1] > 0 and lens[1 * 2 + 0] > 0
    assert lens[0] == 0 and lens[3] == 0


def test_truncated_pair_stream_raises():
    k = 8
    code = PairHuffmanCode.from_symbols(correlated_symbols(5000, k, 4), k)
    s = correlated_symbols(301, k, 5)
    w = BitWriter()
    code.encode(s, w)
    data = w.getvalue()
    with pytest.raises(CorruptStreamError):
        code.decode(BitReader(data[: len(data) // 3]), s.size)


def test_serialisation_round_trip_and_golden_md5():
    k = 4
    train = np.tile([0, 0, 1, 0, 2, 3, 3, 3, 1, 1, 0, 0], 25)  # fixed, independent of any RNG
    code = PairHuffmanCode.from_symbols(train, k)
    data = code.to_bytes()
    assert PairHuffmanCode.from_bytes(data) == code
    with pytest.raises(CorruptStreamError):
        PairHuffmanCode.from_bytes(data[:5])
    w = BitWriter()
    code.encode(np.array([0, 1, 2, 3, 3, 2, 1]), w)
    assert hashlib.md5(data + w.getvalue()).hexdigest() == "fe7efc600adff982479ebadac48781bf"
