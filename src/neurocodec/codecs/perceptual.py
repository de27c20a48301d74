"""Perceptual end-to-end speech coder with factorized (FEM) or hyperprior (HPM) density (byun2023).

**Transform (§3.1).**  Frames of ``T = 512`` samples, adjacent frames overlapping by 32 samples
(hop 480) with a half-sine window (a sine ramp at analysis and at synthesis, so that the two
products add to one over the overlap).  Each frame goes through an encoder of ResGLU blocks
(:mod:`neurocodec.nn.resglu`: six GLU layers, dilations 1..32, kernel 9, a GDN at the end):
a ResGLU channel changer ``1 -> C``, a strided convolution (down-sampling by 2), a block of ``C``
channels, a changer ``C -> C_b`` (the bottleneck width), a block of ``C_b`` channels and a
convolution to one channel: the latent ``z`` has ``T/2 = 256`` values per frame.  The decoder
mirrors it with IGDN and a sub-pixel up-sampling convolution (Shi et al. 2016).  The paper's
model has ``C = 100``, ``C_b = 30`` (2.35M parameters in total; ours at that width has about
2.76M, the paper does not give every layer); shipped weights use a narrower ``C`` (see the
model cards).  The order "down-sample first, then the ``C``-channel block" is our choice (the
paper does not say where the striding sits); it halves the encoder's cost.

**Quantization and density (§3.2).**  ``z`` is quantized by rounding (uniform noise ``U(-1/2, 1/2)``
in training).  ``fem``: ``z`` is coded with a factorized non-parametric density
(:class:`~neurocodec.entropy.factorized.FactorizedDensity`, 43 parameters), no side information.
``hpm``: a hyper-encoder (convolutions of kernels 7, 9, 9, strides 1, 2, 2) maps ``z`` to a
hyper-latent ``z_h`` (``hyper_latent`` channels, ``T/8`` steps), quantized and coded with its own
FEM (the paper does not give its size; with 4 channels, i.e. as many hyper values as latent values,
our CPU runs sent 94 % of the rate as side information, the means carrying the signal, so the
default is one channel: 64 values per frame); a hyper-decoder (mirrored, transposed convolutions) predicts the mean and scale of each
latent value, and ``z`` is coded with the Gaussian-uniform likelihood of Eq. 1
(:mod:`neurocodec.entropy.gaussian`).  Coding with HPM sends ``q = round(z - mu)`` and the decoder
adds ``mu`` back (CompressAI's convention; it makes the tables independent of the mean).

**Bitstream.**  Per channel, groups of up to ``frames_per_chunk`` frames form one chunk: the
chunk's rate-grid index (one byte; codec version 2) and one range-coded message
(:mod:`neurocodec.entropy.range_coder`) holding, for HPM, the hyper-latents of the group then the
latents; for FEM the latents.  Integer CDF tables are built from the trained density models
(:meth:`PerceptualCodec.build_tables`) and stored with the weights; the scale index of each HPM
latent is computed by the hyper-decoder in float64 on the same group shape at both ends.  The
chunk count follows from the sample count; any other count, a chunk that is not its index byte
and whole 32-bit words, an index off the grid or a message with data left over is rejected.

**Rate control (not in the paper).**  Each chunk is coded with the quantizer scale
``g = code_scale * 2 ** (k / 16)`` of its grid index ``k``, chosen by the encoder from the real
coded sizes so that the file fits ``bitrate x duration`` (:mod:`.perceptual_rate`;
``config.file_rate_control``, on by default; off, every chunk has ``k = 0``).  Version-1 streams
(no index byte) still decode, at ``k = 0``.

**Training (§3.3, §4.1).**  ``L = a * R + l1 * MSE + l2 * L_G + l3 * L_L`` with ``R`` the estimated
rate in bits per sample, ``MSE`` on the frame, ``L_G``/``L_L`` the global/local NMR losses of
:mod:`neurocodec.dsp.pam1`; ``l1, l2, l3 = 60, 0.09, 0.015`` (the paper starts from 60, 0.003, 0.0005;
at this package's signal scale those leave the NMR terms ~15 % of the distortion, and 30x the NMR
weights gave +0.21 PESQ-WB in a 1,364-step fine-tune of HPM 16:
docs/perceptual.md "Session 13") and the
rate weight ``a`` steered multiplicatively towards the target rate (the paper adjusts its
weights "until the DNN speech coder reached the pre-set bitrate range").  Two phases:
``reconstruct`` (no quantization, no rate term) then ``quantize`` (noise for the rate, and the
rounded latent with a straight-through gradient for the decoder: ``decoder_input = "ste"``;
``"noise"`` is the paper's choice).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import AudioError, CorruptStreamError, WeightsError
from ..entropy.factorized import FactorizedDensity
from ..entropy.gaussian import gaussian_likelihood, gaussian_tables, scale_index
from ..entropy.range_coder import RangeDecoder, RangeEncoder
from ..entropy.tables import ESCAPE_LIMIT, TableSet
from ..nn.resglu import KERNEL, ResGLUBlock, ResGLULayer
from .base import BitrateSpec, CodecModel, EncodedAudio, ForwardResult
from .perceptual_config import (PERCEPTUAL_BITRATES, PerceptualConfig, PerceptualPhase, fem_config, hpm_config,
                                perceptual_config)
from .perceptual_framing import frame_signal, num_frames, overlap_add
from .perceptual_rate import grid_scale, index_byte, plan_grid_indexes, split_chunk
from .perceptual_training import PerceptualTrainingMixin
from .weights_file import check_state_match, read_weights

__all__ = ["PerceptualConfig", "PerceptualCodec", "PerceptualFemCodec", "PerceptualHpmCodec",
           "PERCEPTUAL_BITRATES", "perceptual_config", "fem_config", "hpm_config", "PerceptualPhase",
           "fem_family", "hpm_family",
           "frame_signal", "overlap_add"]

_FORMAT = "neurocodec-perceptual"
#: config fields that only steer the encoder (not in the config hash)
ENCODER_ONLY = ("file_rate_control",)


# -- network ------------------------------------------------------------------------------------

class SubPixelUp(nn.Module):
    """Sub-pixel up-sampling by 2 (Shi et al. 2016): a convolution to ``2 * C`` channels whose
    pairs of channels are interleaved in time."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, KERNEL, padding=KERNEL // 2)

    def forward(self, x):
        b, c, t = x.shape
        y = self.conv(x).reshape(b, c, 2, t)
        return y.permute(0, 1, 3, 2).reshape(b, c, 2 * t)


def _encoder(cfg: PerceptualConfig) -> nn.Sequential:
    c, cb = cfg.channels, cfg.bottleneck_channels
    return nn.Sequential(
        ResGLULayer(1, c), nn.Conv1d(c, c, KERNEL, stride=2, padding=KERNEL // 2), ResGLUBlock(c),
        ResGLULayer(c, cb), ResGLUBlock(cb), nn.Conv1d(cb, 1, KERNEL, padding=KERNEL // 2))


def _decoder(cfg: PerceptualConfig) -> nn.Sequential:
    c, cb = cfg.channels, cfg.bottleneck_channels
    return nn.Sequential(
        nn.Conv1d(1, cb, KERNEL, padding=KERNEL // 2), ResGLUBlock(cb, inverse_gdn=True), ResGLULayer(cb, c),
        ResGLUBlock(c, inverse_gdn=True), SubPixelUp(c), ResGLULayer(c, 1))


class HyperPrior(nn.Module):
    """HPM sub-network (byun2023 Fig. 2b): hyper-encoder (kernels 7, 9, 9; strides 1, 2, 2),
    FEM of the hyper-latent, hyper-decoder predicting the mean and scale of every latent value."""

    def __init__(self, cfg: PerceptualConfig):
        super().__init__()
        h, nz = cfg.hyper_channels, cfg.hyper_latent
        self.encoder = nn.Sequential(
            nn.Conv1d(1, h, 7, padding=3), nn.LeakyReLU(0.2),
            nn.Conv1d(h, h, 9, stride=2, padding=4), nn.LeakyReLU(0.2),
            nn.Conv1d(h, nz, 9, stride=2, padding=4))
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(nz, h, 9, stride=2, padding=4, output_padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(h, h, 9, stride=2, padding=4, output_padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(h, 2, 7, padding=3))
        self.density = FactorizedDensity(nz)

    def params(self, zh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and scale ``(B, 1, T/2)`` each, from the (quantized) hyper-latent."""
        out = self.decoder(zh)
        return out[:, :1], F.softplus(out[:, 1:]) + 1e-3


class PerceptualCodec(PerceptualTrainingMixin, nn.Module, CodecModel):
    """The byun2023 coder at one operating point (``config.density`` selects FEM or HPM)."""

    codec_id: ClassVar[str] = "perceptual"
    #: version 2: every chunk starts with its rate-grid index (:mod:`.perceptual_rate`)
    codec_version = 2
    #: a version-1 chunk (no index byte) decodes at the grid index 0
    decodes_versions = (1, 2)
    learned = True
    density: ClassVar[str] = ""
    description = "byun2023 perceptual ResGLU/GDN autoencoder with a learned density model"

    def __init__(self, config: PerceptualConfig | None = None):
        nn.Module.__init__(self)
        cfg = config if config is not None else perceptual_config(16.0, self.density or "fem")
        cfg.validate()
        if self.density and cfg.density != self.density:
            raise ValueError(f"{type(self).__name__} needs density '{self.density}', got '{cfg.density}'")
        self.config = cfg
        self.sample_rate = cfg.sample_rate
        self.bitrates = BitrateSpec(default=cfg.bitrate_kbps, choices=(cfg.bitrate_kbps,))
        self.encoder = _encoder(cfg)
        self.decoder = _decoder(cfg)
        if cfg.density == "hpm":
            self.hyper = HyperPrior(cfg)
            self.density_model = None
        else:
            self.hyper = None
            self.density_model = FactorizedDensity(1)
        self.register_buffer("rate_weight", torch.tensor(float(cfg.rate_weight_init)))
        self.register_buffer("rate_ema", torch.tensor(-1.0))
        self._phase = "quantize"
        self.phase_start_step = 0
        self._tables: dict[str, TableSet] | None = None
        self._grid_tables: dict[int, TableSet] = {}  # FEM latent tables of grid indexes != 0
        self._trained = False
        self._loss = None

    # -- identity -----------------------------------------------------------------------------
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def has_trained_weights(self) -> bool:
        return self._trained

    def config_dict(self) -> dict[str, Any]:
        """The config that determines what a stream decodes to: all of it but the encoder-only
        ``file_rate_control`` (the grid index travels in every chunk), so that switching it
        keeps the config hash, and version-1 streams of the same weights still decode."""
        d = asdict(self.config)
        for name in ENCODER_ONLY:
            d.pop(name, None)
        return d

    def set_file_rate_control(self, on: bool) -> bool:
        """Switch the file-level rate control of :meth:`compress` on or off (recorded in the
        config); returns the previous setting."""
        from dataclasses import replace

        was = self.config.file_rate_control
        self.config = replace(self.config, file_rate_control=bool(on))
        return was

    def weights_digest(self) -> bytes:
        h = hashlib.sha256()
        for name, t in sorted(self.state_dict().items()):
            if name in ("rate_weight", "rate_ema"):
                continue
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.numpy().tobytes())
        for name, ts in sorted((self._tables or {}).items()):
            for k, a in sorted(ts.to_arrays().items()):
                h.update(f"{name}.{k};".encode())
                h.update(a.tobytes())
        return h.digest()

    # -- analysis / synthesis -------------------------------------------------------------------
    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.config.hop

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, frame)`` -> latent ``(B, 1, frame/2)``."""
        return self.encoder(frames[:, None, :])

    def decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``(B, 1, frame/2)`` -> frames ``(B, frame)``."""
        return self.decoder(z)[:, 0]

    def quantize(self, z: torch.Tensor, mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_for_rate, z_for_decoder)``: noise / STE-rounding in training, rounding in eval."""
        if mean is None:
            mean = torch.zeros_like(z)
        if not self.training:
            q = torch.round(z - mean) + mean
            return q, q
        noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        if self.config.decoder_input == "noise":
            return noisy, noisy
        hard = z + (torch.round(z - mean) + mean - z).detach()
        return noisy, hard

    def code_frames(self, frames: torch.Tensor, quantize: bool = True,
                    g: float | None = None) -> dict[str, torch.Tensor]:
        """Frames ``(B, frame)`` -> decoded frames and the bits of each frame (main, side).

        The quantizer works on ``g * z`` with ``g = config.code_scale`` (1 in training; the
        export-time rate trim changes it; the file rate control passes the ``g`` of a grid
        index): the densities are those of ``z`` scaled by ``g``."""
        z = self.encode_frames(frames)
        g = float(self.config.code_scale if g is None else g)
        zeros = torch.zeros(frames.shape[0], device=frames.device)
        if not quantize:
            return {"frames": self.decode_frames(z), "main_bits": zeros, "side_bits": zeros, "z": z}
        if self.hyper is None:
            zr, zd = self.quantize(g * z)
            main = -torch.log2(self.density_model.likelihood(zr / g, 0.5 / g)).sum(dim=(1, 2))
            side = zeros
        else:
            zh = self.hyper.encoder(z)
            zhr, zhd = self.quantize(zh)
            side = -torch.log2(self.hyper.density.likelihood(zhr)).sum(dim=(1, 2))
            mean, scale = self.hyper.params(zhd if not self.training else zhr)
            zr, zd = self.quantize(g * z, g * mean)
            main = -torch.log2(gaussian_likelihood(zr, g * mean, g * scale)).sum(dim=(1, 2))
        return {"frames": self.decode_frames(zd / g), "main_bits": main, "side_bits": side, "z": z}

    def forward(self, x: torch.Tensor, bitrate_kbps: float | None = None) -> ForwardResult:
        """``(B, C, N)`` audio -> reconstruction (overlap-add of decoded frames) and estimated bits
        per item (hard quantization in eval mode, noise in training)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise AudioError("forward expects a torch tensor (batch, channels, samples)")
        b, c, n = x.shape
        cfg = self.config
        fr = frame_signal(x.reshape(b * c, n), cfg.frame, cfg.overlap)
        L = fr.shape[1]
        out = self.code_frames(fr.reshape(-1, cfg.frame))
        y = overlap_add(out["frames"].reshape(b * c, L, cfg.frame), n, cfg.overlap).reshape(b, c, n)
        main = out["main_bits"].reshape(b, c * L).sum(1)
        side = out["side_bits"].reshape(b, c * L).sum(1)
        return ForwardResult(audio=y, bits=main + side, extras={"main_bits": main, "side_bits": side, "frames": L})

    # -- entropy tables -------------------------------------------------------------------------
    @torch.no_grad()
    def build_tables(self) -> dict[str, TableSet]:
        """Integer CDF tables of the trained density models (FEM rows; HPM: hyper FEM rows and
        the tabulated Gaussian scales)."""
        if self.hyper is None:
            self._tables = {"latent": self.density_model.tables(scale=float(self.config.code_scale))}
        else:
            self._tables = {"hyper": self.hyper.density.tables(), "gaussian": gaussian_tables()}
        self._grid_tables = {}
        return self._tables

    def latent_tables(self, k: int) -> TableSet:
        """FEM: the integer tables of ``round(g_k z)`` for rate-grid index ``k``: the stored
        tables at ``k = 0``, else built once (float64) from the density and cached."""
        if k == 0:
            return self.tables()["latent"]
        if k not in self._grid_tables:
            g = grid_scale(self.config.code_scale, k)
            self._grid_tables[k] = self.density_model.tables(scale=g, float64=True)
        return self._grid_tables[k]

    def with_code_scale(self, g: float) -> "PerceptualCodec":
        """Set ``config.code_scale`` (the quantizer step is ``1/g``) and rebuild the tables."""
        from dataclasses import replace

        self.config = replace(self.config, code_scale=float(g)).validate()
        self.build_tables()
        return self

    def tables(self) -> dict[str, TableSet]:
        if self._tables is None:
            self.build_tables()
        return self._tables

    @torch.no_grad()
    def fit_entropy_coder(self, signals: Iterable[np.ndarray], max_seconds: float = 120.0) -> dict[str, Any]:
        """Export hook: build the integer tables from the trained densities (they are the model's
        own PMFs; no statistics are fitted) and report, on up to ``max_seconds`` of ``signals``,
        the empirical entropy and pair entropy (bits per symbol) of the coded symbols and the
        model's estimated bits per symbol (``model_bits``)."""
        tables = self.build_tables()
        seconds, syms, est = 0.0, {}, {"latent": 0.0, "hyper": 0.0}
        for audio in signals:
            if seconds >= max_seconds:
                break
            an = self.analyze(audio)
            for item in an["chunks"]:
                for name in ("latent", "hyper"):
                    if name in item:
                        syms.setdefault(name, []).append(np.asarray(item[name]).reshape(-1, item[name].shape[-1]))
            est["latent"] += an["main_bits"]
            est["hyper"] += an["side_bits"]
            seconds += audio.shape[-1] / self.sample_rate
        ent, pair, model_bits = {}, {}, {}
        for name, parts in syms.items():
            rows = np.concatenate(parts)
            flat = rows.ravel()
            _, counts = np.unique(flat, return_counts=True)
            p = counts / counts.sum()
            ent[name] = float(-(p * np.log2(p)).sum())
            pairs = rows[:, : rows.shape[1] // 2 * 2].reshape(-1, 2)
            _, pc = np.unique(pairs, axis=0, return_counts=True)
            pp = pc / pc.sum()
            pair[name] = float(-(pp * np.log2(pp)).sum() / 2)
            model_bits[name] = est[name] / max(flat.size, 1)
        return {"seconds": seconds, "entropy_bits": ent, "pair_entropy_bits": pair, "model_bits": model_bits,
                "tables": {name: {"rows": t.num_rows, "entries": int(t.sizes.sum())} for name, t in tables.items()}}

    # -- coding ---------------------------------------------------------------------------------
    def _check_audio(self, audio) -> np.ndarray:
        a = np.asarray(audio, dtype=np.float32)
        if a.ndim != 2 or a.shape[1] < 1 or a.shape[0] < 1:
            raise AudioError(f"expected audio shaped (channels, samples), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise AudioError("audio contains NaN or infinite samples")
        return a

    def _groups(self, num_samples: int) -> list[tuple[int, int]]:
        n = num_frames(num_samples, self.config.frame, self.config.overlap)
        g = self.config.frames_per_chunk
        return [(a, min(a + g, n)) for a in range(0, n, g)]

    def _hyper_params64(self, zh: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale of ``z`` from quantized hyper-latents, computed in float64 (both ends;
        those of ``g * z`` are ``g`` times them, multiplied in float64)."""
        dec = self.hyper.decoder
        out = zh.double()
        for layer in dec:
            if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
                w = layer.weight.double()
                bias = layer.bias.double() if layer.bias is not None else None
                if isinstance(layer, nn.ConvTranspose1d):
                    out = F.conv_transpose1d(out, w, bias, layer.stride, layer.padding, layer.output_padding)
                else:
                    out = F.conv1d(out, w, bias, layer.stride, layer.padding)
            else:
                out = layer(out)
        mean = out[:, :1]
        scale = F.softplus(out[:, 1:]) + 1e-3
        return mean.numpy(), scale.numpy()

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int:
        """One chunk per channel and group of ``frames_per_chunk`` frames (the api takes their
        framing out of the payload budget)."""
        return int(num_channels) * len(self._groups(int(num_samples)))

    @torch.no_grad()
    def _chunk_latents(self, frames: torch.Tensor) -> dict[str, Any]:
        """What the encoder computes once per chunk, whatever its grid index: the latent ``z``
        and, for HPM, the quantized hyper-latent and the float64 mean and scale of ``z``."""
        z = self.encode_frames(frames)
        lat: dict[str, Any] = {"frames": frames, "z": z}
        if self.hyper is not None:
            zh = torch.round(self.hyper.encoder(z)).clamp(-ESCAPE_LIMIT + 1, ESCAPE_LIMIT - 1)
            lat["hyper"] = zh
            lat["mean"], lat["scale"] = self._hyper_params64(zh)
        return lat

    def _chunk_symbols(self, lat: dict[str, Any], k: int) -> dict[str, Any]:
        """The integer symbols of a chunk at grid index ``k`` (``g = code_scale * 2**(k/16)``)."""
        g = grid_scale(self.config.code_scale, k)
        z = lat["z"]
        item: dict[str, Any] = {"grid_index": int(k)}
        if self.hyper is None:
            item["latent"] = torch.round(g * z).clamp(-ESCAPE_LIMIT + 1, ESCAPE_LIMIT - 1).long().numpy()
        else:
            mean, scale = g * lat["mean"], g * lat["scale"]
            item["hyper"] = lat["hyper"].long().numpy()
            q = np.rint((g * z).double().numpy() - mean)
            item["latent"] = np.clip(q, -ESCAPE_LIMIT + 1, ESCAPE_LIMIT - 1).astype(np.int64)
            item["scale_index"] = scale_index(scale)
        return item

    def _encode_chunk(self, item: dict[str, Any]) -> bytes:
        """One version-2 chunk: the grid index byte, then the range-coded message."""
        tables = self.tables()
        enc = RangeEncoder()
        q = item["latent"]
        if self.hyper is None:
            self.latent_tables(item["grid_index"]).encode(enc, q.ravel(), np.zeros(q.size, dtype=np.int64))
        else:
            zh = item["hyper"]
            rows = np.broadcast_to(np.arange(zh.shape[1])[None, :, None], zh.shape)
            tables["hyper"].encode(enc, zh.ravel(), rows.ravel())
            tables["gaussian"].encode(enc, q.ravel(), item["scale_index"].ravel())
        return index_byte(item["grid_index"]) + enc.getvalue()

    def _latents(self, a: np.ndarray) -> list[dict[str, Any]]:
        """Per channel and chunk (stream order), :meth:`_chunk_latents` of ``(C, N)`` audio."""
        cfg = self.config
        frames = frame_signal(torch.from_numpy(a), cfg.frame, cfg.overlap)  # (C, L, frame)
        return [self._chunk_latents(frames[c, lo:hi]) for c in range(a.shape[0]) for lo, hi in self._groups(a.shape[1])]

    @torch.no_grad()
    def analyze(self, audio: np.ndarray, grid_indexes: Sequence[int] | None = None) -> dict[str, Any]:
        """Symbols :meth:`compress` codes and their estimated bits (model likelihoods, eval mode),
        per channel and chunk: ``{"chunks": [...], "main_bits": float, "side_bits": float}``,
        at the rate-grid index of each chunk in ``grid_indexes`` (default: 0, ``code_scale``)."""
        a = self._check_audio(audio)
        was = self.training
        self.eval()
        try:
            out = {"chunks": [], "main_bits": 0.0, "side_bits": 0.0}
            lats = self._latents(a)
            ks = self._check_grid_indexes(grid_indexes, len(lats))
            for lat, k in zip(lats, ks):
                r = self.code_frames(lat["frames"], g=grid_scale(self.config.code_scale, k))
                out["main_bits"] += float(r["main_bits"].double().sum())
                out["side_bits"] += float(r["side_bits"].double().sum())
                out["chunks"].append(self._chunk_symbols(lat, k))
            return out
        finally:
            self.train(was)

    @staticmethod
    def _check_grid_indexes(grid_indexes, num_chunks: int) -> list[int]:
        if grid_indexes is None:
            return [0] * num_chunks
        ks = [int(k) for k in grid_indexes]
        if len(ks) != num_chunks:
            raise ValueError(f"{len(ks)} grid indexes for {num_chunks} chunks")
        for k in ks:
            grid_scale(1.0, k)  # ValueError off the grid
        return ks

    @torch.no_grad()
    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, *,
                 payload_budget_bytes: int | None = None, grid_indexes: Sequence[int] | None = None,
                 **kwargs) -> EncodedAudio:
        """Range-code ``audio`` (see the module doc) at the total rate ``bitrate_kbps`` over its
        channels.  With ``config.file_rate_control`` each chunk's grid index is chosen so that
        the payload fits ``payload_budget_bytes`` (what ``neurocodec.api`` leaves of ``bitrate x
        duration`` after the container; ``bitrate x duration`` when None;
        :mod:`.perceptual_rate`); without it, or with explicit ``grid_indexes`` (one per chunk,
        stream order), those are used.  Other keywords are ignored."""
        a = self._check_audio(audio)
        kbps = self.validate_bitrate(bitrate_kbps, a.shape[0])
        was = self.training
        self.eval()
        try:
            lats = self._latents(a)
            payloads: dict[tuple[int, int], bytes] = {}

            def payload(c: int, k: int) -> bytes:
                if (c, k) not in payloads:
                    payloads[c, k] = self._encode_chunk(self._chunk_symbols(lats[c], k))
                return payloads[c, k]

            if grid_indexes is None and self.config.file_rate_control:
                budget = payload_budget_bytes
                if budget is None:
                    budget = int(kbps * 1000.0 / 8.0 * a.shape[1] / self.sample_rate)
                ks = plan_grid_indexes(lambda c, k: len(payload(c, k)), len(lats), int(budget))
            else:
                ks = self._check_grid_indexes(grid_indexes, len(lats))
            chunks = [payload(c, k) for c, k in enumerate(ks)]
        finally:
            self.train(was)
        return EncodedAudio(chunks, kbps, a.shape[0], a.shape[1])

    @torch.no_grad()
    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int, num_samples: int,
                   bitrate_kbps: float) -> np.ndarray:
        self.validate_bitrate(bitrate_kbps, max(int(num_channels), 1))
        chunks = list(chunks)
        if num_channels < 1 or num_samples < 1:
            raise CorruptStreamError("stream has no channels or no samples")
        groups = self._groups(num_samples)
        if len(chunks) != num_channels * len(groups):
            raise CorruptStreamError(f"expected {num_channels * len(groups)} chunks for {num_channels} channel(s) of "
                                     f"{num_samples} samples, got {len(chunks)}")
        was = self.training
        self.eval()
        try:
            cfg = self.config
            tables = self.tables()
            half = cfg.latent_length
            out = []
            k = 0
            for _c in range(num_channels):
                decoded = []
                for lo, hi in groups:
                    n = hi - lo
                    grid_k, message = split_chunk(chunks[k])
                    g = grid_scale(cfg.code_scale, grid_k)
                    dec = RangeDecoder(message)
                    k += 1
                    try:
                        if self.hyper is None:
                            q = self.latent_tables(grid_k).decode(dec, np.zeros(n * half, dtype=np.int64))
                            z = torch.from_numpy((q.reshape(n, 1, half) / g).astype(np.float32))
                        else:
                            nz, th = cfg.hyper_latent, half // 4
                            rows = np.broadcast_to(np.arange(nz)[None, :, None], (n, nz, th)).ravel()
                            zh = tables["hyper"].decode(dec, rows).reshape(n, nz, th)
                            mean, scale = self._hyper_params64(torch.from_numpy(zh.astype(np.float32)))
                            mean, scale = g * mean, g * scale
                            q = tables["gaussian"].decode(dec, scale_index(scale).ravel()).reshape(n, 1, half)
                            z = torch.from_numpy(((q + mean) / g).astype(np.float32))
                        dec.finish()
                    except CorruptStreamError:
                        raise
                    except (ValueError, IndexError, RuntimeError, OverflowError) as e:
                        raise CorruptStreamError(f"perceptual payload is corrupt: {e}") from None
                    decoded.append(self.decode_frames(z))
                frames = torch.cat(decoded, 0)[None]
                out.append(overlap_add(frames, num_samples, cfg.overlap)[0])
            y = torch.stack(out).numpy().astype(np.float32)
            if not np.all(np.isfinite(y)):
                raise CorruptStreamError("perceptual payload decodes to non-finite audio")
            return y
        finally:
            self.train(was)

    # -- weights --------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        """Weights, integer tables (``tables.*``) and the config as one safetensors file."""
        from safetensors.torch import save

        from ..audio import atomic_write_bytes

        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        for name, ts in self.tables().items():
            for k, a in ts.to_arrays().items():
                state[f"tables.{name}.{k}"] = torch.from_numpy(np.ascontiguousarray(a))
        meta = {"format": _FORMAT, "format_version": "1", "codec_id": self.codec_id,
                "config": json.dumps(asdict(self.config), sort_keys=True)}
        atomic_write_bytes(path, save(state, metadata=meta))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "PerceptualCodec":
        p = Path(path)
        state, meta = read_weights(p, _FORMAT, cls.codec_id, "perceptual")
        try:
            raw = json.loads(meta["config"])
            known = {f.name for f in fields(PerceptualConfig)}
            cfg = PerceptualConfig(**{k: v for k, v in raw.items() if k in known}).validate()
            model = cls(cfg)
        except (TypeError, ValueError) as exc:
            raise WeightsError(f"{p}: invalid config: {exc}") from None
        tables: dict[str, dict[str, np.ndarray]] = {}
        for k in [k for k in state if k.startswith("tables.")]:
            _, name, field = k.split(".", 2)
            tables.setdefault(name, {})[field] = state.pop(k).numpy()
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        check_state_match(p, missing, unexpected)
        if tables:
            model._tables = {name: TableSet.from_arrays(a) for name, a in tables.items()}
        model._trained = True
        model.eval()
        return model


class PerceptualFemCodec(PerceptualCodec):
    """byun2023 with the factorized density (FEM), no side information."""

    codec_id = "perceptual-fem"
    density = "fem"
    description = "byun2023 ResGLU/GDN autoencoder, PAM-1 losses, factorized density (FEM)"

    @classmethod
    def for_bitrate(cls, bitrate_kbps: float) -> "PerceptualFemCodec":
        return cls(fem_config(bitrate_kbps))


class PerceptualHpmCodec(PerceptualCodec):
    """byun2023 with the mean-scale hyperprior (HPM)."""

    codec_id = "perceptual-hpm"
    density = "hpm"
    description = "byun2023 ResGLU/GDN autoencoder, PAM-1 losses, mean-scale hyperprior (HPM)"

    @classmethod
    def for_bitrate(cls, bitrate_kbps: float) -> "PerceptualHpmCodec":
        return cls(hpm_config(bitrate_kbps))


def _family(cls, prefix: str, weights_dir=None):
    """The operating points of ``PERCEPTUAL_BITRATES`` that ship weights (all of them, each
    failing with a message on how to train it, when none does)."""
    from .pretrained import WEIGHTS_DIR, PretrainedFamily

    root = Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR
    shipped = tuple(k for k in PERCEPTUAL_BITRATES if (root / f"{prefix}-{k:g}k" / "model.safetensors").is_file())
    rates = shipped or PERCEPTUAL_BITRATES
    default = 16.0 if 16.0 in rates else rates[0]
    return PretrainedFamily(cls, rates, prefix, default, weights_dir)


def fem_family(weights_dir=None):
    """``perceptual-fem`` at the shipped points of 9, 13, 16, 20 and 24 kbps."""
    return _family(PerceptualFemCodec, "perceptual-fem", weights_dir)


def hpm_family(weights_dir=None):
    """``perceptual-hpm`` at the shipped points of 9, 13, 16, 20 and 24 kbps."""
    return _family(PerceptualHpmCodec, "perceptual-hpm", weights_dir)
