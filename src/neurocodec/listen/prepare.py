"""``neurocodec listen prepare``: code every item with every condition and write a test folder.

TEST_DIR/plan.json          items, conditions, stimuli files and each rater's balanced order
TEST_DIR/secrets.json       the admin token and one token per rater (mode 0600; never served)
TEST_DIR/audio/<item>/<condition>.wav   16-bit WAV at the item's own sample rate

Codec conditions go through the normal API (``neurocodec.load(codec).compress`` into a complete
``.ncdc`` stream, then ``neurocodec.api.decompress``), so what raters hear is what the bitstream
decodes to; the measured bitrate is stored with each stimulus.  A codec's delay is removed
(cross-correlation, :func:`neurocodec.eval.align.find_delay`) so that switching keeps the
position.  The anchors of BS.1534-3 §5.1 are the reference low-passed at 3.5 kHz (low anchor)
and 7 kHz (mid anchor) with a zero-phase linear-phase FIR.  Levels are left as the codecs
produce them (no loudness alignment between conditions); only when a stimulus of an item would
clip is the whole item, reference included, scaled by one common gain.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import signal

from .. import api
from .. import audio as audio_io
from ..codecs import registry
from ..errors import UserError
from .plan import REFERENCE, SECRETS_FILE, Condition, Item, Plan, PlanError, balanced_orders

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".aiff", ".aif")
ANCHORS_HZ = (3500.0, 7000.0)
MAX_CONDITIONS = 12  # BS.1534-3 advises against more than about 12 stimuli in a trial; enforced here with reference and anchors


def parse_conditions(text: str) -> list[Condition]:
    """``"mdct:16,opus:16,cq"`` -> codec conditions (a missing rate means the codec's default)."""
    out: list[Condition] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, rate = part.partition(":")
        entry = registry.get_entry(name.strip())  # UnknownCodecError for a wrong id
        model = entry.create()
        try:
            kbps = model.validate_bitrate(float(rate) if rate.strip() else None)
        except ValueError:
            raise UserError(f"invalid bitrate in {part!r}") from None
        cid = f"{name.strip()}-{kbps:g}k"
        if any(c.id == cid for c in out):
            raise UserError(f"condition {cid} given twice")
        out.append(Condition(cid, "codec", f"{name.strip()} {kbps:g}", codec=name.strip(), kbps=float(kbps)))
    if not out:
        raise UserError("--codecs names no codec (e.g. --codecs mdct:16,opus:16)")
    return out


def anchor_conditions(cutoffs: Sequence[float] = ANCHORS_HZ) -> list[Condition]:
    return [Condition(f"anchor-{c / 1000:g}k", "anchor", f"LP {c / 1000:g} kHz", cutoff_hz=float(c)) for c in cutoffs]


def find_items(source: str | os.PathLike, split: str | None = "test", sources: Sequence[str] | None = None,
               group_by: str = "auto") -> list[tuple[Path, str, str]]:
    """``(path, key, group)`` of the items: one audio file, a folder's audio files, or a manifest's split.

    ``group_by``: ``source`` (a manifest's source), ``folder`` (first folder below DIR, else
    'all'), ``item`` (each item its own group), ``none`` ('all'); ``auto`` is ``source`` for a
    manifest and ``folder`` otherwise.
    """
    src = Path(source)
    if not src.exists():
        raise UserError(f"items not found: {src}")
    if group_by not in ("auto", "source", "folder", "item", "none"):
        raise UserError(f"unknown --group-by {group_by!r} (source, folder, item, none)")
    rows: list[tuple[Path, str, str]] = []
    if src.is_file() and src.suffix.lower() in AUDIO_EXTENSIONS:
        rows.append((src, src.name, "all"))
    elif src.is_dir():
        for p in sorted(src.rglob("*")):
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS:
                rel = p.relative_to(src)
                rows.append((p, rel.as_posix(), rel.parts[0] if len(rel.parts) > 1 else "all"))
        if group_by == "source":
            raise UserError("--group-by source needs a manifest")
    else:
        from ..data.manifest import Manifest

        man = Manifest.load(src)
        for rec in man.filter(split=split or None, source=list(sources) if sources else None).records:
            rows.append((man.abspath(rec), rec.path, rec.source))
        if group_by == "folder":
            rows = [(p, k, k.split("/")[0] if "/" in k else "all") for p, k, _ in rows]
    if not rows:
        raise UserError(f"no audio found in {src}")
    if group_by == "item":
        rows = [(p, k, Path(k).stem) for p, k, _ in rows]
    elif group_by == "none":
        rows = [(p, k, "all") for p, k, _ in rows]
    return rows


def lowpass(x: np.ndarray, sr: int, cutoff_hz: float, taps: int = 1023) -> np.ndarray:
    """Zero-phase low-pass: a linear-phase Kaiser-window FIR (beta 8, ``taps`` odd) applied and
    shifted by its group delay, so that the anchor stays sample-aligned with the reference."""
    if cutoff_hz >= sr / 2:
        return x.copy()
    h = signal.firwin(taps, cutoff_hz, window=("kaiser", 8.0), fs=sr)
    y = signal.fftconvolve(x, h[None, :], mode="full", axes=-1)
    d = (taps - 1) // 2
    return y[:, d:d + x.shape[1]].astype(np.float32)


def align_to(ref: np.ndarray, deg: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """Remove the decoder's delay (positive: late) and cut/pad to the reference's length."""
    from ..eval.align import find_delay

    delay = find_delay(ref.mean(0), deg.mean(0), sr, max_delay_s=0.1)
    if delay > 0:
        deg = deg[:, delay:]
    elif delay < 0:
        deg = np.concatenate([np.zeros((deg.shape[0], -delay), np.float32), deg], axis=1)
    return audio_io.fit_length(deg, ref.shape[1]), int(delay)


def new_secrets(rater_ids: Sequence[str]) -> dict:
    return {"admin": secrets.token_urlsafe(32), "raters": {r: secrets.token_urlsafe(32) for r in rater_ids}}


def prepare_test(items: Sequence[tuple[Path, str, str]], codecs: Sequence[Condition], out: str | os.PathLike,
                 raters: int = 24, seed: int = 0, max_seconds: float = 10.0, title: str = "Listening test",
                 anchors: Sequence[float] = ANCHORS_HZ, align: bool = True, command: str = "",
                 progress: Callable[[str], None] | None = None) -> Plan:
    """Write the test folder ``out`` (module docstring); it must not exist or be empty."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not empty (a test folder is never overwritten)")
    conditions = [Condition(REFERENCE, "reference", "Hidden reference"), *codecs, *anchor_conditions(anchors)]
    if len(conditions) > MAX_CONDITIONS:
        raise UserError(f"{len(conditions)} conditions per trial (hidden reference and anchors included); "
                        f"at most {MAX_CONDITIONS} are allowed (BS.1534-3 advises short trials)")
    if max_seconds is not None and max_seconds < 0:
        raise UserError("--max-seconds must be >= 0")
    models = {c.codec: api.load(c.codec) for c in codecs}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        plan_items: list[Item] = []
        stimuli: dict[str, dict[str, dict]] = {}
        for n, (path, key, group) in enumerate(items):
            iid = f"i{n:02d}"
            ref, sr = audio_io.read_audio(path)
            if max_seconds:
                ref = ref[:, : int(round(max_seconds * sr))]
            audio_io.validate(ref, str(path))
            sounds: dict[str, np.ndarray] = {REFERENCE: ref}
            info: dict[str, dict] = {REFERENCE: {}}
            for c in codecs:
                if progress:
                    progress(f"{key}: {c.label} kbps")
                data = models[c.codec].compress(ref, sr, bitrate=c.kbps)
                dec, _ = api.decompress(data)
                delay = 0
                if align:
                    dec, delay = align_to(ref, dec, sr)
                sounds[c.id] = audio_io.fit_length(np.asarray(dec, np.float32), ref.shape[1])
                info[c.id] = {"measured_kbps": round(api.info(data).measured_kbps, 3), "bytes": len(data),
                              "delay_samples": delay}
            for c in conditions:
                if c.kind == "anchor":
                    sounds[c.id] = lowpass(ref, sr, c.cutoff_hz)
                    info[c.id] = {}
            peak = max(float(np.max(np.abs(s))) for s in sounds.values())
            gain = 1.0 if peak <= 0.999 else 0.999 / peak
            stimuli[iid] = {}
            for cid, s in sounds.items():
                rel = f"audio/{iid}/{cid}.wav"
                audio_io.write_audio(tmp / rel, s * gain, sr)
                stimuli[iid][cid] = {"file": rel, **info[cid]}
            plan_items.append(Item(iid, key, group, int(sr), int(ref.shape[0]), int(ref.shape[1]), round(gain, 6)))
        rater_plans = balanced_orders(raters, [i.id for i in plan_items], [c.id for c in conditions], seed)
        plan = Plan(title=title, seed=seed, items=plan_items, conditions=conditions, raters=rater_plans,
                    stimuli=stimuli, meta={"command": command, "max_seconds": max_seconds, "aligned": align})
        plan.save(tmp)
        sec = tmp / SECRETS_FILE
        fd = os.open(sec, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(new_secrets([r.id for r in rater_plans]), f, indent=1)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return plan


def load_secrets(folder: str | os.PathLike) -> dict:
    path = Path(folder) / SECRETS_FILE
    if not path.exists():
        raise PlanError(f"{folder} has no {SECRETS_FILE}")
    return json.loads(path.read_text())

