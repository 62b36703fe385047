"""``unitwave status RUN_DIR``: each shard's state, records, errors and audio hours.

Runs submitted to SLURM (they have ``slurm.json``) show per shard: done / pending / running / failed /
missing, with the state of its latest array task and its log file; other runs: done / partial / missing.
"""

from __future__ import annotations

import dataclasses as dc
import shlex
from pathlib import Path

import tyro

from unitwave.engine.run_dir import RunDir, ShardState


@dc.dataclass(frozen=True)
class StatusConfig:
    """Show what a run folder holds: each shard's state, records, errors and audio hours."""

    run_dir: tyro.conf.Positional[Path]
    """A stage's output folder (it has run.json)."""


def shard_states(run: RunDir) -> tuple[list[ShardState], str]:
    """Shard states from the run folder, with SLURM's view added for SLURM runs; and a note if SLURM
    could not be asked (the states then come from the files alone)."""
    from unitwave.engine.slurm import slurm_shard_states
    from unitwave.engine.slurm_client import SlurmError, SlurmUnavailable

    states = run.shard_states()
    try:
        slurm = slurm_shard_states(run)
    except (SlurmError, SlurmUnavailable) as e:
        return states, f"SLURM not asked ({e}); states from the run folder only"
    if slurm is None:
        return states, ""
    return [dc.replace(s, state=q.state, slurm_state=q.slurm_state, job=q.job, log=q.log)
            for s, q in zip(states, slurm)], ""


def status_table(run: RunDir) -> tuple[str, list[ShardState]]:
    info = run.info()
    states, note = shard_states(run)
    on_slurm = any(s.job for s in states)
    lines = [
        f"{run.root}: stage {info['stage']}, {info['num_shards']} shards, {info['input_records']} input records",
        f"{'shard':>5}  {'state':<8} {'records':>8} {'errors':>7} {'audio h':>8}" + ("  slurm" if on_slurm else ""),
    ]
    for s in states:
        line = f"{s.shard:>5}  {s.state:<8} {s.records:>8} {s.errors:>7} {s.audio_seconds / 3600:>8.3f}"
        if on_slurm and s.job:
            line += f"  {s.job} {s.slurm_state}".rstrip()
            if s.state != "done":
                line += f"  log: {s.log}"
        lines.append(line)
    done = sum(s.state == "done" for s in states)
    lines.append(
        f"total: {done}/{len(states)} shards done, {sum(s.records for s in states)} records, "
        f"{sum(s.errors for s in states)} errors, {sum(s.audio_seconds for s in states) / 3600:.3f} audio h"
    )
    counts = {k: sum(s.state == k for s in states) for k in ("pending", "running", "failed", "missing")}
    if on_slurm and any(counts.values()):
        lines.append(", ".join(f"{v} {k}" for k, v in counts.items() if v))
        if counts["failed"] or counts["missing"]:
            lines.append(f"resubmit failed and missing shards: unitwave resubmit {shlex.quote(str(run.root))}")
    if note:
        lines.append(note)
    return "\n".join(lines), states


def run(cfg: StatusConfig) -> list[ShardState]:
    text, states = status_table(RunDir(cfg.run_dir))
    print(text)
    return states
