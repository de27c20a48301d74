"""Generative decoding of ``mdct`` streams (fejgin2020 §3, Fig. 1): codec ids ``mdct-gen`` (speech)
and ``mdct-gen-piano``.

The encoder and the bitstream are exactly those of :class:`~neurocodec.codecs.mdct.MdctCodec`
(same payload, same config hash), so an ``mdct`` stream decodes with either codec and a stream
written by ``encode --codec mdct-gen`` is a plain ``mdct`` stream with another codec id in its
header.  Only the decoder differs: the ``mdct`` decoder's output and quantized envelope
(``decode_detailed``) condition a SampleRNN (:mod:`neurocodec.nn.samplernn`) that *samples* the
reconstruction, one 16-bit sample at a time (§3.2).

Decode options (``decompress(..., seed=, mean=, threads=)``, CLI ``decode --seed --mean``):
``seed`` (default 0) fixes the random draws, so a decode is reproducible; ``mean`` = N decodes N
independent realizations and outputs their mean (§4.2: approximates the conditional mean,
closing the 3 dB gap of eq. 3); ``threads`` spreads the realizations over threads (the output
does not depend on it).  The signal is generated in segments of ``SEGMENT_BLOCKS`` codec blocks
with the recurrent state carried across, so memory does not grow with the length beyond the
decoded signal itself.

Weights: ``assets/weights/<codec id>-16k/model.safetensors`` (fp16, trained on conditioning
from 16 kbps streams) with ``config.json`` and
``MODEL_CARD.md`` (``python -m neurocodec.train.samplernn export``, or ``neurocodec export --fp16`` of a
``neurocodec train mdct-gen`` run).  Where models trained at other rates are shipped as well
(``<codec id>-<K>k``, e.g. from the GPU plan's ``mdct-gen-8k`` and ``mdct-gen-32k``), a stream
decodes with the one trained nearest to its rate; otherwise the 16 kbps model decodes every rate.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import UserError, WeightsError
from .mdct import MdctCodec, MdctConfig, MdctTables

__all__ = ["MdctGenCodec", "MdctGenPianoCodec", "SEGMENT_BLOCKS", "realization_uniforms"]

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "assets" / "weights"
#: codec blocks (20 ms each) generated per kernel call; part of what makes a decode reproducible
SEGMENT_BLOCKS = 50
MAX_MEAN = 64


class DecodeOptionError(UserError):
    """Invalid ``--seed`` / ``--mean`` for a generative decode."""


def realization_uniforms(seed: int, channel: int, realization: int):
    """The two random streams of one realization (mixture component, logistic value)."""
    return (np.random.default_rng([int(seed), int(channel), int(realization), 0]),
            np.random.default_rng([int(seed), int(channel), int(realization), 1]))


class MdctGenCodec(MdctCodec):
    """``mdct`` encoder + SampleRNN decoder trained on speech (fejgin2020 §4.1, WSJ0 setting)."""

    codec_id = "mdct-gen"
    codec_version = 1
    description = "mdct stream decoded by sampling a conditional SampleRNN (fejgin2020 §3), speech"
    learned = True
    weights_name = "mdct-gen-16k"
    #: streams of these codec ids decode with this codec (same bitstream)
    decodes_streams_of = ("mdct",)
    #: the payload is budgeted as an ``mdct`` stream's, so both write identical chunks
    payload_framing_of = "mdct"
    #: encodes chunk by chunk as mdct does, but decodes whole streams (the SampleRNN looks ahead)
    stream_decoder = None
    #: keyword options of :meth:`decompress` the CLI may pass
    decode_options = ("seed", "mean", "threads")

    def __init__(self, config: MdctConfig | None = None, tables: MdctTables | None = None,
                 weights_path: str | Path | None = None, seed: int = 0, mean: int = 1):
        super().__init__(config, tables)
        self.explicit_weights = weights_path is not None
        self.weights_path = Path(weights_path) if weights_path else WEIGHTS_DIR / self.weights_name / "model.safetensors"
        self.seed, self.mean = int(seed), int(mean)
        self._models: dict[Path, object] = {}

    # -- weights --------------------------------------------------------------------------------
    def has_trained_weights(self) -> bool:
        return self.weights_path.is_file()

    def rate_weights(self) -> dict[float, Path]:
        """Shipped models of this codec by the ``mdct`` rate their conditioning was made at:
        ``assets/weights/<codec id>-<K>k/model.safetensors`` (e.g. ``mdct-gen-8k``,
        ``mdct-gen-16k``, ``mdct-gen-32k``)."""
        pattern = re.compile(rf"^{re.escape(self.codec_id)}-(\d+(?:\.\d+)?)k$")
        out = {}
        if WEIGHTS_DIR.is_dir():
            for d in WEIGHTS_DIR.iterdir():
                m = pattern.match(d.name)
                if m and (d / "model.safetensors").is_file():
                    out[float(m.group(1))] = d / "model.safetensors"
        return out

    def weights_for(self, bitrate_kbps: float | None = None) -> Path:
        """The weights that decode a stream of ``bitrate_kbps``: the ones given to the
        constructor, else the shipped model trained nearest to that rate (log scale; the lower
        rate on a tie), else the default (``weights_name``)."""
        if self.explicit_weights or bitrate_kbps is None:
            return self.weights_path
        rates = self.rate_weights()
        if not rates:
            return self.weights_path
        best = min(rates, key=lambda k: (abs(math.log(k / float(bitrate_kbps))), k))
        return rates[best]

    def load_model(self, bitrate_kbps: float | None = None):
        """The SampleRNN for streams of ``bitrate_kbps`` (:meth:`weights_for`; loaded from the
        fp16 weights on first use)."""
        path = self.weights_for(bitrate_kbps)
        if path not in self._models:
            import torch
            from safetensors.torch import load_file

            from ..nn.samplernn import SampleRnn, SampleRnnConfig

            cfg_path = path.parent / "config.json"
            if not path.is_file() or not cfg_path.is_file():
                raise WeightsError(f"no trained weights for '{self.codec_id}' (expected {path} and {cfg_path}); "
                                   "train them with 'python -m neurocodec.train.samplernn' (docs/mdct_gen.md)")
            try:
                stored = json.loads(cfg_path.read_text())
                # ``python -m neurocodec.train.samplernn export`` stores the net as "model",
                # ``neurocodec export`` of a ``train mdct-gen`` run as "net" (the recipe config)
                cfg = SampleRnnConfig.from_dict(stored["net"] if "net" in stored else stored["model"])
                model = SampleRnn(cfg)
                state = {k: v.to(torch.float32) for k, v in load_file(str(path)).items()}
                model.load_state_dict(state)
            except (OSError, KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise WeightsError(f"cannot load {path}: {exc}") from None
            self._models[path] = model.eval()
        return self._models[path]

    def num_parameters(self) -> int:
        return self.load_model().num_parameters() if self.has_trained_weights() else 0

    # -- decoding --------------------------------------------------------------------------------
    def _options(self, seed, mean, threads) -> tuple[int, int, int | None]:
        seed = self.seed if seed is None else seed
        mean = self.mean if mean is None else mean
        try:
            seed, mean = int(seed), int(mean)
        except (TypeError, ValueError):
            raise DecodeOptionError("--seed and --mean must be integers") from None
        if not 0 <= seed < 2 ** 63:
            raise DecodeOptionError(f"--seed must be a non-negative integer, not {seed}")
        if not 1 <= mean <= MAX_MEAN:
            raise DecodeOptionError(f"--mean must be between 1 and {MAX_MEAN}, not {mean}")
        return seed, mean, (None if threads is None else max(1, int(threads)))

    def generate(self, xhat: np.ndarray, envelope: np.ndarray, channel: int = 0, seed: int = 0,
                 realizations: int = 1, bitrate_kbps: float | None = None) -> np.ndarray:
        """``(R, T)`` float32 realizations for one channel's decoded waveform ``(T,)`` and
        envelope ``(F, N)`` (what :meth:`decode_detailed` returns) of a stream of
        ``bitrate_kbps`` (which picks the model, :meth:`weights_for`)."""
        from ..nn.samplernn import pad_conditioning

        model = self.load_model(bitrate_kbps)
        cfg = model.config
        T = xhat.shape[-1]
        xp, ep, nb = pad_conditioning(xhat, envelope, cfg)
        rngs = [realization_uniforms(seed, channel, r) for r in range(realizations)]
        out = np.zeros((realizations, nb * cfg.hop), dtype=np.float32)
        state = None
        for b0 in range(0, nb, SEGMENT_BLOCKS):
            b1 = min(b0 + SEGMENT_BLOCKS, nb)
            n = (b1 - b0) * cfg.hop
            u = np.stack([np.stack([rc.random(n), rv.random(n)]) for rc, rv in rngs])
            y, _, state = model.generate(xp[b0 * cfg.hop:(b1 + 3) * cfg.hop], ep[b0:b1 + 3], u, state=state)
            out[:, b0 * cfg.hop:b1 * cfg.hop] = y
        return out[:, :T]

    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int, num_samples: int,
                   bitrate_kbps: float | None = None, seed: int | None = None, mean: int | None = None,
                   threads: int | None = None) -> np.ndarray:
        """Decode an ``mdct`` payload generatively: ``(C, T)`` float32, the mean of ``mean``
        realizations drawn with ``seed``."""
        seed, mean, threads = self._options(seed, mean, threads)
        self.load_model(bitrate_kbps)  # fail on missing weights before decoding anything
        dec = self.decode_detailed(chunks, num_channels, num_samples)
        if threads is not None:
            from ..nn.samplernn_kernel import set_threads

            set_threads(threads)
        out = np.stack([self.generate(dec.audio[c], dec.envelope[c], c, seed, mean, bitrate_kbps).mean(axis=0)
                        for c in range(dec.audio.shape[0])])
        return out.astype(np.float32)


class MdctGenPianoCodec(MdctGenCodec):
    """``mdct`` encoder + SampleRNN decoder trained on piano (fejgin2020 §4.1, Maestro setting)."""

    codec_id = "mdct-gen-piano"
    description = "mdct stream decoded by sampling a conditional SampleRNN (fejgin2020 §3), piano"
    weights_name = "mdct-gen-piano-16k"
