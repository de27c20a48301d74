"""MDCT (TDAC perfect reconstruction, direct-formula agreement) and band envelope/flattening."""

from __future__ import annotations

import numpy as np
import pytest

from neurocodec.dsp import bands, mdct

HOP = 320


def _direct_mdct(frame: np.ndarray, window: np.ndarray) -> np.ndarray:
    n = frame.size // 2
    t = np.arange(2 * n)[None, :]
    k = np.arange(n)[:, None]
    basis = np.cos(np.pi / n * (t + (n + 1) / 2) * (k + 0.5))
    return np.sqrt(2.0 / n) * basis @ (window * frame)


@pytest.mark.parametrize("name", ["sine", "kbd"])
def test_windows_satisfy_princen_bradley(name):
    w = mdct.make_window(name, 2 * HOP)
    assert np.allclose(w[:HOP] ** 2 + w[HOP:] ** 2, 1.0, atol=1e-12)
    assert np.allclose(w, w[::-1])


@pytest.mark.parametrize("name", ["sine", "kbd"])
def test_fft_mdct_matches_definition(name):
    rng = np.random.default_rng(0)
    n = 64
    w = mdct.make_window(name, 2 * n)
    x = rng.standard_normal(2 * n)
    assert np.allclose(mdct.mdct(x, w), _direct_mdct(x, w), atol=1e-10)
    # the inverse is the transpose (orthonormal scaling)
    c = rng.standard_normal(n)
    t = np.arange(2 * n)[:, None]
    k = np.arange(n)[None, :]
    direct_inv = w * (np.sqrt(2.0 / n) * np.cos(np.pi / n * (t + (n + 1) / 2) * (k + 0.5)) @ c)
    assert np.allclose(mdct.imdct(c, w), direct_inv, atol=1e-10)


@pytest.mark.parametrize("name", ["sine", "kbd"])
@pytest.mark.parametrize("length", [1, 7, 319, 320, 321, 640, 16001])
def test_tdac_perfect_reconstruction(name, length):
    w = mdct.make_window(name, 2 * HOP)
    x = np.random.default_rng(length).standard_normal(length)
    coefs = mdct.analyze(x, HOP, w)
    assert coefs.shape == (mdct.num_frames(length, HOP), HOP)
    y = mdct.synthesize(coefs, length, w)
    assert y.shape == (length,)
    assert np.max(np.abs(y - x)) < 1e-6


def test_analysis_is_orthogonal_and_delay_compensated():
    w = mdct.make_window("sine", 2 * HOP)
    x = np.zeros(3200)
    x[1000] = 1.0  # an impulse must come back at the same index
    c = mdct.analyze(x, HOP, w)
    assert np.sum(c ** 2) == pytest.approx(1.0, rel=1e-9)  # Parseval for a TDAC frame
    y = mdct.synthesize(c, x.size, w)
    assert int(np.argmax(np.abs(y))) == 1000


def test_num_frames_and_wrong_frame_count():
    assert mdct.num_frames(1, HOP) == 2
    assert mdct.num_frames(320, HOP) == 2
    assert mdct.num_frames(321, HOP) == 3
    with pytest.raises(ValueError):
        mdct.synthesize(np.zeros((3, HOP)), 100, mdct.sine_window(2 * HOP))
    with pytest.raises(ValueError):
        mdct.make_window("hann", 2 * HOP)


def test_band_edges_are_nonuniform_and_cover_spectrum():
    edges = bands.design_band_edges(320, 20, 16000)
    widths = bands.band_widths(edges)
    assert edges[0] == 0 and edges[-1] == 320 and len(edges) == 21
    assert np.all(widths % 4 == 0) and widths.min() >= 4
    assert np.all(np.diff(widths) >= 0)  # narrower at low frequencies
    assert widths[-1] >= 4 * widths[0]
    assert np.array_equal(np.bincount(bands.band_index(edges)), widths)


def test_envelope_quantization_known_values():
    # 10 log10(var)/3: var 1 -> 0, var 2 -> 1 (3.01 dB), var 0.001 -> -10, clipped at the range
    idx = bands.quantize_envelope(np.array([1.0, 2.0, 1e-3, 0.0, 1e12]), -36, 27)
    assert idx.tolist() == [0, 1, -10, -36, 27]
    assert bands.envelope_variances(np.array([0, 10, -1])) == pytest.approx([1.0, 1000.0, 10 ** -0.3])


def test_flattening_is_invertible_and_normalises_bands():
    edges = bands.design_band_edges(320, 20, 16000)
    rng = np.random.default_rng(1)
    gains = np.repeat(10.0 ** rng.uniform(-4, 1, 20), bands.band_widths(edges))
    coefs = rng.standard_normal((50, 320)) * gains
    env = bands.quantize_envelope(bands.band_variances(coefs, edges), -36, 27)
    flat = bands.flatten(coefs, env, edges)
    assert np.allclose(bands.unflatten(flat, env, edges), coefs, rtol=1e-12)
    # quantized to 3 dB: every flattened band has variance within +-1.5 dB of 1
    v = bands.band_variances(flat, edges)
    assert np.all(np.abs(10 * np.log10(v)) <= 1.5 + 1e-9)


def test_default_mdct_bands_come_from_the_design_function():
    from neurocodec.codecs.mdct import DEFAULT_BAND_EDGES

    assert DEFAULT_BAND_EDGES == bands.design_band_edges(320, 16, 16000, min_width=8)


@pytest.mark.parametrize("num_bands,min_width", [(16, 8), (20, 8), (20, 4), (22, 4)])
def test_band_layouts_are_monotone(num_bands, min_width):
    edges = bands.design_band_edges(320, num_bands, 16000, min_width=min_width)
    widths = bands.band_widths(edges)
    assert len(widths) == num_bands and sum(widths) == 320
    assert widths.min() >= min_width and np.all(np.diff(widths) >= 0) and np.all(widths % 4 == 0)
    with pytest.raises(ValueError):
        bands.design_band_edges(320, 41, 16000, min_width=8)
