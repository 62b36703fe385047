"""Data loading whose order depends only on (seed, epoch): what makes ``--resume`` reproduce a run exactly.

:class:`EpochBatchSampler` draws each epoch's batches from a generator seeded with ``(seed, epoch)``; it
never touches the global RNG, and it re-seeds the DataLoader's own generator (which seeds the worker
processes) the same way. A run resumed at an epoch boundary therefore sees exactly the batches, and
its workers exactly the seeds, of an uninterrupted run. With ``lengths`` the batches hold items of
similar length (less padding, packed sequences stay dense). Under DDP each rank takes its own
share of every epoch's batches.
"""

from __future__ import annotations

import typing as tp

import numpy as np

if tp.TYPE_CHECKING:
    import torch
    from torch.utils.data import DataLoader, Dataset

#: items looked at together when grouping by length: batches x this many
BUCKET_BATCHES = 50


def _dist_rank_world() -> tuple[int, int]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # pragma: no cover - torch always has it
        pass
    return 0, 1


class EpochBatchSampler:
    """Batches of dataset indices, shuffled per epoch from ``(seed, epoch)``.

    Args:
        num_items: dataset size.
        batch_size: items per batch.
        shuffle: draw a new order every epoch (else the dataset order, every epoch).
        seed: with the epoch, the only input of the order.
        drop_last: drop a final batch smaller than ``batch_size``.
        lengths: item lengths (e.g. frames); batches then group items of similar length: the shuffled
            order is cut into windows of ``BUCKET_BATCHES`` batches, each sorted by length, cut into
            batches, and the batches shuffled again.
        loader_generator: the DataLoader's generator, re-seeded per epoch at ``iter()`` (it draws the
            workers' base seed).
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        lengths: tp.Sequence[int] | np.ndarray | None = None,
        loader_generator: torch.Generator | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if lengths is not None and len(lengths) != num_items:
            raise ValueError(f"lengths has {len(lengths)} entries for {num_items} items")
        self.num_items = int(num_items)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        self.loader_generator = loader_generator
        self.epoch = 0
        # Lightning calls set_epoch on ``batch_sampler.sampler``: point it here
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` (default: the current one), before the split across DDP ranks."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch, 0])
        order = rng.permutation(self.num_items) if self.shuffle else np.arange(self.num_items)
        if self.lengths is not None:
            window = self.batch_size * BUCKET_BATCHES
            chunks = [order[i : i + window] for i in range(0, len(order), window)]
            order = np.concatenate([c[np.argsort(self.lengths[c], kind="stable")] for c in chunks]) if chunks else order
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.lengths is not None and self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _rank_share(self, batches: list[list[int]]) -> list[list[int]]:
        rank, world = _dist_rank_world()
        if world == 1:
            return batches
        if not batches:
            return []
        # every rank needs the same number of batches: repeat from the start when too few
        per_rank = max(1, len(batches) // world) if self.drop_last else -(-len(batches) // world)
        padded = (batches * (1 + (per_rank * world) // len(batches)))[: per_rank * world]
        return padded[rank::world]

    def __iter__(self) -> tp.Iterator[list[int]]:
        # runs at iter(loader) time, before the DataLoader draws its workers' base seed
        if self.loader_generator is not None:
            self.loader_generator.manual_seed(int(np.random.default_rng([self.seed, self.epoch, 1]).integers(2**62)))
        return iter(self._rank_share(self.batches()))

    def __len__(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        n = full + (1 if rest and not self.drop_last else 0)
        _, world = _dist_rank_world()
        if world == 1:
            return n
        return max(1, n // world) if self.drop_last else -(-n // world)


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from torch's per-worker seed."""
    import random

    import torch

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    collate_fn: tp.Callable[[list[tp.Any]], tp.Any] | None = None,
    num_workers: int = 0,
    lengths: tp.Sequence[int] | np.ndarray | None = None,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset`` with an :class:`EpochBatchSampler` (reproducible, resumable order).

    Pass ``lengths`` (one per item) to batch items of similar length together.
    """
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator()
    generator.manual_seed(seed)
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle, seed, drop_last, lengths, generator)  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=generator,
        worker_init_fn=seed_worker if num_workers else None,
        persistent_workers=False,
        pin_memory=pin_memory,
    )
