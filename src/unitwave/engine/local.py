"""The local backend: a pool of spawned worker processes, each running whole shards.

Each worker calls ``stage.setup()`` once and then runs the shards it is sent over its own pipe, so the
parent always knows which shard a worker holds. A worker that dies (killed, segfault, host OOM) makes
its shard fail with the exit code; a replacement is started while shards remain. Nothing can hang on a
dead worker: the parent waits on pipes and process sentinels together.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import traceback
import typing as tp
from dataclasses import dataclass

from unitwave.engine.run_dir import RunDir
from unitwave.engine.stage import Stage

log = logging.getLogger("unitwave")

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class ShardOutcome:
    """How one shard ended on a backend (``pending``: handed to a scheduler that runs it later)."""

    shard: int
    ok: bool
    summary: dict[str, tp.Any] | None = None
    reason: str = ""
    pending: bool = False


def limit_threads(torch_threads: int) -> None:
    """One compute thread per worker unless told otherwise (workers x threads <= cores)."""
    for var in THREAD_VARS:
        os.environ[var] = str(torch_threads)
    try:
        import sys

        if "torch" in sys.modules:
            import torch

            torch.set_num_threads(torch_threads)
    except Exception:  # noqa: BLE001 - best effort
        pass


def _exit_with_parent(parent_pid: int) -> None:
    """A worker must not outlive its driver: an orphan would keep writing a shard a rerun then redoes."""
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


def _worker_main(conn: mpc.Connection, stage: Stage, root: str, n: int, torch_threads: int, parent_pid: int) -> None:
    from unitwave.engine.shard import run_shard

    _exit_with_parent(parent_pid)
    limit_threads(torch_threads)
    from unitwave.log import setup_logging

    setup_logging(quiet=True)
    run = RunDir(root)
    ready = False
    while True:
        try:
            k = conn.recv()
        except EOFError:
            return
        if k is None:
            return
        try:
            if not ready:
                stage.setup()
                ready = True
            summary = run_shard(stage, run, k, n, setup=False)
            conn.send(("done", k, summary))
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            # and the worker stays: the parent may already have sent it the next shard (a worker that
            # left here would fail that one too); on Ctrl-C the parent tells every worker to stop
            conn.send(("failed", k, "".join(traceback.format_exception(exc)[-4:]).strip()))


@dataclass
class _Worker:
    proc: mp.process.BaseProcess
    conn: mpc.Connection
    shard: int | None = None


def run_local(
    stage: Stage,
    run: RunDir,
    shards: tp.Sequence[int],
    workers: int,
    torch_threads: int = 1,
    poll: tp.Callable[[], None] = lambda: None,
) -> list[ShardOutcome]:
    """Run ``shards`` on up to ``workers`` spawned processes; ``poll`` is called about twice a second."""
    n = run.num_shards
    pending = list(shards)
    outcomes: dict[int, ShardOutcome] = {}
    ctx = mp.get_context("spawn")
    pool: list[_Worker] = []

    def start() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, stage, str(run.root), n, torch_threads, os.getpid()), daemon=True)
        proc.start()
        child.close()
        pool.append(_Worker(proc, parent))

    for _ in range(min(workers, len(pending))):
        start()
    try:
        while pending or any(w.shard is not None for w in pool):
            for w in pool:
                if w.shard is None and pending:
                    w.shard = pending.pop(0)
                    try:
                        w.conn.send(w.shard)
                    except (BrokenPipeError, OSError):  # it died since its last report: the shard waits
                        pending.insert(0, w.shard)       # for a replacement (handled below, as a death)
                        w.shard = None
            waitables: list[tp.Any] = [w.conn for w in pool] + [w.proc.sentinel for w in pool]
            ready = set(mpc.wait(waitables, timeout=0.5))
            for w in list(pool):
                if w.conn in ready:
                    try:
                        kind, k, payload = w.conn.recv()
                    except (EOFError, OSError):
                        kind = None
                    else:
                        w.shard = None
                        if kind == "done":
                            outcomes[k] = ShardOutcome(k, True, summary=payload)
                        else:
                            outcomes[k] = ShardOutcome(k, False, reason=payload)
                            log.error("shard %d failed:\n%s", k, payload)
                        continue
                if w.proc.sentinel in ready or not w.proc.is_alive():
                    w.proc.join(timeout=1)
                    if w.shard is not None:
                        code = w.proc.exitcode
                        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                        outcomes[w.shard] = ShardOutcome(w.shard, False, reason=f"worker died ({why})")
                        log.error("shard %d failed: worker process died (%s)", w.shard, why)
                    pool.remove(w)
                    if pending and len(pool) < workers:
                        start()
            if not pool and pending:
                start()
            poll()
    finally:
        for w in pool:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for w in pool:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.terminate()
                w.proc.join(timeout=5)
    return [outcomes[k] for k in shards if k in outcomes]


def run_inline(stage: Stage, run: RunDir, shards: tp.Sequence[int], poll: tp.Callable[[], None]) -> list[ShardOutcome]:
    """Run shards in this process (one worker): no spawn cost, same files."""
    from unitwave.engine.shard import run_shard

    stage.setup()
    outcomes = []
    for k in shards:
        try:
            outcomes.append(ShardOutcome(k, True, summary=run_shard(stage, run, k, run.num_shards, setup=False)))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(ShardOutcome(k, False, reason="".join(traceback.format_exception(exc)[-4:]).strip()))
        poll()
    return outcomes
