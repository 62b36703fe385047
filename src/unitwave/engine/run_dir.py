"""The run folder: pinned shard count, the normalised input, shard logs, markers, merge.

```
<out>/config.yaml      resolved config            <out>/run.json     shard count, input hash, version
<out>/input.jsonl      normalised input records   <out>/shards/<k>.jsonl  one line per processed input
<out>/shards/<k>.done  marker (atomic)            <out>/manifest.jsonl, errors.jsonl  merged, atomic
```
A shard log line is ``{"i": input index, "id": input id, "fp": fingerprint, "out": [records]}`` or
``{"i": ..., "id": ..., "fp": ..., "error": {...}}``: one line per *input*, so a stage that writes several
records per input (segmentation) commits them together, a torn line loses nothing that was committed, and
errors live in the same single-writer file. The last line for an id wins (errors are retried on rerun).
The fingerprint hashes the input record and the stage's ``record_key``: a result counts only for the
input it was made from, so an input record changed under the same id is done again, never kept stale.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import typing as tp
from dataclasses import dataclass
from pathlib import Path

from unitwave.data.atomic import atomic_write_text, fsync_dir, sweep_temp_files, temp_path
from unitwave.data.manifest import ManifestWriter, ReadStats, Record, dumps, iter_jsonl
from unitwave.data.records import stable_hash

log = logging.getLogger("unitwave")


class RunDirError(ValueError):
    """A run folder that cannot be used as asked (different shard count, missing input...)."""


def fingerprint(record: Record, key: str = "") -> str:
    """Hex digest of an input record (as written in ``input.jsonl``: the first 16 digits) and of a stage's
    key for it (the last 16): ``unitwave status``, which knows no stage, compares the first half."""
    return f"{stable_hash(dumps(record)):016x}{stable_hash(key):016x}"


class LogEntry(tp.NamedTuple):
    """The latest shard-log line of one input id."""

    index: int  # input index (the earliest one seen for the id: its place in the order)
    offset: int  # byte offset of the line in the shard log
    ok: bool  # a result (True) or an error (False)
    fp: str | None  # fingerprint of the input it was made from (None: logs written before fingerprints)

    def matches(self, fp: str) -> bool:
        return self.fp is None or self.fp == fp

    def same_input(self, fp: str) -> bool:
        """Made from the same input record (whatever the stage's key)."""
        return self.fp is None or self.fp[:16] == fp[:16]


@dataclass
class ShardState:
    shard: int
    state: str  # done | partial | missing; SLURM runs: done | pending | running | failed | missing
    records: int  # inputs with a successful result
    errors: int  # inputs whose latest result is an error
    output_records: int
    audio_seconds: float
    slurm_state: str = ""  # SLURM runs: the state of the shard's latest array task
    job: str = ""  # SLURM runs: "<job id>_<array task id>"
    log: str = ""  # SLURM runs: that task's log file


class RunDir:
    """Paths and bookkeeping of one stage's output folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.shards_dir = self.root / "shards"
        self.run_json = self.root / "run.json"
        self.input = self.root / "input.jsonl"
        self.manifest = self.root / "manifest.jsonl"
        self.errors = self.root / "errors.jsonl"
        self.logs_dir = self.root / "logs"

    # ------------------------------------------------------------------ run.json
    def info(self) -> dict[str, tp.Any]:
        if not self.run_json.is_file():
            inside = sorted(p.parent.name for p in self.root.glob("*/run.json")) if self.root.is_dir() else []
            hint = f"; the run folders inside it: {', '.join(inside[:8])}" if inside else ""
            raise RunDirError(f"{self.root} is not a unitwave run folder (no run.json){hint}")
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def exists(self) -> bool:
        return self.run_json.is_file()

    @property
    def num_shards(self) -> int:
        return int(self.info()["num_shards"])

    def shard_log(self, k: int) -> Path:
        return self.shards_dir / f"{k}.jsonl"

    def done_marker(self, k: int) -> Path:
        return self.shards_dir / f"{k}.done"

    def is_done(self, k: int) -> bool:
        return self.done_marker(k).is_file()

    def prepare(
        self,
        stage: str,
        inputs: tp.Iterable[Record],
        num_shards: int | None,
        default_shards: tp.Callable[[int], int],
        extra: dict[str, tp.Any] | None = None,
    ) -> dict[str, tp.Any]:
        """Write ``input.jsonl`` and pin the shard count in ``run.json`` (first run) or check them (rerun).

        ``inputs`` are normalised records (``id`` + absolute ``audio_filepath``); ``default_shards(n)``
        picks N from the record count when neither ``num_shards`` nor a pinned value exists. A changed
        input invalidates the done markers (records already done stay done: resume is by id).
        """
        from unitwave import __version__

        self.shards_dir.mkdir(parents=True, exist_ok=True)
        sweep_temp_files(self.root)  # left by a killed driver
        old = self.info() if self.exists() else None
        if old is not None and num_shards is not None and int(num_shards) != int(old["num_shards"]):
            raise RunDirError(
                f"{self.root} was started with {old['num_shards']} shards (run.json); rerun with "
                f"--shards {old['num_shards']} or without --shards to resume, or use a new output folder"
            )
        digest = hashlib.sha256()
        count = repeated = 0
        ids: set[int] = set()  # 64-bit hashes of the ids seen: about 73 MB per million records
        tmp = temp_path(self.input)
        with open(tmp, "w", encoding="utf-8") as f:
            for position, rec in enumerate(inputs, 1):
                h = stable_hash(str(rec["id"]))
                if h in ids:
                    repeated += 1
                    log.warning(
                        "input record %d: id %r was already used by an earlier record; this one is left out "
                        "(ids must be unique: give it its own id, or drop the line)", position, rec["id"]
                    )
                    continue
                ids.add(h)
                line = dumps(rec) + "\n"
                f.write(line)
                digest.update(line.encode("utf-8"))
                count += 1
            f.flush()
            os.fsync(f.fileno())
        digest.update(f"repeated ids: {repeated}".encode())  # a changed count rewrites run.json's count
        input_hash = digest.hexdigest()
        if old is not None and old.get("input_hash") == input_hash:
            tmp.unlink()
            return old
        os.replace(tmp, self.input)
        fsync_dir(self.root)
        if old is not None:
            # New or changed input: shards must be revisited; their logs keep finished records.
            for k in range(int(old["num_shards"])):
                self.done_marker(k).unlink(missing_ok=True)
        n = int(old["num_shards"]) if old else int(num_shards or default_shards(count))
        info = {
            "stage": stage,
            "num_shards": n,
            "input_records": count,
            "input_duplicate_ids": repeated,
            "input_hash": input_hash,
            "code_version": __version__,
            "created": (old or {}).get("created") or _dt.datetime.now().isoformat(timespec="seconds"),
            "updated": _dt.datetime.now().isoformat(timespec="seconds"),
            **(extra or {}),
        }
        atomic_write_text(self.run_json, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return info

    def update_info(self, **fields: tp.Any) -> None:
        info = self.info() | fields
        atomic_write_text(self.run_json, json.dumps(info, indent=2, ensure_ascii=False) + "\n")

    # ------------------------------------------------------------------ shard logs
    def read_log(self, k: int) -> dict[str, LogEntry]:
        """Latest entry per input id of shard ``k``."""
        latest: dict[str, LogEntry] = {}
        path = self.shard_log(k)
        if not path.is_file():
            return latest
        with open(path, "rb") as f:
            offset = 0
            for raw in f:
                start, offset = offset, offset + len(raw)
                if not raw.endswith(b"\n"):
                    break  # torn final line: the record was not committed
                try:
                    entry = json.loads(raw)
                    i = int(entry["i"])
                    prev = latest.get(entry["id"])
                    # the latest result wins; the earliest input index keeps its place in the order
                    fp = entry.get("fp")
                    latest[entry["id"]] = LogEntry(
                        min(i, prev.index) if prev else i, start, "out" in entry, fp if isinstance(fp, str) else None
                    )
                except (ValueError, KeyError, TypeError):
                    continue
        return latest

    def mark_done(self, k: int, summary: dict[str, tp.Any]) -> None:
        atomic_write_text(self.done_marker(k), json.dumps(summary) + "\n", shared=False)

    def input_fingerprints(self) -> dict[str, str]:
        """``{id: fingerprint without a stage key}`` of the current input (the first record of an id)."""
        out: dict[str, str] = {}
        for rec in iter_jsonl(self.input, ReadStats(quiet=True)):
            out.setdefault(str(rec.get("id")), fingerprint(rec))
        return out

    def shard_states(self) -> list[ShardState]:
        """Per shard: state, and records / errors / outputs / audio of results made from the current input
        (records changed since their result count as not done)."""
        states = []
        current = self.input_fingerprints()
        for k in range(self.num_shards):
            latest = {rid: e for rid, e in self.read_log(k).items() if rid in current and e.same_input(current[rid])}
            ok = [v for v in latest.values() if v.ok]
            outputs, seconds = 0, 0.0
            if ok:
                with open(self.shard_log(k), "rb") as f:
                    for e in ok:
                        f.seek(e.offset)
                        for r in json.loads(f.readline())["out"]:
                            outputs += 1
                            d = r.get("duration")
                            seconds += float(d) if isinstance(d, (int, float)) else 0.0
            state = "done" if self.is_done(k) else ("partial" if self.shard_log(k).exists() else "missing")
            states.append(ShardState(k, state, len(ok), len(latest) - len(ok), outputs, seconds))
        return states

    # ------------------------------------------------------------------ merge
    def _input_order(self, key: tp.Callable[[Record], str]) -> dict[str, tuple[int, str]]:
        """``{id: (input index, fingerprint with the stage's key)}`` of the current ``input.jsonl``."""
        order: dict[str, tuple[int, str]] = {}
        for i, rec in enumerate(iter_jsonl(self.input, ReadStats(quiet=True))):
            order.setdefault(str(rec.get("id")), (i, fingerprint(rec, key(rec))))
        return order

    def current_entries(
        self,
        key: tp.Callable[[Record], str] = lambda r: "",
        check_outputs: bool = False,
        output_fields: tp.Sequence[str] = ("audio_filepath",),
        order: dict[str, tuple[int, str]] | None = None,
    ) -> list[tuple[int, int, LogEntry]]:
        """``(input index, shard, entry)`` in input order of the results and errors that belong to the
        current ``input.jsonl``: made from the record now under that id (its fingerprint, with the
        stage's ``record_key``, matches). A record removed from the input since an earlier run (a bad file
        deleted, a corpus trimmed), or changed under the same id and not yet redone, has none; with
        ``check_outputs`` neither has a result whose output file inside the run folder is gone.
        ``order``: :meth:`_input_order`, when the caller has it already."""
        order = self._input_order(key) if order is None else order
        entries: list[tuple[int, int, LogEntry]] = []
        for k in range(self.num_shards):
            latest = self.read_log(k)
            with open(self.shard_log(k), "rb") if latest and check_outputs else contextlib.nullcontext() as f:
                for rid, e in latest.items():
                    if rid not in order or not e.matches(order[rid][1]):
                        continue
                    if f is not None and e.ok:
                        f.seek(e.offset)
                        if not outputs_present(self, json.loads(f.readline()), output_fields):
                            continue
                    entries.append((order[rid][0], k, e))
        entries.sort(key=lambda t: t[0])
        return entries

    def standing(
        self, key: tp.Callable[[Record], str], output_fields: tp.Sequence[str]
    ) -> tuple[collections.Counter[int], collections.Counter[int]]:
        """Per shard, in one pass over the input: results that still stand (current, their output files
        there) and input ids. A shard with fewer standing results than inputs has work to do."""
        from unitwave.data.records import shard_of

        order = self._input_order(key)
        n = self.num_shards
        inputs = collections.Counter(shard_of(rid, n) for rid in order)
        done = collections.Counter(
            k for _, k, e in self.current_entries(key, True, output_fields, order) if e.ok
        )
        return done, inputs

    def merge(self, absolute_paths: bool = False, key: tp.Callable[[Record], str] = lambda r: "") -> dict[str, int]:
        """Write ``manifest.jsonl`` (input order, deduplicated by output id) and ``errors.jsonl`` from
        :meth:`current_entries` (``key``: the stage's ``record_key``).

        Both are written atomically; safe to call again (and from several SLURM tasks at once).
        """
        entries = [(i, k, e.offset, e.ok) for i, k, e in self.current_entries(key)]
        files = {k: open(self.shard_log(k), "rb") for k in {e[1] for e in entries}}
        seen: set[int] = set()
        counts = {"records": 0, "duplicates": 0, "errors": 0}
        try:
            with ManifestWriter(self.manifest, absolute_paths=absolute_paths) as out, ManifestWriter(
                self.errors
            ) as err:
                for _, k, off, ok in entries:
                    f = files[k]
                    f.seek(off)
                    entry = json.loads(f.readline())
                    if not ok:
                        err.write({"id": entry["id"], **entry["error"]})
                        counts["errors"] += 1
                        continue
                    for rec in entry["out"]:
                        h = stable_hash(str(rec.get("id")))
                        if h in seen:
                            counts["duplicates"] += 1
                            continue
                        seen.add(h)
                        out.write(rec)
                        counts["records"] += 1
        finally:
            for f in files.values():
                f.close()
        return counts


def outputs_present(run: RunDir, entry: dict[str, tp.Any], fields: tp.Sequence[str] = ("audio_filepath",)) -> bool:
    """Whether the files a committed result wrote inside the run folder (paths in its records' ``fields``)
    are still there: a result whose output file was deleted is done again. Paths outside the run folder are
    sources, not outputs."""
    root = os.path.abspath(run.root)
    for rec in entry.get("out", ()):
        for field in fields:
            path = rec.get(field) if isinstance(rec, dict) else None
            if isinstance(path, str) and path:
                full = os.path.abspath(os.path.join(run.root, path))
                if os.path.commonpath([full, root]) == root and not os.path.exists(full):
                    return False
    return True


class ShardBusyError(RuntimeError):
    """Another process holds the shard's writer lock."""


def lock_shard(path: Path) -> tp.IO[bytes]:
    """Take the single-writer lock of a shard (``<k>.lock``, flock); held until the returned file closes.

    File systems without flock support (some network mounts) get no lock rather than an error.
    """
    import errno
    import fcntl

    f = open(path.with_suffix(".lock"), "ab")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            f.close()
            raise ShardBusyError(
                f"{path} is being written by another process; wait for it or stop it, then rerun"
            ) from None
    return f


def open_shard_log(path: Path) -> tp.TextIO:
    """Open a shard log for appending, first cutting a torn final line left by a crash.

    Call with the shard's lock held (:func:`lock_shard`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size:
                f.seek(max(0, size - 1))
                if f.read(1) != b"\n":
                    # walk back to the last newline
                    pos = size
                    chunk = 65536
                    keep = 0
                    while pos > 0:
                        step = min(chunk, pos)
                        pos -= step
                        f.seek(pos)
                        buf = f.read(step)
                        nl = buf.rfind(b"\n")
                        if nl >= 0:
                            keep = pos + nl + 1
                            break
                    f.truncate(keep)
    return open(path, "a", encoding="utf-8")


def iter_shard_inputs(run: RunDir, k: int, n: int) -> tp.Iterator[tuple[int, Record]]:
    """``(input index, record)`` of the inputs that belong to shard ``k`` of ``n``."""
    from unitwave.data.records import shard_of

    for i, rec in enumerate(iter_jsonl(run.input, ReadStats())):
        if shard_of(rec["id"], n) == k:
            yield i, rec

