"""Throughput and compression of the entropy coders (prints a table; no assertions).

    .venv/bin/python bench/bench_entropy.py [--sizes 16000 1000000] [--repeat 5]

Symbols are a two-sided geometric ("Laplacian") source folded onto 0..K-1, the typical
statistics of quantised MDCT coefficients; 16000 symbols is about one second of the MDCT codec.
Each timing is the best of ``--repeat`` runs (wall clock, one thread).
"""

from __future__ import annotations

import argparse

import numpy as np

from _timing import best_time
from neurocodec.entropy import (BitReader, BitWriter, HuffmanCode, PairHuffmanCode, compare_coders,
                                decode_symbols, encode_symbols, quantize_pmf)


def laplacian_symbols(n: int, k: int, decay: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    support = np.arange(k) - k // 2
    pmf = decay ** np.abs(support)
    pmf /= pmf.sum()
    return rng.choice(k, size=n, p=pmf), pmf


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16000, 1_000_000])
    ap.add_argument("--alphabet", type=int, default=33)
    ap.add_argument("--decay", type=float, default=0.6)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    k = args.alphabet
    print(f"{'coder':<26}{'symbols':>10}{'bits/sym':>10}{'enc Msym/s':>12}{'dec Msym/s':>12}")
    for n in args.sizes:
        s, pmf = laplacian_symbols(n, k, args.decay, rng)
        train, _ = laplacian_symbols(200_000, k, args.decay, rng)
        huff = HuffmanCode.from_frequencies(np.bincount(train, minlength=k), ensure_all=True)
        pair = PairHuffmanCode.from_symbols(train, k)
        cdf = quantize_pmf(pmf, 16)
        scales = np.geomspace(0.3, 0.9, 32)
        tables = quantize_pmf(scales[:, None] ** np.abs(np.arange(k) - k // 2)[None, :], 16)
        idx = rng.integers(0, 32, size=n)

        def huff_enc(code=huff):
            w = BitWriter()
            code.encode(s, w)
            return w.getvalue()

        rows = []
        for name, code in [("huffman", huff), ("pair huffman", pair)]:
            data = huff_enc(code)
            te = best_time(lambda: huff_enc(code), args.repeat)
            out = code.decode(BitReader(data), n)
            assert np.array_equal(out, s)
            td = best_time(lambda: code.decode(BitReader(data), n), args.repeat)
            rows.append((name, 8 * len(data) / n, te, td))
        data = encode_symbols(s, cdf)
        assert np.array_equal(decode_symbols(data, cdf, n), s)
        rows.append(("range (static cdf)", 8 * len(data) / n,
                     best_time(lambda: encode_symbols(s, cdf), args.repeat),
                     best_time(lambda: decode_symbols(data, cdf, n), args.repeat)))
        data = encode_symbols(s, tables, idx)
        assert np.array_equal(decode_symbols(data, tables, n, idx), s)
        rows.append(("range (32 tables+indexes)", 8 * len(data) / n,
                     best_time(lambda: encode_symbols(s, tables, idx), args.repeat),
                     best_time(lambda: decode_symbols(data, tables, n, idx), args.repeat)))
        for name, bps, te, td in rows:
            print(f"{name:<26}{n:>10}{bps:>10.3f}{n / te / 1e6:>12.2f}{n / td / 1e6:>12.2f}")
        cmp = compare_coders(s, pmf)
        print(f"{'  ideal (source entropy)':<26}{n:>10}{cmp.entropy_bits / n:>10.3f}"
              f"   huffman +{100 * cmp.huffman_overhead:.2f}%  range +{100 * cmp.range_overhead:.2f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
