"""``unitwave resubmit RUN_DIR``: submit a SLURM run's failed and missing shards again.

The run keeps its shard count (pinned in run.json) and its config (config.yaml): the same array script
``<run>/<stage>.sbatch`` is submitted for just those shards (``--array=3,7,12``; split at
``MaxArraySize``). Shards still queued or running are left alone. Resources can be raised for the
retry (``--time 24:00:00 --mem 32G`` after a TIMEOUT or OUT_OF_MEMORY): sbatch command-line options win
over the script's ``#SBATCH`` lines. Each task resumes its shard; the last one merges manifest.jsonl.
"""

from __future__ import annotations

import dataclasses as dc
import shlex
from pathlib import Path

import tyro

from unitwave.engine.run_dir import RunDir


@dc.dataclass(frozen=True)
class ResubmitConfig:
    """Resubmit the failed or missing shards of a run submitted with --backend slurm."""

    run_dir: tyro.conf.Positional[Path]
    """The run folder (it has run.json and slurm.json)."""
    wait: bool = False
    """Wait for the resubmitted tasks to finish."""
    retry_errors: bool = False
    """Also resubmit finished shards that have failed records (retried on the rerun)."""
    max_parallel: int | None = None
    """Most tasks at once (default: as first submitted)."""
    partition: str | None = None
    """Override sbatch --partition for these tasks."""
    gres: str | None = None
    """Override sbatch --gres."""
    time: str | None = None
    """Override sbatch --time (e.g. after a TIMEOUT)."""
    mem: str | None = None
    """Override sbatch --mem (e.g. after OUT_OF_MEMORY)."""


@dc.dataclass
class ResubmitSummary:
    run_dir: str
    resubmitted: list[int] = dc.field(default_factory=list)
    active: list[int] = dc.field(default_factory=list)
    job_ids: list[str] = dc.field(default_factory=list)
    #: with --wait: the shards still not done after the tasks ended
    unfinished: list[int] = dc.field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.unfinished else 0


def _overrides(cfg: ResubmitConfig) -> list[str]:
    named = {"--partition": cfg.partition, "--gres": cfg.gres, "--time": cfg.time, "--mem": cfg.mem}
    return [f"{flag}={value}" for flag, value in named.items() if value is not None]


def resubmit(cfg: ResubmitConfig) -> ResubmitSummary:
    """Submit the failed/missing shards again; with ``cfg.wait``, wait for their tasks to end."""
    from unitwave.engine.progress import LogProgress
    from unitwave.engine.slurm import (
        describe_submissions,
        load_record,
        script_path,
        slurm_shard_states,
        submit_shards,
        wait_for_shards,
    )
    from unitwave.engine.slurm_client import compress_indices

    run = RunDir(cfg.run_dir)
    info = run.info()
    record = load_record(run)
    states = slurm_shard_states(run)
    if record is None or states is None:
        raise ValueError(
            f"{run.root} was not submitted to SLURM (no slurm.json): rerun its command with --backend slurm "
            "(it submits only the unfinished shards)"
        )
    stage = str(record.get("stage") or info["stage"])
    script = script_path(run, stage)
    if not script.is_file():
        raise FileNotFoundError(f"{script} is missing: rerun the stage's command with --backend slurm to write it")
    summary = ResubmitSummary(str(run.root))
    summary.active = [s.shard for s in states if s.state in ("pending", "running")]
    summary.resubmitted = [
        s.shard for s in states
        if s.state in ("failed", "missing") or (cfg.retry_errors and s.state == "done" and s.errors)
    ]
    root = shlex.quote(str(run.root))
    if not summary.resubmitted:
        done = sum(s.state == "done" for s in states)
        print(f"{stage}: nothing to resubmit: {done}/{len(states)} shards done, "
              f"{len(summary.active)} queued or running (`unitwave status {root}`)")
        if done == len(states) and not run.manifest.is_file():
            # the last task died while merging: any rerun of the stage merges (no shard runs again)
            command = info.get("command", "<stage>")
            print(f"{stage}: every shard is done but {run.manifest.name} was never merged: run "
                  f"`unitwave {command} --config {shlex.quote(str(run.root / 'config.yaml'))}` to merge")
        return summary
    if summary.active:
        print(f"{stage}: shards {compress_indices(summary.active)} are still queued or running: left alone")
    subs = submit_shards(run, stage, summary.resubmitted, script,
                         cfg.max_parallel or record.get("max_parallel"), options=_overrides(cfg))
    summary.job_ids = [s["job_id"] for s in subs]
    print(describe_submissions(run, stage, subs), flush=True)
    if cfg.wait:
        already = sum(s.records + s.errors for s in run.shard_states())
        progress = LogProgress(run, int(info["input_records"]), already, desc=stage)
        wait_for_shards(run, summary.resubmitted, progress.poll)
        progress.close()
        summary.unfinished = [k for k in summary.resubmitted if not run.is_done(k)]
        if summary.unfinished:
            print(f"{stage}: shards {compress_indices(summary.unfinished)} did not finish: "
                  f"`unitwave status {root}` shows why")
        else:
            print(f"{stage}: all resubmitted shards done; manifest: {run.manifest}")
    return summary


def run(cfg: ResubmitConfig) -> ResubmitSummary:
    return resubmit(cfg)
