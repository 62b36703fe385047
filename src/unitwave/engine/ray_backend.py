"""The Ray backend: shards run as Ray tasks, or as calls on actors for stages with a heavy ``setup()``.

A Ray task (or actor call) runs :func:`unitwave.engine.shard.run_shard` itself: results go to the same
shard logs and ``.done`` markers as on every backend, under the same single-writer lock and resume
rules. The driver only tracks completion (and progress, from the logs) and merges.

- Tasks (stages without ``setup()``): ``max_retries`` re-runs a shard whose worker process died; the
  retry resumes from the shard log, so nothing is lost or done twice.
- Actors (``--ray-mode actors``, or ``auto`` for stages that override ``setup()``): each actor calls
  ``setup()`` once (model loading) and then runs the shards it is given; a dead actor is restarted
  (``max_restarts``) and its call retried (``max_task_retries``).
- The driver dying is a rerun away from resuming: finished shards and committed records are skipped.
  A worker of the dead driver may still hold a shard's lock for a moment: a new attempt waits for it.

``--ray-address local`` starts a private Ray on this machine with ``--workers`` CPUs; ``auto`` joins the
running cluster (``ray start --head``); an address (``ray://head:10001``) joins that one. The run folder
must be on a file system every node sees. Ray is imported only when this backend runs.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
import typing as tp

from unitwave.engine.local import ShardOutcome, limit_threads
from unitwave.engine.options import EngineConfig, RayOptions
from unitwave.engine.run_dir import RunDir, ShardBusyError
from unitwave.engine.stage import Stage

log = logging.getLogger("unitwave")

#: seconds a shard attempt waits for a previous attempt's process to release the shard's lock
LOCK_WAIT_SECONDS = 120.0


class RayUnavailable(ValueError):
    """Ray is not installed or its cluster cannot be reached (the message says what to do)."""


def _import_ray() -> tp.Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "--backend ray needs Ray: pip install 'unitwave[distributed]' (or 'ray>=2.9'); "
            "or use --backend local (a process pool) or --backend slurm"
        ) from None
    return ray


def connect(opts: RayOptions, workers: int) -> bool:
    """Join or start Ray as ``opts.ray_address`` says; True when this call did (and must shut it down).

    A process that already called ``ray.init`` keeps its connection.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    try:
        if opts.ray_address == "local":
            ray.init(address="local", num_cpus=workers, include_dashboard=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=opts.ray_address, logging_level=logging.WARNING)
    except ConnectionError as e:
        raise RayUnavailable(
            f"no Ray cluster at --ray-address {opts.ray_address} ({e}); start one with `ray start --head`, "
            "give its address, or use --ray-address local for a private one on this machine"
        ) from None
    return True


def _run_when_free(stage: Stage, run: RunDir, k: int, n: int, setup: bool) -> dict[str, tp.Any]:
    """``run_shard``, waiting while a previous attempt's process still holds the shard's lock."""
    from unitwave.engine.shard import run_shard

    if not run.run_json.is_file():
        raise FileNotFoundError(
            f"{run.root} is not visible on Ray node {socket.gethostname()}: "
            "the run folder must be on a file system every node of the cluster shares"
        )
    deadline = time.time() + LOCK_WAIT_SECONDS
    while True:
        try:
            return run_shard(stage, run, k, n, setup=setup)
        except ShardBusyError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def _shard_task(stage: Stage, root: str, k: int, n: int, torch_threads: int) -> dict[str, tp.Any]:
    """One shard as a Ray task (setup, then the shard)."""
    limit_threads(torch_threads)
    return _run_when_free(stage, RunDir(root), k, n, setup=True)


class _ShardActor:
    """Calls ``stage.setup()`` once, then runs the shards it is given."""

    def __init__(self, stage: Stage, root: str, n: int, torch_threads: int) -> None:
        limit_threads(torch_threads)
        self.stage, self.run, self.n = stage, RunDir(root), n
        self.stage.setup()

    def run_shard(self, k: int) -> dict[str, tp.Any]:
        return _run_when_free(self.stage, self.run, k, self.n, setup=False)


def _uses_actors(stage: Stage, mode: str) -> bool:
    return mode == "actors" or (mode == "auto" and type(stage).setup is not Stage.setup)


def _actor_count(ray: tp.Any, engine: EngineConfig, shards: int) -> int:
    """Actors to start: --workers if given, else as many as the cluster's resources hold."""
    if engine.workers > 0:
        return max(1, min(engine.workers, shards))
    res = ray.cluster_resources()
    opts = engine.ray
    fit = res.get("CPU", 1.0) / opts.ray_num_cpus if opts.ray_num_cpus > 0 else float(shards)
    if opts.ray_num_gpus > 0:
        fit = min(fit, res.get("GPU", 0.0) / opts.ray_num_gpus)
    return max(1, min(shards, int(fit)))


def _failure(ray: tp.Any, exc: BaseException) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError):
        return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__}: {exc}".strip()


def ray_backend(
    stage: Stage, run: RunDir, shards: list[int], engine: EngineConfig, poll: tp.Callable[[], None]
) -> list[ShardOutcome]:
    """Run ``shards`` on Ray; results are written by the shard code, the driver tracks and reports."""
    ray = _import_ray()
    started = connect(engine.ray, engine.resolved_workers())
    opts = engine.ray
    root, n = str(run.root.absolute()), run.num_shards
    resources = {"num_cpus": opts.ray_num_cpus, "num_gpus": opts.ray_num_gpus}
    inflight: dict[tp.Any, tuple[int, tp.Any]] = {}  # ref -> (shard, actor or None)
    outcomes: dict[int, ShardOutcome] = {}
    pending = list(shards)
    idle: list[tp.Any] = []
    actor_cls = None
    try:
        if _uses_actors(stage, opts.ray_mode):
            actor_cls = ray.remote(_ShardActor).options(
                **resources, max_restarts=opts.ray_max_retries, max_task_retries=opts.ray_max_retries)
            idle = [actor_cls.remote(stage, root, n, engine.torch_threads)
                    for _ in range(_actor_count(ray, engine, len(shards)))]
        else:
            task = ray.remote(_shard_task)
            for k in pending:
                call = task.options(**resources, max_retries=opts.ray_max_retries, name=f"{stage.name}-shard-{k}")
                inflight[call.remote(stage, root, k, n, engine.torch_threads)] = (k, None)
            pending = []
        while pending or inflight:
            while idle and pending:
                actor, k = idle.pop(), pending.pop(0)
                inflight[actor.run_shard.remote(k)] = (k, actor)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            for ref in ready:
                k, actor = inflight.pop(ref)
                try:
                    outcomes[k] = ShardOutcome(k, True, summary=ray.get(ref))
                    if actor is not None:
                        idle.append(actor)
                except Exception as exc:  # noqa: BLE001 - reported per shard
                    outcomes[k] = ShardOutcome(k, False, reason=_failure(ray, exc))
                    log.error("shard %d failed on Ray: %s", k, outcomes[k].reason)
                    if actor is not None:
                        dead = isinstance(exc, ray.exceptions.RayActorError)
                        idle.append(actor_cls.remote(stage, root, n, engine.torch_threads) if dead else actor)
            poll()
    except BaseException:
        for ref in inflight:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort (actor calls cannot be force-cancelled)
                log.debug("could not cancel a Ray task:\n%s", traceback.format_exc())
        raise
    finally:
        for actor in idle + [a for _, a in inflight.values() if a is not None]:
            ray.kill(actor)
        if started:
            ray.shutdown()
    return [outcomes[k] for k in shards if k in outcomes]
