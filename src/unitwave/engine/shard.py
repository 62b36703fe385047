"""Run one shard: the unit of work of every backend (``unitwave <stage> ... --shard k/N``).

One process writes a shard's log. Inputs already committed are skipped; inputs whose latest result is
an error are retried; each result is appended and flushed as one line; the ``.done`` marker is written
atomically at the end.
"""

from __future__ import annotations

import itertools
import logging
import time
import traceback
import typing as tp

from unitwave.data.manifest import Record, dumps
from unitwave.engine.batching import Backoff, plan_batches
from unitwave.engine.run_dir import RunDir, iter_shard_inputs, lock_shard, open_shard_log
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


def _first_time(record_id: str, seen: set[str]) -> bool:
    """True once per id: skips inputs already committed and repeated input lines."""
    if record_id in seen:
        return False
    seen.add(record_id)
    return True


def _run_locked(stage: Stage, run: RunDir, k: int, n: int, t0: float) -> dict[str, tp.Any]:
    latest = run.read_log(k)
    done = {rid for rid, (_, _, ok) in latest.items() if ok}
    todo = ((i, r) for i, r in iter_shard_inputs(run, k, n) if _first_time(r["id"], done))
    processed = failed = 0
    backoff = Backoff(stage.max_batch_items if stage.batch_seconds else None)
    with open_shard_log(run.shard_log(k)) as out:

        def commit(i: int, rec: Record, result: list[Record] | BaseException) -> None:
            nonlocal processed, failed
            line = None
            if not isinstance(result, BaseException):
                try:
                    line = dumps({"i": i, "id": rec["id"], "out": result}) + "\n"
                except (TypeError, ValueError) as exc:  # an unwritable output fails its record, not the shard
                    result = ValueError(f"the stage's output for this record is not JSON: {exc}")
            if line is None:
                out.write(dumps({"i": i, "id": rec["id"], "error": error_entry(stage, rec, result)}) + "\n")
                failed += 1
                log.debug("shard %d: %s failed: %s", k, rec["id"], result)
            else:
                out.write(line)
                processed += 1
            out.flush()

        def call(batch: list[tuple[int, Record]]) -> list[list[Record]]:
            return stage.process([r for _, r in batch])

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
                for (i, rec), result in zip(batch, backoff.run(call, batch)):
                    commit(i, rec, result)
    summary = {
        "shard": k,
        "processed": processed,
        "failed": failed,
        "skipped": len(done) - processed - failed,
        "seconds": round(time.time() - t0, 3),
    }
    run.mark_done(k, summary)
    return summary
