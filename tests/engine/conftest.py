"""Fixtures of the engine's backend tests: a real one-node SLURM, and finding a shard's writer process."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import pytest


def _load_sibling(name: str) -> tp.Any:
    """Import ``tests/engine/<name>.py`` by path (tests are not a package; benchmarks load it the same way)."""
    mod_name = f"unitwave_tests_{name}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


slurm_cluster = _load_sibling("slurm_cluster")

#: arrays of more than 4 tasks are split, so the tests exercise splitting with a handful of shards
MAX_ARRAY_SIZE = 4


@pytest.fixture(scope="session")
def slurm() -> tp.Iterator[tp.Any]:
    """A real SLURM (munged, slurmctld, slurmd) on localhost for the whole session; SLURM_CONF points at it."""
    missing = slurm_cluster.missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed here (missing {', '.join(missing)}): "
                    "apt-get install slurm-wlm munge, or run `make test`, which installs them")
    root = Path(tempfile.mkdtemp(prefix="uw-slurm-"))  # short: a unix socket path must fit in 108 bytes
    cluster = slurm_cluster.LocalSlurm(root, max_array_size=MAX_ARRAY_SIZE, cpus=2)
    cluster.start()
    saved = os.environ.get("SLURM_CONF")
    os.environ.update(cluster.env)
    try:
        yield cluster
    finally:
        cluster.stop()
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        shutil.rmtree(root, ignore_errors=True)


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
