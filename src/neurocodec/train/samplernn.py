"""Training of the conditional SampleRNN of ``mdct-gen`` / ``mdct-gen-piano`` (fejgin2020 §3.2, §4).

Two steps, both resumable and run from the command line::

    python -m neurocodec.train.samplernn prepare --manifest /work/corpus16/manifest.jsonl \\
        --kind speech --split train --kbps 16 --out DATA/speech-train.npz
    python -m neurocodec.train.samplernn fit --kind speech --train DATA/speech-train.npz \\
        --valid DATA/speech-valid.npz --out RUN --max-seconds 3600 [--set rnn_width=64 ...]
    python -m neurocodec.train.samplernn export RUN --name mdct-gen-16k

``prepare`` runs the ``mdct`` encoder and ``decode_detailed`` once per file and stores the
target samples, the decoded waveform and the quantized envelope (the conditioning is never
recomputed during training).  ``fit`` draws random crops of ``crop_blocks`` codec blocks,
minimises the NLL (nats per sample) with Adam (lr 2e-4) and multiplies the learning rate by
0.3 when the validation NLL has not improved for ``patience`` evaluations (§3.2).  It stops after
``max_seconds`` of wall clock (the same meaning as ``train.max_seconds`` of the shared trainer)
or ``max_steps``, checkpoints every ``checkpoint_seconds`` and on exit (``RUN/last.pt``, and
``RUN/best.pt`` at the best validation NLL), and resumes from ``RUN/last.pt`` when it exists.
``export`` writes the best checkpoint as fp16 safetensors with its config and a model card.

The same model also trains with the shared trainer, as the recipes ``mdct-gen`` and
``mdct-gen-piano`` (registered in :mod:`.recipe`; :class:`MdctGenConfig`,
:class:`MdctGenTrainable`, :func:`build_data`)::

    neurocodec train mdct-gen --data PACK_OR_MANIFEST --bitrate 16 --out RUN [--init WEIGHTS] [--device cuda]
    neurocodec export RUN --name mdct-gen-16k --fp16

which is what the GPU plan (``scripts/gpu_plan/samplernn.yaml``) runs: an audio pack (``.ncpack``)
or a manifest, the conditioning computed once per run (its time taken off ``train.max_seconds``),
checkpoints in ``RUN/checkpoints/``, ``train.amp``/``--device``/``--init``/``--resume``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..nn.samplernn import SampleRnn, SampleRnnConfig, pad_conditioning
from .errors import RecipeError

__all__ = ["FitConfig", "select_items", "condition_signals", "prepare", "CropSampler", "fit", "export",
           "MdctGenConfig", "MdctGenPianoConfig", "MdctGenTrainable", "MdctGenCrops", "build_data"]

KINDS = ("speech", "piano")


def select_items(manifest: str | os.PathLike, kind: str, split: str) -> list[dict]:
    """Manifest rows of clean speech (``speech-real``/``speech-tts``) or of the piano
    renderings (``music-rendered`` with ``style=piano``) of one split."""
    rows = [json.loads(line) for line in Path(manifest).read_text().splitlines() if line.strip()]
    out = []
    for r in rows:
        if r.get("split") != split:
            continue
        if kind == "speech" and r.get("source") in ("speech-real", "speech-tts"):
            out.append(r)
        elif kind == "piano" and r.get("source") == "music-rendered" and "style=piano" in r.get("origin", ""):
            out.append(r)
    return out


def condition_signals(signals, kbps: float = 16.0, cfg: SampleRnnConfig | None = None) -> dict:
    """Encode each mono signal (``(T,)`` float32 on the 16-bit grid ``v / 32768``, 16 kHz) with
    ``mdct`` at ``kbps``, decode it once with ``decode_detailed`` and lay the result out as the
    ``.npz`` of :func:`prepare` stores it: ``x`` int16 (concatenated, each file padded with zeros
    to whole blocks), ``xhat`` float32 and ``env`` float32 per file in the
    :func:`pad_conditioning` layout, ``blocks`` per file, ``kbps``.  Only NumPy/SciPy code runs
    here (the ``mdct`` coder's Huffman tables, no soundfile/soxr/constriction), so the GPU
    machine computes it too."""
    from ..codecs.mdct import MdctCodec

    cfg = cfg or SampleRnnConfig()
    codec = MdctCodec()
    xs, xhs, envs, blocks = [], [], [], []
    for wav in signals:
        wav = np.asarray(wav, dtype=np.float32).reshape(1, -1)
        enc = codec.compress(wav, kbps)
        dec = codec.decode_detailed(enc.chunks, 1, wav.shape[1])
        xp, ep, nb = pad_conditioning(dec.audio[0], dec.envelope[0], cfg)
        x16 = np.zeros(nb * cfg.hop, dtype=np.int16)
        x16[:wav.shape[1]] = np.round(wav[0] * 32768).clip(-32768, 32767).astype(np.int16)
        xs.append(x16), xhs.append(xp), envs.append(ep), blocks.append(nb)
    if not xs:
        raise ValueError("no signal to condition")
    return {"x": np.concatenate(xs), "blocks": np.array(blocks), "xhat": np.concatenate(xhs),
            "env": np.concatenate(envs), "kbps": float(kbps)}


def prepare(manifest: str | os.PathLike, kind: str, split: str, out: str | os.PathLike, kbps: float = 16.0,
            cfg: SampleRnnConfig | None = None, limit: int | None = None) -> dict:
    """Encode every selected file with ``mdct`` at ``kbps`` and store targets and conditioning in
    one ``.npz`` (layout of :func:`condition_signals`, plus ``kind``, ``split``, ``paths``).
    Returns a summary."""
    from ..audio import read_audio, resample

    cfg = cfg or SampleRnnConfig()
    base = Path(manifest).parent
    items = select_items(manifest, kind, split)[:limit]
    seconds = 0.0

    def signals():
        nonlocal seconds
        for r in items:
            wav, sr = read_audio(base / r["path"])
            wav = wav[:1] if wav.ndim == 2 else wav[None]
            if sr != 16000:
                wav = resample(wav, sr, 16000)
            wav = (np.clip(np.round(wav * 32768), -32768, 32767) / 32768).astype(np.float32)
            seconds += wav.shape[1] / 16000
            yield wav[0]

    d = condition_signals(signals(), kbps, cfg)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(out) + ".tmp.npz")
    np.savez(tmp, **d, kind=kind, split=split, paths=np.array([r["path"] for r in items]))
    os.replace(tmp, out)
    return {"files": len(items), "seconds": round(seconds, 1), "kbps": kbps, "out": str(out)}


class CropSampler:
    """Random crops of ``crop_blocks`` codec blocks from a prepared ``.npz`` in the
    :class:`~neurocodec.nn.samplernn.SampleRnn` layout (history of ``TS(4)`` samples, zeros
    before a file's start)."""

    def __init__(self, path: str | os.PathLike | dict, cfg: SampleRnnConfig):
        if isinstance(path, dict):  # what condition_signals returned
            d = path
        else:
            with np.load(path) as z:  # every access of an NpzFile member re-reads it: read each once
                d = {k: z[k] for k in ("x", "xhat", "env", "blocks", "kbps")}
        self.cfg = cfg
        hop, P = cfg.hop, cfg.history
        self.blocks = d["blocks"].astype(np.int64)
        self.files = []
        xo = xho = eo = 0
        for nb in self.blocks:
            x = d["x"][xo:xo + nb * hop].astype(np.float32) / 32768
            xh = d["xhat"][xho:xho + (nb + 3) * hop]
            ev = d["env"][eo:eo + nb + 3]
            self.files.append((np.concatenate([np.zeros(P, np.float32), x]), xh, ev))
            xo, xho, eo = xo + nb * hop, xho + (nb + 3) * hop, eo + nb + 3
        self.kbps = float(d["kbps"])

    @property
    def seconds(self) -> float:
        return float(self.blocks.sum() * self.cfg.hop / 16000)

    def crop(self, i: int, b0: int, nb: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hop, P = self.cfg.hop, self.cfg.history
        x, xh, ev = self.files[i]
        return (x[b0 * hop:b0 * hop + P + nb * hop], xh[b0 * hop:b0 * hop + (nb + 3) * hop], ev[b0:b0 + nb + 3])

    def batch(self, rng: np.random.Generator, batch: int, nb: int) -> tuple[torch.Tensor, ...]:
        w = np.maximum(self.blocks - nb + 1, 0).astype(np.float64)
        files = rng.choice(len(self.files), size=batch, p=w / w.sum())
        crops = [self.crop(i, int(rng.integers(0, self.blocks[i] - nb + 1)), nb) for i in files]
        return tuple(torch.from_numpy(np.stack(c)) for c in zip(*crops))

    def fixed_batches(self, batch: int, nb: int, count: int) -> list[tuple[torch.Tensor, ...]]:
        """Deterministic validation batches (seed 1234)."""
        rng = np.random.default_rng(1234)
        return [self.batch(rng, batch, nb) for _ in range(count)]


@dataclass
class FitConfig:
    """Training settings (fejgin2020 §3.2: Adam, lr 2e-4, x0.3 on a validation plateau)."""

    kind: str = "speech"
    lr: float = 2e-4
    lr_factor: float = 0.3
    patience: int = 3
    min_lr: float = 1e-6
    batch: int = 16
    crop_blocks: int = 10
    max_steps: int = 1_000_000
    max_seconds: float = 3600.0
    checkpoint_seconds: float = 300.0
    eval_every: int = 100
    valid_batches: int = 4
    threads: int = 1
    seed: int = 0
    grad_clip: float = 1.0
    model: dict = field(default_factory=dict)

    def model_config(self) -> SampleRnnConfig:
        base = SampleRnnConfig.speech() if self.kind == "speech" else SampleRnnConfig.piano()
        return replace(base, **self.model) if self.model else base


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def fit(cfg: FitConfig, train_npz: str | os.PathLike, valid_npz: str | os.PathLike, out: str | os.PathLike,
        log=print) -> dict:
    """Train (or resume) a SampleRNN; returns a summary (steps, best validation NLL)."""
    torch.set_num_threads(cfg.threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mcfg = cfg.model_config()
    model = SampleRnn(mcfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=cfg.lr_factor, patience=cfg.patience,
                                                       min_lr=cfg.min_lr)
    state = {"step": 0, "best": math.inf, "history": [], "seconds": 0.0}
    last = out / "last.pt"
    if last.exists():
        ck = torch.load(last, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        state = ck["state"]
        log(f"resumed at step {state['step']} (best valid {state['best']:.4f})")
    train = CropSampler(train_npz, mcfg)
    valid = CropSampler(valid_npz, mcfg).fixed_batches(cfg.batch, cfg.crop_blocks, cfg.valid_batches)
    rng = np.random.default_rng([cfg.seed, state["step"]])
    t_start = time.monotonic()
    t_ck = t_start
    seconds0 = state["seconds"]

    def checkpoint(path: Path) -> None:
        _save(path, {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                     "state": state, "fit": asdict(cfg), "config": mcfg.to_dict(), "kbps": train.kbps})

    run_loss, run_n = 0.0, 0
    while state["step"] < cfg.max_steps and time.monotonic() - t_start < cfg.max_seconds:
        model.train()
        x, xh, ev = train.batch(rng, cfg.batch, cfg.crop_blocks)
        loss = model.nll(x, xh, ev)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        state["step"] += 1
        run_loss, run_n = run_loss + loss.item(), run_n + 1
        state["seconds"] = seconds0 + time.monotonic() - t_start
        if state["step"] % cfg.eval_every == 0:
            model.eval()
            with torch.no_grad():
                v = float(np.mean([float(model.nll(*b)) for b in valid]))
            sched.step(v)
            rec = {"step": state["step"], "train_nll": run_loss / run_n, "valid_nll": v,
                   "lr": opt.param_groups[0]["lr"], "seconds": round(state["seconds"], 1)}
            state["history"].append(rec)
            run_loss, run_n = 0.0, 0
            log(json.dumps(rec))
            if v < state["best"]:
                state["best"] = v
                checkpoint(out / "best.pt")
        if time.monotonic() - t_ck > cfg.checkpoint_seconds:
            checkpoint(last)
            t_ck = time.monotonic()
    checkpoint(last)
    if not (out / "best.pt").exists():
        checkpoint(out / "best.pt")
    return {"steps": state["step"], "best_valid_nll": state["best"], "seconds": state["seconds"]}


def fp16_check(state: dict, cfg: SampleRnnConfig, valid_npz: str | os.PathLike, batches: int = 4,
               batch: int = 8, crop_blocks: int = 8) -> tuple[float, float]:
    """Validation NLL with the float32 weights and with the same weights rounded to fp16 (what
    ships), on fixed validation crops."""
    data = CropSampler(valid_npz, cfg).fixed_batches(batch, crop_blocks, batches)
    out = []
    for dtype in (torch.float32, torch.float16):
        model = SampleRnn(cfg)
        model.load_state_dict({k: v.to(dtype).to(torch.float32) for k, v in state.items()})
        model.eval()
        with torch.no_grad():
            out.append(float(np.mean([float(model.nll(*b)) for b in data])))
    return out[0], out[1]


def export(run: str | os.PathLike, out_dir: str | os.PathLike, name: str, note: str = "",
           valid_npz: str | os.PathLike | None = None) -> Path:
    """Write ``RUN/best.pt`` as ``out_dir/model.safetensors`` (fp16), ``config.json`` and
    ``MODEL_CARD.md``; with ``valid_npz`` the card also compares the validation NLL of the
    float32 and the fp16 weights."""
    from safetensors.torch import save_file

    ck = torch.load(Path(run) / "best.pt", weights_only=False)
    last_path = Path(run) / "last.pt"
    total = torch.load(last_path, weights_only=False)["state"] if last_path.exists() else ck["state"]
    if ck["state"]["step"] > total["step"]:  # a run stopped between checkpoints: best.pt is newer
        total = ck["state"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in ck["model"].items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "neurocodec-samplernn", "name": name})
    st = ck["state"]
    cfg = {"model": ck["config"], "fit": ck["fit"], "trained_kbps": ck["kbps"], "steps": st["step"],
           "best_valid_nll": st["best"], "train_seconds": round(st["seconds"], 1),
           "run_steps": total["step"], "run_seconds": round(total["seconds"], 1)}
    (out / "config.json").write_text(json.dumps(cfg, indent=1, sort_keys=True) + "\n")
    model = SampleRnn(SampleRnnConfig.from_dict(ck["config"]))
    hist = st["history"]
    lines = [f"# {name}: conditional SampleRNN for generative decoding of `mdct` streams (fejgin2020 §3.2)", "",
             f"- model: four tiers, frame sizes {tuple(ck['config']['frame_sizes'])}, "
             f"L = {ck['config']['num_logistics']} logistics, GRU width {ck['config']['rnn_width']}, "
             f"MLP width {ck['config']['mlp_width']}, {model.num_parameters():,} parameters, stored fp16",
             f"- conditioning: `mdct` decoded waveform and quantized envelope at {ck['kbps']:g} kbps "
             f"(the model is used at every `mdct` rate)",
             f"- data: neurocodec corpus ({ck['fit']['kind']}, train split; validation on the valid split)",
             f"- training: Adam lr {ck['fit']['lr']:g}, x{ck['fit']['lr_factor']} on a validation plateau, batch "
             f"{ck['fit']['batch']} crops of {ck['fit']['crop_blocks']} blocks (20 ms each), "
             f"{total['step']} steps in {total['seconds'] / 60:.0f} min of wall clock on {ck['fit']['threads']} "
             "CPU thread(s) (a shared machine: the process got a small share of a core)",
             f"- shipped: the checkpoint with the best validation NLL, step {st['step']}: {st['best']:.4f} nats/sample"
             + (f" (first evaluation {hist[0]['valid_nll']:.4f} at step {hist[0]['step']})" if hist else ""),
             "- validation history (step: NLL): " + ", ".join(f"{h['step']}: {h['valid_nll']:.3f}"
                                                              for h in total.get("history", [])),
             ]
    if valid_npz is not None:
        f32, f16 = fp16_check(ck["model"], SampleRnnConfig.from_dict(ck["config"]), valid_npz)
        cfg["valid_nll_fp32"], cfg["valid_nll_fp16"] = f32, f16
        (out / "config.json").write_text(json.dumps(cfg, indent=1, sort_keys=True) + "\n")
        lines.append(f"- fp16 storage: validation NLL {f16:.4f} with the fp16 weights vs {f32:.4f} in float32 "
                     f"(4 fixed batches of {Path(valid_npz).name})")
    if note:
        lines += ["", note]
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    return out


# -- the shared trainer's recipes ``mdct-gen`` / ``mdct-gen-piano`` -----------------------------
#
# ``neurocodec train mdct-gen --data MANIFEST_OR_PACK --bitrate K --out RUN`` trains the same model
# with the shared :class:`~neurocodec.train.trainer.Trainer` (checkpoints in RUN/checkpoints/,
# ``train.max_seconds``, ``train.ckpt_every_seconds``, ``train.amp``, ``--device``, ``--init``,
# ``--resume``), which is what the GPU plan (scripts/gpu_train.py) runs; ``neurocodec export RUN
# --name mdct-gen-16k --fp16`` writes weights the codec loads.  The trainer hands a model one
# float32 tensor per batch, so a crop travels as one flat vector (:func:`pack_crop`).

SPEECH_SOURCES = ("speech-real", "speech-tts", "user")


@dataclass
class MdctGenConfig:
    """Recipe ``mdct-gen``: the SampleRNN (``net``, fejgin2020 §4.1 speech: TS = 2, 2, 16, 160,
    L = 10) trained on ``mdct`` conditioning at ``bitrate_kbps`` (``--bitrate``), on random crops
    of ``crop_blocks`` codec blocks (20 ms each)."""

    kind: str = "speech"
    bitrate_kbps: float = 16.0
    crop_blocks: int = 10
    sample_rate: int = 16000
    net: SampleRnnConfig = field(default_factory=SampleRnnConfig.speech)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not 8.0 <= float(self.bitrate_kbps) <= 32.0:
            raise ValueError(f"bitrate_kbps must be an mdct rate between 8 and 32, not {self.bitrate_kbps}")
        if self.crop_blocks < 1:
            raise ValueError("crop_blocks must be at least 1")
        if self.sample_rate != 16000:
            raise ValueError("the mdct coder runs at 16000 Hz")


@dataclass
class MdctGenPianoConfig(MdctGenConfig):
    """Recipe ``mdct-gen-piano``: fejgin2020 §4.1 piano (TS = 8, 8, 64, 320, L = 1), trained on
    the corpus's piano renderings (``music-rendered`` items with ``style=piano``)."""

    kind: str = "piano"
    net: SampleRnnConfig = field(default_factory=SampleRnnConfig.piano)


def crop_length(cfg: SampleRnnConfig, nb: int) -> int:
    """Length of a flat crop of ``nb`` blocks: ``P + 320 nb`` targets (with history),
    ``320 (nb + 3)`` decoded samples, ``(nb + 3) N`` envelope values."""
    return cfg.history + nb * cfg.hop + (nb + 3) * cfg.hop + (nb + 3) * cfg.num_bands


def pack_crop(x, xhat, env):
    """One flat vector ``[x, xhat, env]`` (numpy arrays or tensors of one crop, module layout)."""
    if isinstance(x, torch.Tensor):
        return torch.cat([x, xhat, env.reshape(-1)])
    return np.concatenate([x, xhat, env.reshape(-1)])


def unpack_crops(batch: torch.Tensor, cfg: SampleRnnConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pack_crop` for a batch ``(B, 1, L)`` or ``(B, L)``: ``x (B, P + T)``,
    ``xhat (B, 320 + T + 640)``, ``env (B, NB + 3, N)`` (the number of blocks follows from ``L``)."""
    flat = batch.reshape(batch.shape[0], -1).float()
    P, hop, N = cfg.history, cfg.hop, cfg.num_bands
    rest = flat.shape[1] - P - 3 * hop - 3 * N
    nb = rest // (2 * hop + N)
    if nb < 1 or rest != nb * (2 * hop + N):
        raise ValueError(f"a batch of length {flat.shape[1]} is not a packed SampleRNN crop")
    a, b = P + nb * hop, P + nb * hop + (nb + 3) * hop
    return flat[:, :a], flat[:, a:b], flat[:, b:].reshape(flat.shape[0], nb + 3, N)


class MdctGenTrainable(SampleRnn):
    """:class:`SampleRnn` with the shared trainer's protocol (``training_step``,
    ``validation_step``); its ``state_dict`` is the codec's, so ``--init`` reads the shipped
    ``mdct-gen-16k`` weights and ``neurocodec export`` writes weights ``mdct-gen`` loads."""

    def __init__(self, config: MdctGenConfig | None = None):
        config = config or MdctGenConfig()
        super().__init__(config.net)
        self.recipe_config = config
        self.sample_rate = config.sample_rate

    def _nll(self, batch: torch.Tensor) -> torch.Tensor:
        return self.nll(*unpack_crops(batch, self.config))  # the likelihood itself runs in float32

    def training_step(self, batch: torch.Tensor, step: int) -> dict:
        """NLL in nats per sample (fejgin2020 §3.2) of a batch of packed crops."""
        loss = self._nll(batch)
        return {"loss": loss, "loss/nll": loss.detach(), "loss/bits_per_sample": loss.detach() / math.log(2)}

    def validation_step(self, batch: torch.Tensor) -> dict:
        v = self._nll(batch)
        return {"nll": v, "bits_per_sample": v / math.log(2)}


class MdctGenCrops:
    """Map-style dataset of packed crops (:func:`pack_crop`) of ``crop_blocks`` blocks, with the
    ``mdct`` conditioning computed once for the whole split (:func:`condition_signals`).  Crop
    ``i`` of epoch ``e`` depends on ``(seed, e, i)`` alone: a file drawn in proportion to the
    crops it holds, a uniformly random first block.  An epoch has ``sum(blocks) / crop_blocks``
    crops.  ``to_device`` keeps the split on the GPU (a crop is then a few views)."""

    def __init__(self, conditioned: dict, cfg: SampleRnnConfig, crop_blocks: int, seed: int = 0):
        self.sampler = CropSampler(conditioned, cfg)
        self.cfg, self.nb, self.seed, self.epoch = cfg, int(crop_blocks), int(seed), 0
        blocks = self.sampler.blocks
        w = np.maximum(blocks - self.nb + 1, 0).astype(np.float64)
        if w.sum() == 0:
            raise RecipeError(f"no file is as long as one crop of {self.nb} blocks "
                              f"({self.nb * cfg.hop / 16000:g} s); lower model.crop_blocks")
        self._cum = np.cumsum(w / w.sum())
        self._cum[-1] = 1.0
        self.length = max(1, int(blocks.sum()) // self.nb)
        self.seconds = self.sampler.seconds

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def to_device(self, device) -> None:
        device = torch.device(device)
        if device.type == "cpu":
            return
        self.sampler.files = [tuple(a.to(device) if isinstance(a, torch.Tensor)
                                    else torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in f)
                              for f in self.sampler.files]

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(f"crop index {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        i = int(np.searchsorted(self._cum, rng.random(), side="right").clip(0, len(self._cum) - 1))
        b0 = int(rng.integers(0, self.sampler.blocks[i] - self.nb + 1))
        flat = pack_crop(*self.sampler.crop(i, b0, self.nb))
        return flat[None] if isinstance(flat, torch.Tensor) else torch.from_numpy(flat)[None]


def _split_signals(data: Path, split: str, config: MdctGenConfig, sources) -> tuple[list[np.ndarray], str]:
    """Mono 16 kHz float32 signals of ``split``: from an audio pack (its ``sources`` files) or a
    manifest (speech: the rows of ``sources``; piano: the piano renderings)."""
    from ..data.packed import is_pack, read_pack

    if is_pack(data):
        if config.kind == "piano":
            raise RecipeError("mdct-gen-piano trains on the piano renderings (manifest origin 'style=piano'), "
                              "which an audio pack does not mark: pass --data MANIFEST")
        pack = read_pack(data)
        if pack.sample_rate != 16000:
            raise RecipeError(f"{data} holds {pack.sample_rate} Hz audio; the mdct coder needs 16000 Hz")
        if split not in pack.splits:
            raise RecipeError(f"{data} has no split '{split}' (it has {', '.join(sorted(pack.splits))})")
        sp = pack.splits[split].select(sources)
        sigs = [sp.audio[sp.offsets[k]:sp.offsets[k + 1]].astype(np.float32) / 32768 for k in range(sp.num_files)]
        return [s for s in sigs if s.size], f"{data.name} ({', '.join(sorted(set(sp.sources)))})"
    from ..audio import read_audio, resample

    if config.kind == "piano":
        rows = select_items(data, "piano", split)
    else:
        rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r.get("split") == split and (not sources or r.get("source") in sources)]
    sigs = []
    for r in rows:
        wav, sr = read_audio(data.parent / r["path"])
        wav = wav[:1] if wav.ndim == 2 else wav[None]
        if sr != 16000:
            wav = resample(wav, sr, 16000)
        sigs.append((np.clip(np.round(wav[0] * 32768), -32768, 32767) / 32768).astype(np.float32))
    return sigs, f"{data.name} ({config.kind})"


def build_data(data: str | os.PathLike, split: str, recipe, sample_rate: int) -> MdctGenCrops:
    """The recipes' ``build_data``: crops of ``split`` of a manifest or an audio pack
    (``.ncpack``) with their ``mdct`` conditioning at ``model.bitrate_kbps``, computed here once.
    The time this takes is taken off ``train.max_seconds`` (the session's wall-clock budget
    covers it, so a GPU plan job still stops before its deadline)."""
    t0 = time.monotonic()
    config: MdctGenConfig = recipe.model
    sources = tuple(recipe.train.sources) or (SPEECH_SOURCES if config.kind == "speech" else ())
    sigs, what = _split_signals(Path(data), split, config, sources)
    if not sigs:
        raise RecipeError(f"no {config.kind} audio in split '{split}' of {data}")
    ds = MdctGenCrops(condition_signals(sigs, config.bitrate_kbps, config.net), config.net, config.crop_blocks,
                      recipe.train.seed)
    spent = time.monotonic() - t0
    t = recipe.train
    note = ""
    if t.max_seconds:
        t.max_seconds = max(1.0, t.max_seconds - spent)
        note = f"; train.max_seconds now {t.max_seconds:.1f}"
    print(f"mdct-gen: split '{split}' of {what}: {len(sigs)} files, {ds.seconds:.0f} s, mdct conditioning at "
          f"{config.bitrate_kbps:g} kbps computed in {spent:.1f} s{note}", file=sys.stderr, flush=True)
    return ds


def _parse_set(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        k, _, v = p.partition("=")
        out[k] = json.loads(v) if v[:1] in "[{0123456789-." or v in ("true", "false") else v
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m neurocodec.train.samplernn")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--manifest", required=True)
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--kbps", type=float, default=16.0)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--kind", choices=KINDS, required=True)
    f.add_argument("--train", required=True)
    f.add_argument("--valid", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--max-seconds", type=float, default=3600.0)
    f.add_argument("--set", action="append", default=[], help="FitConfig field=value (model.X=... for the model)")
    e = sub.add_parser("export")
    e.add_argument("run")
    e.add_argument("--out", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--note", default="")
    e.add_argument("--valid", default=None, help="prepared validation .npz: compare fp32 and fp16 NLL in the card")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        print(json.dumps(prepare(a.manifest, a.kind, a.split, a.out, a.kbps, limit=a.limit)))
    elif a.cmd == "fit":
        kw = _parse_set(a.set)
        model = {k[6:]: v for k, v in kw.items() if k.startswith("model.")}
        kw = {k: v for k, v in kw.items() if not k.startswith("model.")}
        cfg = FitConfig(kind=a.kind, max_seconds=a.max_seconds, model=model, **kw)
        print(json.dumps(fit(cfg, a.train, a.valid, a.out, log=lambda s: print(s, flush=True))))
    else:
        print(export(a.run, a.out, a.name, a.note, a.valid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
