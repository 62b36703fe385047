"""Engine options shared by every per-record command (``--workers``, ``--shards``, ``--shard k/N``...)."""

from __future__ import annotations

import dataclasses as dc
import os
import typing as tp


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


@dc.dataclass(frozen=True)
class EngineConfig:
    """How a per-record stage runs: shards, workers, backend, failure budget."""

    workers: int = 0
    """Worker processes for the local backend (0: one per CPU core)."""
    shards: tp.Optional[int] = None
    """Shard count on the first run (default: from workers and input size); pinned in run.json afterwards."""
    shard: tp.Optional[str] = None
    """Run exactly one shard, 'k/N' (what a SLURM array task or a Ray task runs)."""
    backend: tp.Literal["local"] = "local"
    """Where shards run."""
    max_failures: int = 0
    """Failed records allowed before the exit status says failure."""
    torch_threads: int = 1
    """Compute threads per worker process."""
    absolute_paths: bool = False
    """Write absolute audio paths in the output manifest (default: relative to its folder when inside it)."""
    progress: bool = True
    """Show a progress bar (only when stderr is a terminal)."""

    def resolved_workers(self) -> int:
        return self.workers if self.workers > 0 else default_workers()

    def parsed_shard(self) -> tuple[int, int] | None:
        """``--shard k/N`` as ``(k, N)``; ValueError naming the flag on bad input."""
        if self.shard is None:
            return None
        try:
            k_s, n_s = self.shard.split("/")
            k, n = int(k_s), int(n_s)
        except ValueError:
            raise ValueError(f"--shard must look like k/N (e.g. 3/16), got {self.shard!r}") from None
        if n < 1 or not 0 <= k < n:
            raise ValueError(f"--shard {self.shard}: need 0 <= k < N and N >= 1")
        return k, n


def default_shard_count(num_records: int, workers: int) -> int:
    """Enough shards to balance load (about 500 records each, 1-8 per worker), never more than records."""
    per_worker = min(8, max(1, -(-num_records // (500 * workers))))
    return max(1, min(num_records, workers * per_worker))
