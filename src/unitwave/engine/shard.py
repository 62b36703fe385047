"""Run one shard: the unit of work of every backend (``unitwave <stage> ... --shard k/N``).

One process writes a shard's log. Inputs already committed are skipped; inputs whose latest result is
an error are retried; each result is appended and flushed as one line; the ``.done`` marker is written
atomically at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
import traceback
import typing as tp

from unitwave.data.manifest import Record, dumps
from unitwave.engine.batching import Backoff, plan_batches
from unitwave.engine.run_dir import RunDir, fingerprint, iter_shard_inputs, lock_shard, open_shard_log, outputs_present
from unitwave.engine.stage import Stage

log = logging.getLogger("unitwave")

#: inputs read ahead and sorted by length for batching (bounds memory for any shard size)
BATCH_WINDOW = 512


def error_entry(stage: Stage, record: Record, exc: BaseException) -> dict[str, tp.Any]:
    """The ``errors.jsonl`` payload of a failed input: stage, path and a reason a user can act on."""
    from unitwave.audio.io import AudioError

    reason = exc.reason if isinstance(exc, AudioError) else (str(exc) or type(exc).__name__)
    entry: dict[str, tp.Any] = {
        "path": record.get("audio_filepath"),
        "stage": stage.name,
        "reason": reason,
        "error_type": type(exc).__name__,
    }
    if not isinstance(exc, (AudioError, ValueError, FileNotFoundError)):
        entry["traceback"] = "".join(traceback.format_exception(exc)[-3:]).strip()
    return entry


def run_shard(stage: Stage, run: RunDir, k: int, n: int, setup: bool = True) -> dict[str, tp.Any]:
    """Process shard ``k`` of ``n``; returns counts (processed, failed, skipped) and wall seconds."""
    t0 = time.time()
    run.shards_dir.mkdir(parents=True, exist_ok=True)
    with lock_shard(run.shard_log(k)):
        if setup:
            stage.setup()
        return _run_locked(stage, run, k, n, t0)


def _run_locked(stage: Stage, run: RunDir, k: int, n: int, t0: float) -> dict[str, tp.Any]:
    latest = run.read_log(k)
    seen: set[str] = set()
    skipped = 0

    def pending() -> tp.Iterator[tuple[int, Record, str]]:
        """Inputs of this shard without a result made from them, once per id."""
        nonlocal skipped
        with contextlib.ExitStack() as stack:
            log_file = stack.enter_context(open(run.shard_log(k), "rb")) if latest else None
            for i, rec in iter_shard_inputs(run, k, n):
                if rec["id"] in seen:
                    continue  # a repeated id: the run folder's input has each id once (RunDir.prepare)
                seen.add(rec["id"])
                fp = fingerprint(rec, stage.record_key(rec))
                e = latest.get(rec["id"])
                if e is not None and e.ok and e.matches(fp) and log_file is not None:
                    log_file.seek(e.offset)
                    if outputs_present(run, json.loads(log_file.readline()), stage.output_fields):
                        skipped += 1
                        continue
                yield i, rec, fp

    todo = pending()
    processed = failed = 0
    backoff = Backoff(stage.max_batch_items if stage.batch_seconds else None)
    with open_shard_log(run.shard_log(k)) as out:

        def commit(i: int, rec: Record, fp: str, result: list[Record] | BaseException) -> None:
            nonlocal processed, failed
            line = None
            if not isinstance(result, BaseException):
                try:
                    line = dumps({"i": i, "id": rec["id"], "fp": fp, "out": result}) + "\n"
                except (TypeError, ValueError) as exc:  # an unwritable output fails its record, not the shard
                    result = ValueError(f"the stage's output for this record is not JSON: {exc}")
            if line is None:
                error = error_entry(stage, rec, result)
                out.write(dumps({"i": i, "id": rec["id"], "fp": fp, "error": error}) + "\n")
                failed += 1
                log.debug("shard %d: %s failed: %s", k, rec["id"], result)
            else:
                out.write(line)
                processed += 1
            out.flush()

        def call(batch: list[tuple[int, Record, str]]) -> list[list[Record]]:
            return stage.process([r for _, r, _ in batch])

        while True:
            window = list(itertools.islice(todo, BATCH_WINDOW if stage.batch_seconds else 1))
            if not window:
                break
            if stage.batch_seconds:
                batches = plan_batches(
                    window, lambda x: stage.cost(x[1]), stage.batch_seconds, stage.max_batch_items
                )
            else:
                batches = [window]
            for batch in batches:
                for (i, rec, fp), result in zip(batch, backoff.run(call, batch)):
                    commit(i, rec, fp, result)
    summary = {
        "shard": k,
        "processed": processed,
        "failed": failed,
        "skipped": skipped,
        "seconds": round(time.time() - t0, 3),
    }
    run.mark_done(k, summary)
    return summary
