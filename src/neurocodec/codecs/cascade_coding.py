"""File coding of the cascade codecs (``compress`` / ``decompress``): the numpy front end
(gain, LPC analysis and residual, framing) and back end (overlap-add, LPC synthesis,
de-emphasis) of one channel, the chunk payloads (:class:`ChunkCoder`: symbols of every
quantizer, module 1 at any ladder step of the file-level rate control), and the symbol
statistics the entropy tables are fitted on.

The networks run one chunk at a time in the encoder and the decoder alike, so decoding is
bit-exact and does not depend on the number of torch threads.
:class:`CascadeCodingMixin` is mixed into :class:`~neurocodec.codecs.cascade.CascadeCodec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..audio import validate
from ..dsp import lpc as lpcdsp
from ..errors import AudioError, CorruptStreamError, UserError
from ..nn.modes import eval_mode
from .base import EncodedAudio
from .cascade_config import GAIN_FLOOR
from .cascade_geometry import Geometry
from .cascade_rate import plan_rate_steps
from .cascade_tables import (CODERS, RATE_STEPS, ChunkContent, SymbolCounts, decode_chunk, encode_chunk,
                             rate_step_multiplier, step_table_key)

if TYPE_CHECKING:
    from .cascade import CascadeCodec

__all__ = ["PreparedChannel", "ChunkCoder", "CascadeCodingMixin"]


@dataclass
class PreparedChannel:
    """Encoder front end of one channel: float32 ``gain``, LSP symbols (segments, order) or
    None, and the frames (F, S) float32 that the cascade codes."""

    gain: np.float32
    lsp_indices: np.ndarray | None
    frames: np.ndarray


class CascadeCodingMixin:
    """``compress``, ``decompress`` and the entropy-table fitting of
    :class:`~neurocodec.codecs.cascade.CascadeCodec` (mixed into it)."""

    # -- symbol statistics and entropy tables -------------------------------------------
    def count_symbols(self, indices: Mapping[str, Any]) -> dict[str, SymbolCounts]:
        """Pair/single counts of symbols per quantizer (arrays shaped (..., units_len))."""
        return {name: SymbolCounts.from_indices(v, self.quantizer(name).num_centroids) for name, v in indices.items()}

    @torch.no_grad()
    def analyze_symbols(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """The symbols :meth:`compress` codes for ``audio`` (C, T) at the trained step, all
        channels stacked: ``lsp`` (C * segments, order) and ``moduleI`` (C * frames, code_length)."""
        return self._symbols_at_steps(audio, (0,))[0]

    @torch.no_grad()
    def _symbols_at_steps(self, audio: np.ndarray, steps: Sequence[int]) -> dict[int, dict[str, np.ndarray]]:
        """:meth:`analyze_symbols` at each ladder step of ``steps`` (the front end and the
        modules before the rate module run once)."""
        audio = self._check_audio(audio)
        geo = self.geometry(audio.shape[1])
        coder = ChunkCoder(self, [self._prepare_channel(audio[c], geo) for c in range(audio.shape[0])], geo)
        out = {}
        for step in steps:
            per = [coder.symbols(c, k, step) for c in range(audio.shape[0]) for k in range(geo.num_chunks)]
            out[step] = {name: np.concatenate([p[name] for p in per]) for name in self.quantizer_names}
        return out

    @torch.no_grad()
    def fit_entropy_coder(self, signals: Iterable[np.ndarray]) -> dict[str, Any]:
        """Export hook: gather the symbol statistics of ``signals`` ((C, T) float32 at the codec
        rate, normally the training files) and fit every quantizer's pair-Huffman and range
        tables (zhen2019 §2.3: the Huffman code is built from training-set statistics), and
        those of every step of ``config.ladder_tables`` from the symbols at that step.
        Returns per-quantizer single-symbol and pair entropies (bits per symbol, trained step)
        and the total duration used."""
        totals, seconds = self._count_signals(signals, (0, *self.config.ladder_tables))
        self.fit_entropy_tables(totals[0])
        for k in self.config.ladder_tables:
            for name, table in self.step_tables[step_table_key(k)].items():
                table.fit(totals[k][name])
        return {"seconds": seconds,
                "entropy_bits": {n: c.entropy_bits() for n, c in totals[0].items()},
                "pair_entropy_bits": {n: c.pair_entropy_bits() for n, c in totals[0].items()}}

    def bits_per_module(self, signals: Iterable[np.ndarray]) -> dict[int, float]:
        """Entropy (bits per second, single-symbol, at the current steps) of every module's
        symbols on ``signals`` ((C, T) float32 at the codec rate): what
        :meth:`set_rate_module` choices are made from (the module that carries the bits)."""
        totals, _ = self._count_signals(signals, (0,))
        return {int(n[6:]): c.entropy_bits() * self.symbols_per_second(n)
                for n, c in totals[0].items() if n.startswith("module")}

    @torch.no_grad()
    def _count_signals(self, signals: Iterable[np.ndarray],
                       steps: Sequence[int]) -> tuple[dict[int, dict[str, SymbolCounts]], float]:
        """Symbol counts of every quantizer over ``signals`` at each ladder step of ``steps``,
        and their total duration in seconds (UserError when there is no audio)."""
        totals: dict[int, dict[str, SymbolCounts] | None] = {k: None for k in steps}
        seconds = 0.0
        with eval_mode(self):
            for audio in signals:
                for k, symbols in self._symbols_at_steps(audio, steps).items():
                    counts = self.count_symbols(symbols)
                    totals[k] = counts if totals[k] is None else {n: totals[k][n] + counts[n] for n in counts}
                seconds += audio.shape[-1] / self.sample_rate
        if seconds <= 0:
            raise UserError("no audio to fit the entropy tables on")
        return totals, seconds

    def fit_entropy_tables(self, symbol_counts: Mapping[str, SymbolCounts]) -> None:
        """Build the pair-Huffman and range tables of each named quantizer from training
        statistics (see :meth:`count_symbols`, :meth:`analyze_symbols`)."""
        for name, counts in symbol_counts.items():
            if name not in self.entropy_tables:
                raise UserError(f"no quantizer named {name!r} (have {', '.join(self.quantizer_names)})")
            self.entropy_tables[name].fit(counts)

    # -- compress / decompress ----------------------------------------------------------
    def _check_audio(self, audio: Any) -> np.ndarray:
        a = np.asarray(audio)
        if a.ndim != 2:
            raise AudioError(f"{self.codec_id} expects (channels, samples) audio, got shape {a.shape}")
        if a.dtype.kind != "f":
            raise AudioError(f"{self.codec_id} expects floating-point audio, got {a.dtype}")
        return validate(np.ascontiguousarray(a, dtype=np.float32))

    def _gain(self, x: np.ndarray) -> np.float32:
        if not self.config.normalize:
            return np.float32(1.0)
        rms = float(np.sqrt(np.mean(np.square(x.astype(np.float64)))))
        return np.float32(max(rms, GAIN_FLOOR))

    def _lpc_from_indices(self, idx: np.ndarray) -> np.ndarray:
        lp = self.config.lpc
        c = self.lsp_quantizer.centroids.detach().cpu().double().numpy()
        gap = 2.0 * math.pi * lp.lsp_min_gap_hz / self.config.sample_rate
        a = lpcdsp.lsp_to_lpc(lpcdsp.stabilize_lsp(c[idx], gap))
        return lpcdsp.bandwidth_expand(a, lpcdsp.stability_factors(a))

    def _prepare_channel(self, x: np.ndarray, geo: Geometry) -> PreparedChannel:
        """Encoder front end of one channel: gain, LSP symbols and the frames to code."""
        cfg = self.config
        g = self._gain(x)
        xn = x.astype(np.float64) / np.float64(g)
        o, T, P = cfg.overlap, geo.num_samples, geo.padded_length
        coded = np.zeros(P)
        lsp_idx = None
        if cfg.lpc is not None:
            lp = cfg.lpc
            s = lpcdsp.preemphasis(lpcdsp.highpass(xn, cfg.sample_rate, lp.highpass_hz), lp.preemphasis)
            nL = geo.num_segments * geo.segment_length
            s_pad = np.zeros(max(P, nL))
            s_pad[o:o + T] = s
            s_seg = s_pad[:nL]
            frames = lpcdsp.analysis_frames(s_seg, geo.num_segments, lp.segment_length, lp.analysis_length)
            a = lpcdsp.lpc_from_frames(frames, lp.order, None, cfg.sample_rate, lp.lag_window_hz, lp.white_noise)
            lsp = lpcdsp.lpc_to_lsp(a)
            c = self.lsp_quantizer.centroids.detach().cpu().double().numpy()
            lsp_idx = np.argmin((lsp[..., None] - c) ** 2, axis=-1).astype(np.int64)
            coded[:nL] = lpcdsp.lpc_residual(s_seg, self._lpc_from_indices(lsp_idx), lp.segment_length,
                                              lp.subframe_length)
            if lp.residual_gain != 1.0:
                coded[:nL] *= lp.residual_gain
        else:
            coded[o:o + T] = xn
        view = np.lib.stride_tricks.sliding_window_view(coded[: geo.num_frames * geo.hop + o], geo.frame_length)
        frames = np.ascontiguousarray(view[:: geo.hop], dtype=np.float32)
        return PreparedChannel(gain=g, lsp_indices=lsp_idx, frames=frames)

    def _synthesize_channel(self, frames: np.ndarray, lsp_idx: np.ndarray | None, gain: float,
                            geo: Geometry) -> np.ndarray:
        """Decoder back end of one channel: overlap-add of decoded frames (F, S), LPC
        synthesis and de-emphasis, gain; returns (T,) float32."""
        cfg = self.config
        o = cfg.overlap
        window = lpcdsp.overlap_add_window(cfg.frame_length, cfg.overlap)
        rec = np.zeros(max(geo.padded_length, geo.num_frames * geo.hop + o))
        for f in range(geo.num_frames):
            rec[f * geo.hop: f * geo.hop + geo.frame_length] += frames[f].astype(np.float64) * window
        if cfg.lpc is not None:
            lp = cfg.lpc
            nL = geo.num_segments * geo.segment_length
            if lp.residual_gain != 1.0:
                rec = rec / lp.residual_gain
            s_hat = lpcdsp.lpc_synthesis(rec[:nL], self._lpc_from_indices(lsp_idx), lp.segment_length)
            rec = lpcdsp.deemphasis(s_hat, lp.preemphasis)
        return (rec[o:o + geo.num_samples] * np.float64(gain)).astype(np.float32)

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int:
        return self.geometry(int(num_samples)).num_chunks

    @torch.no_grad()
    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, *,
                 payload_budget_bytes: int | None = None, **kwargs) -> EncodedAudio:
        """Entropy-code ``(channels, samples)`` float32 audio at 16 kHz (channels coded
        independently); one chunk per ``chunk_frames`` frames.  ``bitrate_kbps`` is the total
        over the channels (each at the operating point; :class:`CodecModel`); the real rate is
        ``8 * num_bytes / duration``.  With ``file_rate_control`` the chunks' ladder steps are
        chosen so that the payload fits ``payload_budget_bytes`` (what ``neurocodec.api`` leaves
        of ``bitrate x duration`` after the container; the payload alone gets ``bitrate x
        duration`` when None) (:mod:`neurocodec.codecs.cascade_rate`); without it every chunk
        uses the trained step."""
        audio = self._check_audio(audio)
        C, T = audio.shape
        kbps = self.validate_bitrate(bitrate_kbps, C)
        geo = self.geometry(T)
        coder = ChunkCoder(self, [self._prepare_channel(audio[c], geo) for c in range(C)], geo)
        steps = [0] * geo.num_chunks
        if self.config.file_rate_control:
            budget = payload_budget_bytes
            if budget is None:
                budget = int(kbps * 1000.0 / 8.0 * T / self.sample_rate)
            allowed = sorted({0, *self.config.ladder_tables}) if self.config.ladder_tables else list(RATE_STEPS)
            plan = plan_rate_steps(lambda c, i: coder.size(c, allowed[i]), geo.num_chunks, int(budget),
                                   steps=range(len(allowed)), multiplier=lambda i: rate_step_multiplier(allowed[i]),
                                   start=allowed.index(0))
            steps = [allowed[i] for i in plan]
        chunks = [coder.chunk(k, s) for k, s in enumerate(steps)]
        return EncodedAudio(chunks=chunks, bitrate_kbps=kbps, num_channels=C, num_samples=T)

    @torch.no_grad()
    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        """Decode chunks into ``(num_channels, num_samples)`` float32 audio."""
        chunks = [bytes(c) for c in chunks]
        C, T = int(num_channels), int(num_samples)
        if C < 1 or T < 1:
            raise CorruptStreamError(f"invalid stream dimensions ({C} channels, {T} samples)")
        cfg = self.config
        geo = self.geometry(T)
        if len(chunks) != geo.num_chunks:
            raise CorruptStreamError(f"{self.codec_id} stream of {T} samples needs {geo.num_chunks} chunks, "
                                     f"got {len(chunks)}")
        recon = np.zeros((C, geo.num_frames, geo.frame_length), dtype=np.float32)
        lsp_idx = np.zeros((C, geo.num_segments, cfg.lpc.order if cfg.lpc else 0), dtype=np.int64)
        gains = None
        for k, data in enumerate(chunks):
            fs, ss = geo.frame_slice(k), geo.segment_slice(k)
            shapes = {}
            for name in self.quantizer_names:
                if name == "lsp":
                    shapes[name] = (ss.stop - ss.start, cfg.lpc.order)
                else:
                    shapes[name] = (fs.stop - fs.start, self.quantizer_code_length(name))
            content = decode_chunk(data, C, self.tables_for_step, self.quantizer_names, shapes)
            if gains is None:
                gains = content.gains
            elif not np.array_equal(gains, content.gains):
                raise CorruptStreamError("chunks disagree on the channel gains")
            step = rate_step_multiplier(content.rate_step)
            for c, sym in enumerate(content.symbols):
                if cfg.lpc is not None:
                    lsp_idx[c, ss] = sym["lsp"]
                total = None
                for i, m in enumerate(self.coding_modules):
                    scale = step if i == cfg.rate_module - 1 else 1.0
                    part = m.decode_indices(torch.from_numpy(sym[f"module{i + 1}"]), scale)
                    total = part if total is None else total + part
                recon[c, fs] = total.numpy()
        out = np.empty((C, T), dtype=np.float32)
        for c in range(C):
            out[c] = self._synthesize_channel(recon[c], lsp_idx[c] if cfg.lpc is not None else None, gains[c], geo)
        return out

    def quantizer_code_length(self, name: str) -> int:
        """Symbols per coding unit of quantizer ``name`` (LPC order or module code length)."""
        if name == "lsp":
            return self.config.lpc.order
        return self.config.modules[int(name[6:]) - 1].code_length

class ChunkCoder:
    """The symbols and chunk payloads of one signal at any ladder step, each payload computed
    once (:meth:`CascadeCodec.compress`; :meth:`CascadeCodec.analyze_symbols` at the trained step).

    The rate module's code of every chunk is computed once (with the symbols of the modules
    before it); a step re-quantizes it and runs the later modules on the new residual.
    ``"best"`` codes both ways and keeps the shorter."""

    def __init__(self, model: CascadeCodec, prepared: list[PreparedChannel], geo: Geometry) -> None:
        self.model, self.prepared, self.geo = model, prepared, geo
        self.gains = np.array([p.gain for p in prepared], dtype=np.float32)
        self.frames = [torch.from_numpy(p.frames) for p in prepared]
        self.codes: dict[tuple[int, int], tuple[dict[str, np.ndarray], torch.Tensor, torch.Tensor]] = {}
        self.payloads: dict[tuple[int, int], bytes] = {}

    def symbols(self, c: int, k: int, step: int) -> dict[str, np.ndarray]:
        """Symbols of every quantizer for channel ``c``, chunk ``k``, the rate module
        (``config.rate_module``) at ladder step ``step``: module ``i`` codes the residual of
        modules ``1..i-1`` (zhen2019 eq. 1).  The modules before the rate module do not depend
        on the step: their symbols, and the rate module's real-valued code, are computed once."""
        geo, modules = self.geo, self.model.coding_modules
        r_at = self.model.config.rate_module - 1
        if (c, k) not in self.codes:
            r = self.frames[c][geo.frame_slice(k)]
            fixed = {}
            for i, m in enumerate(modules[:r_at]):
                idx = m.encode_indices(r)
                fixed[f"module{i + 1}"] = idx.numpy().astype(np.int64)
                r = r - m.decode_indices(idx)
            self.codes[c, k] = (fixed, r, modules[r_at].code(r))
        fixed, r, code = self.codes[c, k]
        mult = rate_step_multiplier(step)
        out = dict(fixed)
        for i, m in enumerate(modules[r_at:], start=r_at):
            idx = m.quantize_code(code, mult) if i == r_at else m.encode_indices(r)
            out[f"module{i + 1}"] = idx.numpy().astype(np.int64)
            if i + 1 < len(modules):
                r = r - m.decode_indices(idx, mult if i == r_at else 1.0)
        lsp = self.prepared[c].lsp_indices
        if lsp is not None:
            out["lsp"] = lsp[geo.segment_slice(k)]
        return out

    def chunk(self, k: int, step: int) -> bytes:
        """Payload of chunk ``k`` at ladder step ``step`` (all channels)."""
        key = (k, step)
        if key not in self.payloads:
            model = self.model
            per_ch = [self.symbols(c, k, step) for c in range(len(self.prepared))]
            cfg = model.config
            coders = CODERS if cfg.entropy_coder == "best" else (cfg.entropy_coder,)
            # "best": both coders, the shorter chunk is kept (its first byte names the coder)
            coded = [encode_chunk(ChunkContent(name, self.gains, per_ch, step), model.tables_for_step(step),
                                  model.quantizer_names) for name in coders]
            self.payloads[key] = min(coded, key=len)
        return self.payloads[key]

    def size(self, k: int, step: int) -> int:
        return len(self.chunk(k, step))
