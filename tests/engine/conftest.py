"""Fixtures of the engine's backend tests: finding a shard's writer process (the real SLURM is in tests/conftest.py)."""

from __future__ import annotations

import os
import time
import typing as tp
from pathlib import Path

import pytest


def lock_holder(lock_file: Path) -> int | None:
    """The pid holding a flock on ``lock_file`` (from /proc/locks), or None."""
    try:
        st = os.stat(lock_file)
    except FileNotFoundError:
        return None
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == key:
                return int(parts[4])
    return None


@pytest.fixture
def shard_writer() -> tp.Callable[..., int]:
    """``shard_writer(run_dir, k, min_lines)``: wait until shard k has ``min_lines`` committed results and
    is still being written, then return the pid of the process writing it (the one holding its lock)."""

    def find(run_dir: Path, k: int, min_lines: int = 1, timeout: float = 60.0) -> int:
        log, lock = Path(run_dir) / "shards" / f"{k}.jsonl", Path(run_dir) / "shards" / f"{k}.lock"
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = log.read_bytes().count(b"\n") if log.exists() else 0
            pid = lock_holder(lock) if lines >= min_lines else None
            if pid is not None:
                return pid
            assert not (Path(run_dir) / "shards" / f"{k}.done").exists(), f"shard {k} finished before it was caught"
            time.sleep(0.005)
        raise AssertionError(f"shard {k} of {run_dir} never had {min_lines} results while running")

    return find
