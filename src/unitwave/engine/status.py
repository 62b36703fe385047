"""``unitwave status RUN_DIR``: done / partial / missing shards, record and error counts, audio hours."""

from __future__ import annotations

import dataclasses as dc
from pathlib import Path

import tyro

from unitwave.engine.run_dir import RunDir, ShardState


@dc.dataclass(frozen=True)
class StatusConfig:
    """Show what a run folder holds: each shard's state, records, errors and audio hours."""

    run_dir: tyro.conf.Positional[Path]
    """A stage's output folder (it has run.json)."""


def status_table(run: RunDir) -> tuple[str, list[ShardState]]:
    info = run.info()
    states = run.shard_states()
    lines = [
        f"{run.root}: stage {info['stage']}, {info['num_shards']} shards, {info['input_records']} input records",
        f"{'shard':>5}  {'state':<8} {'records':>8} {'errors':>7} {'audio h':>8}",
    ]
    for s in states:
        lines.append(f"{s.shard:>5}  {s.state:<8} {s.records:>8} {s.errors:>7} {s.audio_seconds / 3600:>8.3f}")
    done = sum(s.state == "done" for s in states)
    lines.append(
        f"total: {done}/{len(states)} shards done, {sum(s.records for s in states)} records, "
        f"{sum(s.errors for s in states)} errors, {sum(s.audio_seconds for s in states) / 3600:.3f} audio h"
    )
    return "\n".join(lines), states


def run(cfg: StatusConfig) -> list[ShardState]:
    text, states = status_table(RunDir(cfg.run_dir))
    print(text)
    return states
