"""Batches for model stages: capped by audio seconds, sorted by length, halved on out-of-memory.

Sorting by length keeps padding small; the cap is on *padded* seconds (longest item x batch size), the
quantity that actually fills device memory. On a CUDA (or MPS) out-of-memory error the batch is split
in halves and retried, down to one item; an item that still does not fit is failed alone, and the
smaller cap is kept for the following batches.
"""

from __future__ import annotations

import logging
import typing as tp

log = logging.getLogger("unitwave")

T = tp.TypeVar("T")
R = tp.TypeVar("R")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for device out-of-memory errors (CUDA, MPS, cuDNN/cuBLAS allocation failures)."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:
        pass
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "cudnn_status_alloc_failed" in msg)


def _free_device_cache() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def plan_batches(
    items: tp.Sequence[T], cost: tp.Callable[[T], float], max_cost: float, max_items: int
) -> list[list[T]]:
    """Group ``items`` (sorted by decreasing cost) so that ``max(cost) * len <= max_cost``.

    An item costlier than ``max_cost`` gets a batch of its own.
    """
    ordered = sorted(items, key=cost, reverse=True)
    batches: list[list[T]] = []
    current: list[T] = []
    longest = 0.0
    for item in ordered:
        c = cost(item)
        new_longest = max(longest, c)
        if current and (new_longest * (len(current) + 1) > max_cost or len(current) >= max_items):
            batches.append(current)
            current, new_longest = [], c
        current.append(item)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


class Backoff:
    """Runs a batch function with OOM halving; remembers the largest size that fit."""

    def __init__(self, max_items: int | None = None) -> None:
        self.max_items = max_items

    def run(self, fn: tp.Callable[[list[T]], list[R]], batch: list[T]) -> list[R | BaseException]:
        """``fn(batch)`` -> per-item results; per-item exceptions where items fail on their own.

        A non-OOM exception of a multi-item batch is retried item by item so one bad record cannot
        fail its neighbours.
        """
        if self.max_items is not None and len(batch) > self.max_items:
            out: list[R | BaseException] = []
            for start in range(0, len(batch), self.max_items):
                out.extend(self.run(fn, batch[start : start + self.max_items]))
            return out
        try:
            results = fn(batch)
            if len(results) != len(batch):
                raise RuntimeError(f"stage returned {len(results)} results for {len(batch)} inputs")
            return list(results)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - recorded per item below
            if is_out_of_memory(exc):
                _free_device_cache()
                if len(batch) == 1:
                    return [exc]
                half = len(batch) // 2
                self.max_items = half if self.max_items is None else min(self.max_items, half)
                log.warning("out of memory on a batch of %d; retrying with batches of %d", len(batch), half)
                return self.run(fn, batch[:half]) + self.run(fn, batch[half:])
            if len(batch) == 1:
                return [exc]
            out = []
            for item in batch:
                out.extend(self.run(fn, [item]))
            return out


def initial_batch_seconds(seconds_per_gib: float, default: float, device: str = "auto") -> float:
    """Audio seconds per batch from free device memory (CUDA); ``default`` elsewhere.

    ``seconds_per_gib`` is the stage's measured footprint: how many padded audio seconds one GiB holds.
    """
    try:
        import torch
    except ImportError:
        return default
    if device in ("auto", "cuda") and torch.cuda.is_available():
        free, _total = torch.cuda.mem_get_info()
        usable_gib = 0.8 * free / 2**30
        return max(1.0, usable_gib * seconds_per_gib)
    return default
