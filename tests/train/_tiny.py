"""A tiny trainable codec and in-memory dataset for the training-stack tests (and bench_train.py).

TinyCodec is a 2-layer conv autoencoder with additive uniform noise as the quantisation proxy and
a log-magnitude rate estimate, so training uses torch's random stream (what exact resumption must
restore).  Its two-phase schedule mimics CMRL: encoder only, then everything at a lower rate.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch

from neurocodec.train.protocol import LossOutput, Phase, split_steps
from neurocodec.train.recipe import register_recipe


@dataclass
class TinyConfig:
    sample_rate: int = 16000
    channels: int = 8
    kernel: int = 9
    bitrate_kbps: float = 16.0
    two_phases: bool = False
    nan_at_step: int = -1  # training_step returns NaN from this step on (divergence tests)
    explode_at_step: int = -1  # training_step returns a huge loss from this step on
    grad_nan_at_step: int = -1  # finite loss but NaN gradients from this step on


class TinyCodec(torch.nn.Module):
    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        c, k = config.channels, config.kernel
        self.enc = torch.nn.Sequential(torch.nn.Conv1d(1, c, k, padding=k // 2), torch.nn.Tanh(),
                                       torch.nn.Conv1d(c, 2, k, stride=2, padding=k // 2))
        self.dec = torch.nn.Sequential(torch.nn.ConvTranspose1d(2, c, 2, stride=2), torch.nn.Tanh(),
                                       torch.nn.Conv1d(c, 1, k, padding=k // 2))
        self.phase_names: list[str] = []

    def phases(self, total_steps: int):
        if not self.config.two_phases:
            return [Phase("joint", total_steps)]
        a, b = split_steps(total_steps, [1, 1])
        return [Phase("encoder", a, lr=3e-3, trainable=("enc",)), Phase("joint", b, lr=1e-3)]

    def set_phase(self, phase) -> None:
        self.phase_names.append(phase.name)

    def _code(self, x: torch.Tensor, noisy: bool) -> torch.Tensor:
        y = self.enc(x)
        if noisy:
            y = y + (torch.rand_like(y) - 0.5) * 0.1
        return y

    def training_step(self, batch: torch.Tensor, step: int) -> LossOutput:
        y = self._code(batch, noisy=True)
        x_hat = self.dec(y)[..., : batch.shape[-1]]
        mse = torch.mean((x_hat - batch) ** 2)
        bits = torch.log2(1.0 + y.abs() / 0.1).sum(dim=(1, 2)).mean()
        bps = bits * self.sample_rate / batch.shape[-1]
        total = mse + 1e-7 * bps
        if 0 <= self.config.nan_at_step <= step:
            total = total * float("nan")
        if 0 <= self.config.explode_at_step <= step:
            total = total * 1e9
        if 0 <= self.config.grad_nan_at_step <= step:  # d sqrt(u)/du = inf at u = 0; 0 * inf = NaN
            total = total + 0.0 * (self.enc[0].weight * 0.0).abs().sqrt().sum()
        return LossOutput(total, {"loss/mse": mse.detach(), "rate/bits_per_second": bps.detach()})

    def reconstruct(self, batch: torch.Tensor) -> torch.Tensor:
        return self.dec(self._code(batch, noisy=False))[..., : batch.shape[-1]]

    def validation_step(self, batch: torch.Tensor) -> dict[str, float]:
        return {"val/mse": float(torch.mean((self.reconstruct(batch) - batch) ** 2))}


def build_tiny(config: TinyConfig) -> TinyCodec:
    return TinyCodec(config)


class NativeTinyCodec(TinyCodec):
    """TinyCodec with its own single-file safetensors format (like the cascade codecs)."""

    def save_pretrained(self, path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(path), metadata={"format": "tiny-native", "config": json.dumps(asdict(self.config))})

    @classmethod
    def from_pretrained(cls, path) -> "NativeTinyCodec":
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        assert meta["format"] == "tiny-native"
        model = cls(TinyConfig(**json.loads(meta["config"])))
        model.load_state_dict(load_file(str(path)), strict=True)
        return model


class TinyDataset:
    """``n`` deterministic harmonic signals; each item is a random crop of ``segment`` samples drawn
    with NumPy's global random stream (so resumption must restore it)."""

    def __init__(self, n: int = 48, segment: int = 256, seed: int = 0):
        rng = np.random.default_rng(seed)
        t = np.arange(segment * 2) / 16000
        f0 = rng.uniform(100, 400, size=(n, 1))
        self.signals = (0.3 * np.sin(2 * np.pi * f0 * t) + 0.1 * np.sin(2 * np.pi * 3 * f0 * t)).astype(np.float32)
        self.segment = segment

    def __len__(self) -> int:
        return len(self.signals)

    def __getitem__(self, i: int) -> np.ndarray:
        off = np.random.randint(0, self.signals.shape[1] - self.segment + 1)
        return self.signals[i, off:off + self.segment][None]


def build_tiny_data(manifest, split, recipe, sample_rate):
    """Reads nothing from the manifest except its existence; 'valid' is a smaller set."""
    n = 48 if split == "train" else 8
    return TinyDataset(n, recipe.train.segment_samples, seed=0 if split == "train" else 1)


TINY_TRAIN = {"batch_size": 8, "segment_samples": 256, "lr": 3e-3, "log_every": 5, "val_every": 1000,
              "ckpt_every": 1000, "steps": 20,
              "threads": 1}  # 2 torch threads on 2 shared cores run ~100x slower than 1


def register_tiny(name: str = "tiny") -> str:
    register_recipe(name, TinyConfig, build_tiny, train=TINY_TRAIN, build_data=build_tiny_data,
                    summary="test model", replace=True)
    register_recipe(name + "-native", TinyConfig, NativeTinyCodec, train=TINY_TRAIN, build_data=build_tiny_data,
                    summary="test model with save_pretrained", replace=True)
    return name
