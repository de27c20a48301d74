"""What every classic baseline shares: per-channel coding, frame padding and delay removal.

A baseline codes each channel independently as mono (one payload chunk per channel, in
channel order) so that every wrapped codec handles any channel count the same way.  As for
every codec the bitrate asked for (and kept in ``EncodedAudio.bitrate_kbps`` and the stream
header) is the total over all channels: each channel is coded at ``bitrate / channels``, which
must be one of the codec's rates (``bitrates``: its modes or range, per channel).

Delay compensation: a codec whose input-to-output delay ``codec_delay_samples`` is known and
constant is fed ``codec_delay_samples`` extra zeros at the end (rounded up to whole frames),
and the first ``codec_delay_samples`` decoded samples are dropped, so ``decompress`` returns
audio time-aligned with the input and exactly ``num_samples`` long.  The delay left in the
output is ``algorithmic_delay_samples`` (0 for every baseline here).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Iterable, Sequence

import numpy as np

from ..audio import validate
from ..codecs.base import CodecModel, EncodedAudio
from ..errors import AudioError, CorruptStreamError


class BaselineCodec(CodecModel):
    """A classic codec wrapped as a :class:`CodecModel` that codes channels one by one.

    Subclasses set ``frame_samples`` (coding granule at ``sample_rate``) and
    ``codec_delay_samples`` (or override :meth:`frame_length` / :meth:`delay` when they depend
    on the bitrate) and implement :meth:`encode_channel` / :meth:`decode_channel`.
    """

    #: samples per codec frame at ``sample_rate``; inputs are zero-padded to whole frames
    frame_samples: int = 1
    #: input-to-output delay of encoder + decoder, removed by :meth:`decompress`
    codec_delay_samples: int = 0
    #: delay still present in the output of :meth:`decompress` (0: time-aligned)
    algorithmic_delay_samples: int = 0

    # -- per-channel hooks ---------------------------------------------------------
    @abstractmethod
    def encode_channel(self, pcm: np.ndarray, kbps: float) -> bytes:
        """Code one channel (float32, a whole number of frames long) into payload bytes."""

    @abstractmethod
    def decode_channel(self, payload: bytes, num_frames: int, kbps: float) -> np.ndarray:
        """Decode ``num_frames`` frames of one channel's payload into float32 samples."""

    def frame_length(self, kbps: float) -> int:
        """Samples per frame at the rate ``kbps`` (``frame_samples`` unless it depends on the mode)."""
        return self.frame_samples

    def delay(self, kbps: float) -> int:
        """Codec delay in samples at the rate ``kbps`` (``codec_delay_samples`` unless mode-dependent)."""
        return self.codec_delay_samples

    # -- CodecModel ------------------------------------------------------------------
    def padded_length(self, num_samples: int, kbps: float) -> int:
        """Samples fed to the encoder: the input plus the codec delay, in whole frames."""
        frame = self.frame_length(kbps)
        need = num_samples + self.delay(kbps)
        return -(-need // frame) * frame

    def num_chunks(self, num_channels: int, num_samples: int, bitrate_kbps: float) -> int:
        return int(num_channels)

    def compress(self, audio: np.ndarray, bitrate_kbps: float | None = None, **kwargs) -> EncodedAudio:
        """Code ``(channels, samples)`` float32 audio at ``self.sample_rate``, channel by channel,
        each at ``bitrate_kbps / channels`` (the total over all channels)."""
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise AudioError(f"audio must be (channels, samples), got shape {tuple(x.shape)}")
        validate(x)
        kbps = self.channel_bitrate(bitrate_kbps, x.shape[0])
        n = x.shape[1]
        total = self.padded_length(n, kbps)
        chunks = []
        for ch in x:
            padded = np.zeros(total, dtype=np.float32)
            padded[:n] = ch
            chunks.append(self.encode_channel(padded, kbps))
        return EncodedAudio(chunks=chunks, bitrate_kbps=kbps * x.shape[0], num_channels=x.shape[0], num_samples=n)

    def decompress(self, chunks: Sequence[bytes] | Iterable[bytes], num_channels: int,
                   num_samples: int, bitrate_kbps: float) -> np.ndarray:
        """Decode one chunk per channel into time-aligned ``(num_channels, num_samples)`` float32."""
        chunks = list(chunks)
        if len(chunks) != num_channels:
            raise CorruptStreamError(
                f"{self.codec_id} payload has {len(chunks)} chunks for {num_channels} channels")
        kbps = self.channel_bitrate(bitrate_kbps, num_channels)
        num_frames = self.padded_length(num_samples, kbps) // self.frame_length(kbps)
        start = self.delay(kbps)
        out = None  # allocated once a channel has decoded to the length the header claims
        for c, payload in enumerate(chunks):
            pcm = self.decode_channel(bytes(payload), num_frames, kbps)
            if pcm.shape[0] < start + num_samples:
                raise CorruptStreamError(
                    f"{self.codec_id} payload of channel {c} decodes to {pcm.shape[0]} samples, "
                    f"expected {start + num_samples}")
            if out is None:
                out = np.zeros((num_channels, num_samples), dtype=np.float32)
            out[c] = pcm[start:start + num_samples]
        if out is None:
            raise CorruptStreamError(f"{self.codec_id} stream has no channels")
        return out
