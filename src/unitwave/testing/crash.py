"""Kill a running command at a chosen point of its progress (for crash-safety tests and stress runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import typing as tp
from pathlib import Path


def committed_results(run_dir: Path) -> int:
    """Inputs committed so far in a run folder (lines across its shard logs)."""
    return sum(p.read_bytes().count(b"\n") for p in Path(run_dir).glob("shards/*.jsonl"))


def kill_when(args: tp.Sequence[str], run_dir: Path, committed: int, timeout: float = 300.0) -> bool:
    """Run ``python -m unitwave ARGS`` and SIGKILL its whole process group once ``committed`` results exist.

    Returns True if it was killed, False if it finished first. Killing the group (driver and workers at
    once) is what a node failure or the OOM killer does.
    """
    proc = subprocess.Popen([sys.executable, "-m", "unitwave", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and committed_results(run_dir) < committed and time.time() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            return True
        return False
    finally:
        proc.wait()
