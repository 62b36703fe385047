"""Small per-record stages that exercise the engine (worker death, OOM back-off, batching).

They live in the package, not in tests/, because spawned workers, SLURM tasks and Ray tasks must be
able to import them.
"""

from __future__ import annotations

import os
import time

from unitwave.data.manifest import Record
from unitwave.engine.stage import Stage


class EchoStage(Stage):
    """Copies each record, adding ``processed_by`` (the worker pid) and the batch size it ran in."""

    name = "echo"

    def __init__(self, sleep_seconds: float = 0.0, batch_seconds: float | None = None,
                 fail_ids: tuple[str, ...] = (), die_on_ids: tuple[str, ...] = (),
                 exit_on_ids: tuple[str, ...] = ()) -> None:
        self.sleep_seconds = sleep_seconds
        self.batch_seconds = batch_seconds
        self.fail_ids = set(fail_ids)
        self.die_on_ids = set(die_on_ids)
        self.exit_on_ids = set(exit_on_ids)
        self.setup_calls = 0

    def setup(self) -> None:
        self.setup_calls += 1

    def process(self, batch: list[Record]) -> list[list[Record]]:
        for r in batch:
            if r["id"] in self.die_on_ids:
                os._exit(13)  # a worker that dies hard (segfault, host OOM killer)
            if r["id"] in self.exit_on_ids:
                raise SystemExit(3)  # library code that calls sys.exit()
            if r["id"] in self.fail_ids:
                raise ValueError(f"record {r['id']} is bad on purpose")
        time.sleep(self.sleep_seconds * len(batch))
        return [[{**r, "batch_size": len(batch), "setup_calls": self.setup_calls}] for r in batch]


class MemoryBoundStage(EchoStage):
    """Raises a real ``torch.cuda.OutOfMemoryError`` when a batch holds more than ``capacity`` seconds."""

    name = "memory-bound"

    def __init__(self, capacity_seconds: float, batch_seconds: float) -> None:
        super().__init__(batch_seconds=batch_seconds)
        self.capacity_seconds = capacity_seconds

    def process(self, batch: list[Record]) -> list[list[Record]]:
        import torch

        padded = max(self.cost(r) for r in batch) * len(batch)
        if padded > self.capacity_seconds:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory: batch of {padded:.1f} s")
        return super().process(batch)


class FanOutStage(Stage):
    """Writes ``parts`` output records per input (like segmentation)."""

    name = "fan-out"

    def __init__(self, parts: int = 3, id_format: str = "{id}_{part}") -> None:
        self.parts = parts
        self.id_format = id_format

    def process(self, batch: list[Record]) -> list[list[Record]]:
        return [
            [{**r, "id": self.id_format.format(id=r["id"], part=j), "part": j} for j in range(self.parts)]
            for r in batch
        ]
