"""Range coding with integer CDF tables: quantisation, round trips, size, errors, golden md5."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from neurocodec.entropy.range_coder import (RangeDecoder, RangeEncoder, compare_coders,
                                            decode_symbols, encode_symbols, pmf_from_cdf,
                                            quantize_pmf)
from neurocodec.errors import CorruptStreamError


def test_quantize_pmf_known_values():
    # 13 free units: 6.5, 3.25, 3.25 -> floor + 1 = 7, 4, 4; the leftover unit goes to 0.5
    np.testing.assert_array_equal(quantize_pmf([0.5, 0.25, 0.25], precision=4), [0, 8, 12, 16])
    np.testing.assert_array_equal(quantize_pmf([1.0, 0.0, 0.0], precision=3), [0, 6, 7, 8])


def test_quantize_pmf_rows_total_and_nonzero():
    rng = np.random.default_rng(0)
    pmf = rng.dirichlet(np.full(50, 0.2), size=7)
    pmf[:, 3] = 0.0
    cdf = quantize_pmf(pmf, precision=12)
    assert cdf.shape == (7, 51)
    assert np.all(cdf[:, 0] == 0) and np.all(cdf[:, -1] == 4096)
    assert np.diff(cdf, axis=1).min() >= 1
    np.testing.assert_array_equal(cdf[4], quantize_pmf(pmf[4], precision=12))
    pmf /= pmf.sum(axis=1, keepdims=True)
    assert np.abs(pmf_from_cdf(cdf) - pmf).max() <= 51 / 4096  # (n + 1) / 2**precision


def test_quantize_pmf_errors():
    with pytest.raises(ValueError):
        quantize_pmf(np.ones(9), precision=3)
    with pytest.raises(ValueError):
        quantize_pmf([0.5, -0.1])
    with pytest.raises(ValueError):
        quantize_pmf([0.0, 0.0])
    with pytest.raises(ValueError):
        quantize_pmf([1.0], precision=25)


def test_static_round_trip_and_size_close_to_ideal():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(40, 0.3))
    cdf = quantize_pmf(p, 16)
    q = pmf_from_cdf(cdf)
    s = rng.choice(40, size=100_000, p=p)
    data = encode_symbols(s, cdf)
    np.testing.assert_array_equal(decode_symbols(data, cdf, s.size), s)
    ideal = -np.log2(q[s]).sum() / 8
    assert ideal <= len(data) <= 1.01 * ideal + 8


def test_per_symbol_tables_with_indexes_round_trip_and_size():
    rng = np.random.default_rng(2)
    # Gaussian-conditional style: a table per scale, symbols choose their table by index
    scales = np.geomspace(0.3, 20, 16)
    support = np.arange(-60, 61)
    pmf = np.exp(-0.5 * (support[None, :] / scales[:, None]) ** 2)
    cdfs = quantize_pmf(pmf, 16)
    idx = rng.integers(0, 16, size=50_000)
    s = np.clip(np.round(rng.normal(0, scales[idx])), -60, 60).astype(np.int64) + 60
    data = encode_symbols(s, cdfs, idx)
    np.testing.assert_array_equal(decode_symbols(data, cdfs, s.size, idx), s)
    q = pmf_from_cdf(cdfs)
    ideal = -np.log2(q[idx, s]).sum() / 8
    assert ideal <= len(data) <= 1.01 * ideal + 8
    # a static model for all symbols costs more than the per-symbol tables
    static = quantize_pmf(pmf.sum(axis=0), 16)
    assert len(encode_symbols(s, static)) > 1.05 * len(data)


def test_one_row_per_symbol_without_indexes():
    rng = np.random.default_rng(3)
    cdfs = quantize_pmf(rng.dirichlet(np.ones(5), size=30), 15)
    s = rng.integers(0, 5, size=30)
    data = encode_symbols(s, cdfs)
    np.testing.assert_array_equal(decode_symbols(data, cdfs), s)
    with pytest.raises(ValueError):
        encode_symbols(s[:10], cdfs)


def test_incremental_encoder_matches_one_shot_and_mixed_models():
    rng = np.random.default_rng(4)
    cdf_a = quantize_pmf(rng.dirichlet(np.ones(8)))
    cdfs_b = quantize_pmf(rng.dirichlet(np.ones(20), size=4))
    a = rng.integers(0, 8, size=1000)
    b = rng.integers(0, 20, size=700)
    ib = rng.integers(0, 4, size=700)
    enc = RangeEncoder()
    enc.encode(a[:400], cdf_a)
    enc.encode(a[400:], cdf_a)
    enc.encode(b, cdfs_b, ib)
    data = enc.getvalue()
    assert enc.num_bits == 8 * len(data)
    dec = RangeDecoder(data)
    np.testing.assert_array_equal(dec.decode(cdf_a, 1000), a)
    np.testing.assert_array_equal(dec.decode(cdfs_b, indexes=ib), b)
    dec.finish()
    one = RangeEncoder()
    one.encode(a, cdf_a)
    assert data.startswith(one.getvalue()[:-8])


def test_empty_message():
    cdf = quantize_pmf([0.5, 0.5])
    assert encode_symbols(np.zeros(0, dtype=np.int64), cdf) == b""
    assert decode_symbols(b"", cdf, 0).size == 0


def test_zero_probability_and_out_of_range_symbols_are_rejected():
    padded = np.array([[0, 8, 16, 16], [0, 4, 8, 16]])  # row 0 has only 2 symbols
    with pytest.raises(ValueError, match="zero probability"):
        encode_symbols([2], padded, [0])
    assert decode_symbols(encode_symbols([2, 1], padded, [1, 0]), padded, 2, [1, 0]).tolist() == [2, 1]
    with pytest.raises(ValueError, match="outside"):
        encode_symbols([3], padded[1])
    with pytest.raises(ValueError):
        encode_symbols([0], np.array([0, 3, 6]))  # total not a power of two
    with pytest.raises(ValueError):
        encode_symbols([0], np.array([0, 5, 4, 8]))  # decreasing


def test_corrupt_payloads_raise_corrupt_stream_error():
    cdf = quantize_pmf([0.7, 0.2, 0.1])
    s = np.random.default_rng(5).choice(3, size=2000, p=[0.7, 0.2, 0.1])
    data = encode_symbols(s, cdf)
    with pytest.raises(CorruptStreamError, match="32-bit"):
        decode_symbols(data[:-1], cdf, s.size)
    with pytest.raises(CorruptStreamError, match="left"):
        decode_symbols(data, cdf, s.size // 2)  # wrong count leaves data unread


def test_range_coder_beats_huffman_on_skewed_source():
    rng = np.random.default_rng(6)
    p = np.array([0.9, 0.05, 0.03, 0.02])
    s = rng.choice(4, size=20000, p=p)
    cmp = compare_coders(s, p)
    assert cmp.num_symbols == 20000
    assert cmp.huffman_bits >= 20000  # at least one bit per symbol
    assert cmp.range_overhead < 0.01
    assert cmp.huffman_overhead > 0.5
    assert cmp.range_bits < cmp.huffman_bits


def test_golden_stream_md5():
    cdf = np.array([0, 30000, 50000, 60000, 65536])
    cdfs = quantize_pmf(np.array([[1, 2, 3, 4], [4, 3, 2, 1.0]]), 16)
    enc = RangeEncoder()
    enc.encode(np.array([0, 1, 2, 3, 0, 0, 1, 0, 3, 2, 0]), cdf)
    enc.encode(np.array([3, 0, 1, 2]), cdfs, np.array([0, 1, 1, 0]))
    data = enc.getvalue()
    assert len(data) % 4 == 0
    assert hashlib.md5(data).hexdigest() == "81390a13b98f2e6afc08d2725e308687"
