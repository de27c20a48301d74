"""Deterministic, resumable, rank-sharded batches of training segments.

Every epoch is a permutation of the dataset drawn from ``seed + epoch`` (the same on every DDP
process), padded to a multiple of the world size and split ``rank::world_size`` like
``torch.utils.data.DistributedSampler``; each process then takes fixed-size batches (the
incomplete last batch is dropped).  The stream's state is ``(epoch, position)`` - batches consumed
in the current epoch - so a resumed run continues with exactly the next batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from .errors import RecipeError


@dataclass
class StreamState:
    """Position of a :class:`BatchStream`: the epoch and the batches already taken from it."""

    epoch: int = 0
    position: int = 0


class ShardedBatchSampler:
    """Batches of dataset indices for one process of a ``world_size``-process run."""

    def __init__(self, num_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        self.num_items, self.batch_size, self.seed = int(num_items), int(batch_size), int(seed)
        self.rank, self.world_size, self.shuffle = int(rank), int(world_size), shuffle
        per_rank = -(-self.num_items // self.world_size) if self.num_items else 0
        self.batches_per_epoch = per_rank // self.batch_size

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """All batches this process takes in ``epoch``."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        total = -(-self.num_items // self.world_size) * self.world_size
        order = (order * (total // max(len(order), 1) + 1))[:total]  # pad by wrapping around
        mine = order[self.rank::self.world_size]
        n = self.batches_per_epoch * self.batch_size
        return [mine[i:i + self.batch_size] for i in range(0, n, self.batch_size)]


def _audio_of(item: Any) -> Any:
    if isinstance(item, dict):
        if "audio" not in item:
            raise TypeError("dataset items that are mappings need an 'audio' entry")
        return item["audio"]
    if hasattr(item, "audio") and not isinstance(item, (np.ndarray, torch.Tensor)):
        return item.audio
    if isinstance(item, (tuple, list)):
        return item[0]
    return item


def collate_audio(items: Sequence[Any]) -> torch.Tensor:
    """Stack dataset items (arrays/tensors ``(T,)`` or ``(1, T)``, or records with ``audio``) into
    a float32 ``(B, 1, T)`` batch."""
    tensors = []
    for item in items:
        a = _audio_of(item)
        t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
        t = t.to(torch.float32)
        if t.ndim == 1:
            t = t[None]
        if t.ndim != 2 or t.shape[0] != 1:
            raise ValueError(f"training segments must be mono (T,) or (1, T), got shape {tuple(t.shape)}")
        tensors.append(t)
    lengths = {t.shape[-1] for t in tensors}
    if len(lengths) != 1:
        raise ValueError(f"segments in a batch have different lengths {sorted(lengths)}; the dataset must crop")
    return torch.stack(tensors)


class BatchStream:
    """Endless iterator of collated batches with a resumable :class:`StreamState`.

    Datasets are map-style (``len`` and ``[i]``).  If the dataset has ``set_epoch(epoch)`` it is
    called at the start of each epoch.  With ``num_workers > 0`` resumption is exact only if items
    depend on their index and epoch alone (not on worker random state)."""

    def __init__(self, dataset: Any, sampler: ShardedBatchSampler, num_workers: int = 0,
                 collate: Callable[[Sequence[Any]], torch.Tensor] = collate_audio, state: StreamState | None = None):
        self.dataset, self.sampler, self.num_workers, self.collate = dataset, sampler, num_workers, collate
        self.state = state or StreamState()
        self._it: Iterator[torch.Tensor] | None = None
        if sampler.batches_per_epoch < 1:
            raise RecipeError(f"the training data has {sampler.num_items} segments, fewer than one batch of "
                              f"{sampler.batch_size} per process ({sampler.world_size} process(es))")

    def _open(self) -> Iterator[torch.Tensor]:
        batches = self.sampler.epoch_batches(self.state.epoch)[self.state.position:]
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.state.epoch)
        if self.num_workers == 0:
            return (self.collate([self.dataset[i] for i in b]) for b in batches)
        g = torch.Generator().manual_seed(
            hash((self.sampler.seed, self.state.epoch, self.state.position, self.sampler.rank)) & 0x7FFFFFFF)
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=batches, num_workers=self.num_workers,
                                             collate_fn=self.collate, generator=g)
        return iter(loader)

    def __iter__(self) -> "BatchStream":
        return self

    def __next__(self) -> torch.Tensor:
        while True:
            if self._it is None:
                self._it = self._open()
            try:
                batch = next(self._it)
            except StopIteration:
                self._it = None
                self.state = StreamState(self.state.epoch + 1, 0)
                continue
            self.state = StreamState(self.state.epoch, self.state.position + 1)
            return batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "position": self.state.position}

    def load_state_dict(self, d: dict[str, int]) -> None:
        self.state = StreamState(int(d["epoch"]), int(d["position"]))
        self._it = None


def iterate_once(dataset: Any, batch_size: int, max_batches: int, collate=collate_audio) -> Iterator[torch.Tensor]:
    """Up to ``max_batches`` batches of ``dataset`` in index order (the last may be short): validation."""
    n = len(dataset)
    for b in range(max_batches):
        lo, hi = b * batch_size, min((b + 1) * batch_size, n)
        if lo >= hi:
            return
        yield collate([dataset[i] for i in range(lo, hi)])
