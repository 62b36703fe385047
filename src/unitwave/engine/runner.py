"""``run_stage``: the one way a per-record stage runs over a manifest.

Saves the resolved config, pins shards and input in ``run.json``, runs the unfinished shards on the
chosen backend (or exactly one with ``--shard k/N``), merges, lets the stage finalise, prints a one-line
summary and returns it (with the exit code the CLI should use). A backend that hands shards to a
scheduler without waiting (SLURM without ``--wait``) reports them pending: nothing is merged then (the
last shard task merges) and a successful submission exits 0.
"""

from __future__ import annotations

import collections
import dataclasses as dc
import json
import logging
import shlex
import time
import typing as tp
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unitwave.data.manifest import ReadStats, Record, iter_jsonl
from unitwave.engine.local import ShardOutcome, limit_threads, run_inline, run_local
from unitwave.engine.options import EngineConfig, default_shard_count
from unitwave.engine.progress import LogProgress
from unitwave.engine.ray_backend import ray_backend
from unitwave.engine.run_dir import RunDir, RunDirError
from unitwave.engine.slurm import slurm_backend
from unitwave.engine.stage import Stage

log = logging.getLogger("unitwave")


class Backend(tp.Protocol):
    """Runs shards of a prepared run folder; results are written by the shard code itself.

    Returns one outcome per shard it ran; a shard handed to a scheduler that runs it after the call
    returns (SLURM without ``--wait``) is reported ``pending``. ``poll`` updates the progress display
    (from the shard logs): call it about twice a second while waiting.
    """

    def __call__(
        self, stage: Stage, run: RunDir, shards: list[int], engine: EngineConfig, poll: tp.Callable[[], None]
    ) -> list[ShardOutcome]: ...


def _local_backend(
    stage: Stage, run: RunDir, shards: list[int], engine: EngineConfig, poll: tp.Callable[[], None]
) -> list[ShardOutcome]:
    workers = min(engine.resolved_workers(), len(shards))
    if workers <= 1:
        limit_threads(engine.torch_threads)
        return run_inline(stage, run, shards, poll)
    return run_local(stage, run, shards, workers, engine.torch_threads, poll)


#: execution backends by name (plain dict; the module that owns a backend provides its function)
BACKENDS: dict[str, Backend] = {"local": _local_backend, "slurm": slurm_backend, "ray": ray_backend}


@dataclass
class RunSummary:
    stage: str
    run_dir: str
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    failed_shards: list[int] = field(default_factory=list)
    input_records: int = 0
    malformed_lines: int = 0
    #: input records left out because an earlier record has the same id
    duplicate_ids: int = 0
    output_records: int = 0
    duplicates: int = 0
    wall_seconds: float = 0.0
    records_per_second: float = 0.0
    audio_hours_per_hour: float = 0.0
    complete: bool = False
    max_failures: int = 0
    #: the one shard this process ran (``--shard k/N``); its exit status is that shard's
    shard: int | None = None
    #: shards handed to a scheduler and not waited for (SLURM without --wait)
    submitted_shards: list[int] = field(default_factory=list)
    backend: str = "local"

    @property
    def exit_code(self) -> int:
        if self.submitted_shards:
            return 0
        if self.shard is not None:
            return 0 if not self.failed_shards and self.failed <= self.max_failures else 1
        return 0 if self.complete and self.failed <= self.max_failures else 1

    def line(self) -> str:
        root = shlex.quote(self.run_dir)
        if self.submitted_shards:
            return (
                f"{self.stage}: {len(self.submitted_shards)} shards submitted, not waited for (--wait waits and "
                f"merges; the last task merges manifest.jsonl): `unitwave status {root}` shows progress, "
                f"`unitwave resubmit {root}` reruns failed shards"
            )
        audio = f", {self.audio_hours_per_hour:.1f} audio-h/h" if self.audio_hours_per_hour > 0 else ""
        s = (
            f"{self.stage}: {self.processed} done, {self.skipped} skipped, {self.failed} failed "
            f"in {self.wall_seconds:.1f} s ({self.records_per_second:.1f} rec/s{audio})"
        )
        if self.malformed_lines:
            s += f"; {self.malformed_lines} malformed input lines skipped"
        if self.duplicate_ids:
            s += f"; {self.duplicate_ids} input records left out: their ids repeat earlier ones"
        if self.failed_shards:
            how = f"`unitwave resubmit {root}` reruns them" if self.backend == "slurm" else "rerun to resume"
            s += f"; shards {self.failed_shards} did not finish: {how}"
        if self.failed:
            s += f"; see {Path(self.run_dir) / 'errors.jsonl'}"
            if self.failed > self.max_failures and not self.failed_shards:
                s += f" (more than --max-failures {self.max_failures}: exit status 1)"
        return s


def run_stage(
    stage: Stage,
    inputs: tp.Callable[[], tp.Iterable[Record]],
    out_dir: Path,
    engine: EngineConfig,
    config: tp.Any = None,
    malformed_lines: tp.Callable[[], int] = lambda: 0,
    absolute_paths: bool | None = None,
    resume_ignores: tp.Iterable[str] = (),
) -> RunSummary:
    """Run ``stage`` over the records ``inputs()`` yields (normalised: ``id`` + absolute paths).

    Args:
        stage: the per-record processor.
        inputs: called once, on the driver, to write ``input.jsonl``.
        out_dir: the run folder.
        engine: shards, workers, backend, failure budget.
        config: the command's resolved config, saved as ``config.yaml``.
        malformed_lines: called after ``inputs()`` is consumed; counted in the summary.
        absolute_paths: overrides ``engine.absolute_paths`` for stages whose output contract needs one.
        resume_ignores: config keys (dotted) that may change between runs of one folder without
            changing results (e.g. ``device``); the engine section and positional paths always may.
    """
    from unitwave.config import save_config

    t0 = time.time()
    engine.check()
    run = RunDir(out_dir)
    run.root.mkdir(parents=True, exist_ok=True)
    only = engine.parsed_shard()
    if run.exists() and run.info().get("stage") != stage.name:
        raise RunDirError(
            f"{run.root} holds a `{run.info().get('stage')}` run, not a `{stage.name}` one: its finished "
            "records would be taken for this stage's. Use another output folder"
        )
    if config is not None and run.exists() and (run.root / "config.yaml").is_file():
        _refuse_changed_settings(run, config, resume_ignores)
    # Shard tasks (SLURM array tasks) keep the config their driver saved: many tasks, one file.
    save = config is not None and (only is None or not (run.root / "config.yaml").exists())
    if only is not None and run.exists() and only[1] != run.num_shards:
        raise RunDirError(
            f"--shard {engine.shard}: {run.root} was started with {run.num_shards} shards (run.json); "
            f"run its shards as k/{run.num_shards}"
        )
    requested = only[1] if only is not None else engine.shards
    workers = engine.resolved_workers()
    if only is not None and run.exists():
        info = run.info()  # array tasks never rewrite the input the driver prepared
    else:
        info = run.prepare(
            stage.name, inputs(), requested, lambda n: default_shard_count(n, workers)
        )
        if malformed_lines() != int(info.get("input_malformed_lines", 0)):
            run.update_info(input_malformed_lines=malformed_lines())
        if int(info["input_records"]) == 0:
            if malformed_lines():
                raise RunDirError(f"none of the {malformed_lines()} input lines is a record (see the warnings above): "
                                  "give a JSONL manifest, one JSON object per line, or a folder of audio")
            log.warning("%s: the input holds no records (an empty folder or manifest): nothing to do", stage.name)
        command = _command_name(config)
        if command and only is None and info.get("command") != command:
            run.update_info(command=command)  # what SLURM tasks and `unitwave resubmit` run
        info = run.info()
    if save:  # only now: a refused run (other --shards, other stage) must not rewrite the folder's config
        save_config(_without_shard(config), run.root)
    n = int(info["num_shards"])
    stage.plan(iter_jsonl(run.input, ReadStats(quiet=True)))
    # results that still stand: made from the current input (and stage key), their output files there; a
    # shard task (--shard k/N) checks only its own shard, in run_shard
    done_before: collections.Counter[int] = collections.Counter()
    if only is not None:
        shards = [only[0]]
    else:
        done_before, per_shard = run.standing(stage.record_key, stage.output_fields)
        shards = [k for k in range(n) if _needs_run(run, k) or done_before[k] < per_shard[k]]

    already = sum(done_before.values())
    progress = LogProgress(run, int(info["input_records"]), already, engine.progress and only is None, stage.name)
    outcomes: list[ShardOutcome] = []
    if shards:
        backend = BACKENDS.get(engine.backend)
        if backend is None or only is not None:
            backend = _local_backend
        outcomes = backend(stage, run, shards, engine, progress.poll)
    progress.close()

    summary = RunSummary(stage=stage.name, run_dir=str(run.root), max_failures=engine.max_failures,
                         shard=only[0] if only is not None else None, backend=engine.backend)
    summary.input_records = int(info["input_records"])
    summary.malformed_lines = int(info.get("input_malformed_lines", 0))
    summary.duplicate_ids = int(info.get("input_duplicate_ids", 0))
    for o in outcomes:
        if o.pending:
            summary.submitted_shards.append(o.shard)
        elif o.ok and o.summary:
            summary.processed += o.summary["processed"]
            summary.skipped += int(o.summary.get("skipped", 0))
        elif not o.ok:
            summary.failed_shards.append(o.shard)
    if only is None:  # shards that did not need to run: all their records were done before
        summary.skipped += sum(count for k, count in done_before.items() if k not in shards)
    complete = all(run.is_done(k) for k in range(n))
    summary.complete = complete
    if summary.submitted_shards:
        pass  # shards still to run write their results themselves; the last one merges
    elif complete or only is None:
        counts = run.merge(engine.absolute_paths if absolute_paths is None else absolute_paths, stage.record_key)
        summary.failed = counts["errors"]
        summary.output_records = counts["records"]
        summary.duplicates = counts["duplicates"]
        if complete:
            stage.finalize(run)
    if only is not None:  # a shard task (the last one merged too) reports, and exits by, its own shard
        summary.failed = sum(o.summary["failed"] for o in outcomes if o.ok and o.summary)
    rates = progress.rates()
    summary.wall_seconds = round(time.time() - t0, 3)
    summary.records_per_second = rates["records_per_second"]
    summary.audio_hours_per_hour = rates["audio_hours_per_hour"]
    if only is None:
        (run.root / "summary.json").write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    print(summary.line(), flush=True)
    return summary


def _command_name(config: tp.Any) -> str | None:
    """The ``unitwave`` command whose config ``config`` is (None for library-only use)."""
    from unitwave.commands import command_for_config

    if config is None:
        return None
    try:
        return command_for_config(type(config))
    except KeyError:
        return None


def _without_shard(config: tp.Any) -> tp.Any:
    """``config`` with ``--shard`` cleared, so the saved config.yaml reruns the whole stage."""
    if not dc.is_dataclass(config) or isinstance(config, type):
        return config
    changes = {
        f.name: dc.replace(v, shard=None)
        for f in dc.fields(config)
        if isinstance(v := getattr(config, f.name), EngineConfig) and v.shard is not None
    }
    return dc.replace(config, **changes) if changes else config


def _refuse_changed_settings(run: RunDir, config: tp.Any, resume_ignores: tp.Iterable[str]) -> None:
    """A run folder resumes only with the settings that made it: finished records are never redone, so
    new settings would silently mix two kinds of results in one manifest."""
    from unitwave.config import changed_settings, positional_fields

    ignore = ["engine", *positional_fields(type(config)), *resume_ignores]
    changes = changed_settings(run.root / "config.yaml", config, ignore)
    if changes:
        raise RunDirError(
            f"{run.root} was made with other settings ({'; '.join(changes)}): its finished records would "
            f"not be redone. Use a new output folder (for vad: a new --name), or the same settings to resume"
        )


def _needs_run(run: RunDir, k: int) -> bool:
    """Unfinished shards, and finished ones with errors (errors of a previous attempt are retried)."""
    if not run.is_done(k):
        return True
    try:
        return int(json.loads(run.done_marker(k).read_text())["failed"]) > 0
    except (ValueError, KeyError, OSError):
        return True
