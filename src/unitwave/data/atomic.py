"""Files that appear whole or not at all: written beside the target, fsynced, renamed over it.

Every output unitwave writes goes through here (manifests, configs, checkpoints, reports, WAVs), so a
crash leaves either the old file or the new one, never half of one. Temporary names:

- ``shared`` files (merged manifests, run.json, reports: several processes, even on several cluster
  nodes, may write them at once) get ``.<name>.<host>.<pid>.tmp``, so writers never collide;
- single-writer files (a record's WAV under the engine's shard lock, a shard's ``.done`` marker) get
  ``.<name>.tmp``, so a rerun after a crash overwrites and renames the leftover instead of leaving it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import typing as tp
from pathlib import Path

TMP_SUFFIX = ".tmp"


def temp_path(path: Path, shared: bool = True) -> Path:
    """The temporary file to write before renaming onto ``path`` (see the module docstring)."""
    path = Path(path)
    if not shared:
        return path.with_name(f".{path.name}{TMP_SUFFIX}")
    host = socket.gethostname().split(".")[0] or "host"
    return path.with_name(f".{path.name}.{host}.{os.getpid()}{TMP_SUFFIX}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse directory fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, shared: bool = True) -> tp.Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on a clean exit it is fsynced and renamed
    onto ``path``, on an error removed (the old ``path``, if any, is untouched)."""
    path = Path(path)
    tmp = temp_path(path, shared)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes, shared: bool = True) -> Path:
    with atomic_path(path, shared) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: Path, text: str, shared: bool = True) -> Path:
    with atomic_path(path, shared) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def sweep_temp_files(folder: Path) -> int:
    """Remove temporary files in ``folder`` (not below) left by dead processes of this host; returns the
    count. Files of live processes, and of other hosts (a SLURM task merging on another node), are kept."""
    host = socket.gethostname().split(".")[0] or "host"
    removed = 0
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        parts = tmp.name[: -len(TMP_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or parts[1] != host or not parts[2].isdigit():
            continue
        if _alive(int(parts[2])):
            continue
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
