"""Shared test helpers: run the real CLI in a subprocess, generated audio in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str | Path, check: bool = False, timeout: float = 300, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m unitwave ARGS`` as a user would run it; returns the completed process (text)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "unitwave", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"unitwave {args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


#: arrays of more than 4 tasks are split, so the tests exercise splitting with a handful of shards
MAX_ARRAY_SIZE = 4


@pytest.fixture(scope="session")
def slurm():
    """A real SLURM (munged, slurmctld, slurmd) on localhost, one for the whole session; SLURM_CONF points at it."""
    import shutil
    import tempfile

    from unitwave.testing.slurm import LocalSlurm, missing_binaries

    missing = missing_binaries()
    if missing:
        pytest.skip(f"SLURM is not installed here (missing {', '.join(missing)}): "
                    "apt-get install slurm-wlm munge, or run `make test`, which installs them")
    root = Path(tempfile.mkdtemp(prefix="uw-slurm-"))  # short: a unix socket path must fit in 108 bytes
    cluster = LocalSlurm(root, max_array_size=MAX_ARRAY_SIZE, cpus=2)
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
