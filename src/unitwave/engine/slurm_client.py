"""Talking to a SLURM cluster through its commands: sbatch, scontrol, (no sacct: it needs slurmdbd).

Everything is called with an argument list (never through a shell). Errors say what to do: a missing
``sbatch`` names the other backends and how to get SLURM; a refused submission shows sbatch's reason.
"""

from __future__ import annotations

import dataclasses as dc
import os
import re
import shutil
import subprocess
import typing as tp
from pathlib import Path

#: states of a job that may still run (everything else is final)
ACTIVE_STATES = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
    "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED", "RESV_DEL_HOLD",
})


class SlurmError(ValueError):
    """SLURM refused or failed a request (the message carries its reason)."""


class SlurmUnavailable(FileNotFoundError):
    """No SLURM commands on this machine."""


def slurm_command(name: str) -> str:
    """Path of a SLURM client command, or SlurmUnavailable saying which backend to use instead."""
    found = shutil.which(name)
    if found is None:
        raise SlurmUnavailable(
            f"{name} not found on PATH: --backend slurm submits from a SLURM login node (or a machine with "
            "slurm-wlm installed and a cluster configured); here use --backend local (a process pool on "
            "this machine) or --backend ray"
        )
    return found


def run_slurm(argv: tp.Sequence[str], what: str, cwd: Path | None = None, timeout: float = 60.0) -> str:
    """Run a SLURM command; its stdout, or SlurmError with its stderr."""
    exe = slurm_command(argv[0])
    try:
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{what}: {argv[0]} did not answer within {timeout:.0f} s (is slurmctld up?)") from None
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise SlurmError(f"{what}: {reason}")
    return proc.stdout


_MAX_ARRAY: dict[str, int] = {}


def max_array_size() -> int:
    """The cluster's ``MaxArraySize`` (array task ids must be below it), from ``scontrol show config``."""
    key = os.environ.get("SLURM_CONF", "")
    if key not in _MAX_ARRAY:
        out = run_slurm(["scontrol", "show", "config"], "reading the cluster's MaxArraySize")
        m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
        _MAX_ARRAY[key] = int(m.group(1)) if m else 1001  # SLURM's default
    return _MAX_ARRAY[key]


def compress_indices(indices: tp.Iterable[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"`` (an sbatch --array list)."""
    items = sorted(set(indices))
    parts: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        parts.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(parts)


def expand_indices(spec: str) -> list[int]:
    """``"0-2,5,7-9:2%4"`` -> ``[0, 1, 2, 5, 7, 9]`` (the throttle ``%N`` is ignored)."""
    out: list[int] = []
    for part in spec.split("%")[0].split(","):
        if not part:
            continue
        rng, _, step = part.partition(":")
        lo, _, hi = rng.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1, int(step or 1)))
    return out


def plan_arrays(shards: tp.Iterable[int], max_size: int) -> list[tuple[int, list[int]]]:
    """Split shards into arrays whose task ids are below ``max_size``: ``[(first_shard, task ids)]``.

    Array ``first_shard`` runs shard ``first_shard + SLURM_ARRAY_TASK_ID``; with N <= max_size there is
    one array and task id == shard.
    """
    if max_size < 1:
        raise ValueError(f"MaxArraySize must be at least 1, got {max_size}")
    blocks: dict[int, list[int]] = {}
    for k in sorted(set(shards)):
        first = (k // max_size) * max_size
        blocks.setdefault(first, []).append(k - first)
    return sorted(blocks.items())


def submit(script: Path, array: str | None = None, options: tp.Sequence[str] = (),
           args: tp.Sequence[str] = (), cwd: Path | None = None) -> str:
    """``sbatch --parsable [--array=SPEC] OPTIONS SCRIPT ARGS``; returns the job id."""
    argv = ["sbatch", "--parsable"]
    if array is not None:
        argv.append(f"--array={array}")
    out = run_slurm([*argv, *options, str(script), *args], f"sbatch {script.name}", cwd=cwd)
    job_id = out.strip().split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch {script.name}: unexpected answer {out.strip()!r}")
    return job_id


@dc.dataclass(frozen=True)
class TaskState:
    """What ``scontrol show job`` says about one job or array task."""

    state: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, ...
    reason: str = ""
    exit_code: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


_FIELDS = re.compile(r"(?:^|\s)(JobId|ArrayJobId|ArrayTaskId|JobState|Reason|ExitCode)=(\S*)")


def job_states(job_ids: tp.Iterable[str]) -> dict[tuple[str, int | None], TaskState]:
    """States of jobs and their array tasks: ``(job id, array task id or None) -> TaskState``.

    Jobs SLURM no longer knows (finished longer than ``MinJobAge`` ago) are absent. Pending array tasks
    not yet split off (``ArrayTaskId=3-15%7``) are expanded.
    """
    states: dict[tuple[str, int | None], TaskState] = {}
    for job in sorted(set(job_ids)):
        try:
            out = run_slurm(["scontrol", "-o", "show", "job", job], f"scontrol show job {job}")
        except SlurmError as e:
            if "Invalid job id" in str(e):
                continue
            raise
        for line in out.splitlines():
            fields = dict(_FIELDS.findall(line))
            if "JobState" not in fields:
                continue
            st = TaskState(fields["JobState"], fields.get("Reason", ""), fields.get("ExitCode", ""))
            task_spec = fields.get("ArrayTaskId")
            if task_spec:
                for t in expand_indices(task_spec):
                    states[(fields.get("ArrayJobId", job), t)] = st
            else:
                states[(fields.get("JobId", job), None)] = st
    return states
