"""Streaming JSONL manifests (NeMo fields + ``id``, ``speaker``, ``language``; unknown fields pass through).

Reading never holds more than one line in memory. A malformed line (bad JSON, not an object, or a torn
final line left by a crash) is skipped with a warning naming the file and line, and counted in
:class:`ReadStats`. Writers flush per record (crash-safe append) or write a temporary file that is
fsynced and renamed into place on close (atomic final outputs).
"""

from __future__ import annotations

import json
import logging
import os
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

from unitwave.data.atomic import fsync_dir, temp_path
from unitwave.data.paths import AUDIO_EXTENSIONS

log = logging.getLogger("unitwave")

Record = dict[str, tp.Any]

#: NeMo's fields keep their meaning; these are the ones unitwave itself reads.
AUDIO_FIELD = "audio_filepath"
MAX_WARNINGS = 20


@dataclass
class ReadStats:
    """What a read skipped, for the stage summary."""

    records: int = 0
    malformed: int = 0
    malformed_where: list[str] = field(default_factory=list)
    #: count without warning (a second pass over a manifest whose first pass already warned)
    quiet: bool = False

    def skip(self, where: str, reason: str) -> None:
        self.malformed += 1
        if self.quiet:
            return
        if self.malformed <= MAX_WARNINGS:
            log.warning("skipping malformed input %s: %s", where, reason)
            self.malformed_where.append(where)
        elif self.malformed == MAX_WARNINGS + 1:
            log.warning("more malformed inputs follow; only the count is reported from here on")


def iter_jsonl(path: Path, stats: ReadStats | None = None) -> tp.Iterator[Record]:
    """Yield each JSON object of a JSONL file, skipping (and counting) malformed lines."""
    stats = stats if stats is not None else ReadStats()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                torn = not raw.endswith(b"\n")
                why = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
                stats.skip(where, "torn final line (interrupted write)" if torn else f"not JSON ({why})")
                continue
            if not isinstance(rec, dict):
                stats.skip(where, f"expected a JSON object, got {type(rec).__name__}")
                continue
            stats.records += 1
            yield rec


def read_manifest(path: Path, stats: ReadStats | None = None) -> tp.Iterator[Record]:
    """Stream records of a manifest; ``audio_filepath`` is left exactly as written (see :func:`resolve_audio`)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; a JSONL manifest (one JSON object per line) is expected here")
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        raise ValueError(f"{path} is an audio file; a JSONL manifest (or, where accepted, a folder) is expected")
    return iter_jsonl(path, stats)


def dumps(record: Record) -> str:
    """One JSONL line (no trailing newline); non-ASCII text kept readable."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))


class ManifestWriter:
    """Write records as JSONL.

    ``atomic=True``: records go to a hidden temporary file that replaces ``path`` (after fsync) only on
    a clean ``close()``; an exception leaves the old file untouched. ``atomic=False``: append and flush
    per record (one writer per file), the mode of shard logs.

    ``base_dir`` (default: the manifest's folder) is what relative ``audio_filepath`` values are
    relative to; with ``absolute_paths`` every path is written absolute, else paths under ``base_dir``
    are written relative to it (cluster nodes may have other working directories, never other mounts).
    """

    def __init__(
        self,
        path: Path,
        *,
        atomic: bool = True,
        absolute_paths: bool | None = None,
        base_dir: Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.atomic = atomic
        self.absolute_paths = absolute_paths
        self.base_dir = (base_dir or self.path.parent).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._target = temp_path(self.path) if atomic else self.path
        self._f = open(self._target, "w" if atomic else "a", encoding="utf-8")
        self.count = 0

    def write(self, record: Record) -> None:
        if self.absolute_paths is not None and isinstance(record.get(AUDIO_FIELD), str) and record[AUDIO_FIELD]:
            # a missing, null or non-string path passes through untouched (the stage that reads it says so)
            record = dict(record)
            record[AUDIO_FIELD] = format_audio_path(record[AUDIO_FIELD], self.base_dir, self.absolute_paths)
        self._f.write(dumps(record) + "\n")
        if not self.atomic:
            self._f.flush()
        self.count += 1

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        if self.atomic:
            os.replace(self._target, self.path)
            fsync_dir(self.path.parent)

    def abort(self) -> None:
        self._f.close()
        if self.atomic:
            self._target.unlink(missing_ok=True)

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, exc_type: tp.Any, *_: tp.Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_manifest(path: Path, records: tp.Iterable[Record], **kwargs: tp.Any) -> int:
    """Atomically write ``records`` to ``path``; returns the count."""
    with ManifestWriter(path, **kwargs) as w:
        for r in records:
            w.write(r)
    return w.count


def resolve_audio(value: str, manifest_dir: Path) -> Path:
    """A manifest's ``audio_filepath`` as an absolute path (relative ones resolve against the manifest's folder)."""
    p = Path(os.path.expanduser(value))
    return Path(os.path.abspath(p if p.is_absolute() else manifest_dir / p))


def format_audio_path(value: str | Path, base_dir: Path, absolute: bool) -> str:
    """How an output manifest writes a path: absolute, or relative to ``base_dir`` when it lies under it."""
    p = Path(value)
    if not p.is_absolute():
        p = (base_dir / p).absolute()
    if absolute:
        return str(p)
    try:
        return p.relative_to(base_dir).as_posix()
    except ValueError:
        return str(p)
