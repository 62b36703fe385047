"""sbatch scripts, written so that no path or value can ever be run as shell code.

:func:`write_sbatch_script` is the one generator: an array of shard tasks (the SLURM backend), a single
job, or a multi-process training job launched by ``srun`` (:func:`lightning_sbatch_script`: Lightning
reads ``SLURM_NTASKS``/``SLURM_PROCID``... and needs ``--ntasks-per-node`` = devices).

Quoting, in the two places values go:
- the command line: every argument through :func:`shlex.quote`, except :class:`Shell` fragments, which
  only code builds (``"$SHARD/16"``), never data;
- ``#SBATCH`` lines: sbatch reads them with its own small parser (not a shell): double quotes group, a
  backslash escapes the next character, an unquoted ``#`` starts a comment. :func:`directive_value`
  writes every value double-quoted with ``\\`` and ``"`` escaped. Newlines cannot be written there and
  are refused. In log file names ``%`` is a pattern character (written ``%%``) and a backslash turns all
  patterns off (refused, with what to do).
"""

from __future__ import annotations

import dataclasses as dc
import os
import shlex
import sys
import typing as tp
from pathlib import Path

from unitwave.data.atomic import atomic_path
from unitwave.engine.options import SlurmOptions


class Shell(str):
    """A fragment of trusted shell code written into a script as is (built by code, never from data)."""


@dc.dataclass(frozen=True)
class SbatchResources:
    """What one job (or each array task) asks SLURM for; None leaves the cluster's default."""

    partition: str | None = None
    gres: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    nodes: int | None = None
    ntasks_per_node: int | None = None
    #: more sbatch options, each ``[option, values...]`` (e.g. ``[["--account=abc"], ["--qos", "high"]]``)
    extra: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def from_options(cls, opts: SlurmOptions, default_cpus: int | None = None) -> SbatchResources:
        """The per-task resources of ``--partition --gres --time --mem --cpus-per-task --slurm-extra``."""
        return cls(
            partition=opts.partition,
            gres=opts.gres,
            time=opts.time,
            mem=opts.mem,
            cpus_per_task=opts.cpus_per_task or default_cpus,
            extra=tuple(tuple(o) for o in opts.extra_options()),
        )

    def options(self) -> list[list[str]]:
        """sbatch options as ``[[option, values...], ...]``, in a stable order."""
        named = [
            ("--partition", self.partition),
            ("--gres", self.gres),
            ("--time", self.time),
            ("--mem", self.mem),
            ("--cpus-per-task", self.cpus_per_task),
            ("--nodes", self.nodes),
            ("--ntasks-per-node", self.ntasks_per_node),
        ]
        out = [[f"{flag}={value}"] for flag, value in named if value is not None]
        return out + [list(o) for o in self.extra]


def directive_value(value: str) -> str:
    """``value`` as one argument of an ``#SBATCH`` line (sbatch's own parser, not a shell)."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"{value!r}: a line break cannot be written into an #SBATCH line")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def log_pattern(folder: Path, name: str) -> str:
    """A SLURM log file name pattern ``<folder>/<name>`` (``name`` may use %A, %a, %j).

    ``%`` in the folder is doubled (a literal percent sign); a backslash in it would switch off every
    pattern in the name, so it is refused with what to do.
    """
    text = str(Path(folder).absolute())
    if "\\" in text:
        raise ValueError(
            f"{text}: SLURM log names cannot contain a backslash (it turns off %A/%a); "
            "use an output folder without one"
        )
    return text.replace("%", "%%") + "/" + name


def render_command(argv: tp.Sequence[str]) -> str:
    """A shell command line: data arguments quoted, :class:`Shell` fragments as written."""
    if not argv:
        raise ValueError("an sbatch script needs a command")
    return " ".join(a if isinstance(a, Shell) else shlex.quote(str(a)) for a in argv)


def unitwave_argv(command: str) -> list[str]:
    """``python -m unitwave <command words>`` with this interpreter, so tasks use this environment."""
    return [sys.executable, "-m", "unitwave", *command.split()]


def write_sbatch_script(
    path: Path,
    argv: tp.Sequence[str],
    *,
    job_name: str,
    output: str,
    resources: SbatchResources = SbatchResources(),
    array: str | None = None,
    chdir: Path | None = None,
    srun: bool = False,
    signal: str | None = None,
    setup_lines: tp.Sequence[Shell] = (),
    comments: tp.Sequence[str] = (),
) -> Path:
    """Write an sbatch script that runs ``argv`` (atomically; executable).

    Args:
        path: where the script goes.
        argv: the command; plain strings are quoted, :class:`Shell` items written as is.
        job_name: ``--job-name``.
        output: ``--output`` pattern from :func:`log_pattern` (stdout and stderr both go there).
        resources: partition, GPUs, time, memory, CPUs, nodes/tasks, extra options.
        array: a default ``--array`` spec (``0-15%7``); the submit command line may override it.
        chdir: the working directory of the job (relative paths in configs resolve against it);
            default: the current directory.
        srun: launch with ``srun`` (one process per task: multi-GPU / multi-node training).
        signal: ``--signal``, e.g. ``SIGUSR1@90`` (Lightning requeues a job that gets it).
        setup_lines: trusted shell lines run before the command (e.g. computing ``$SHARD``).
        comments: lines written as ``#`` comments at the top (what the script is, how to submit it).
    """
    lines = ["#!/bin/bash"]
    lines += [f"# {line}".rstrip() for comment in comments for line in comment.splitlines()]
    directives: list[list[str]] = [[f"--job-name={job_name}"], [f"--output={output}"]]
    directives.append([f"--chdir={Path(chdir or os.getcwd()).absolute()}"])
    if array is not None:
        directives.append([f"--array={array}"])
    if signal is not None:
        directives.append([f"--signal={signal}"])
    directives += resources.options()
    for option in directives:
        if not option[0].startswith("-"):
            raise ValueError(f"not an sbatch option: {option[0]!r}")
        lines.append("#SBATCH " + " ".join(directive_value(v) for v in option))
    lines.append("set -euo pipefail")
    lines += list(setup_lines)
    command = render_command(argv)
    lines.append(f"exec srun {command}" if srun else f"exec {command}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.chmod(0o755)
    return path


def lightning_sbatch_script(
    path: Path,
    argv: tp.Sequence[str],
    *,
    logs_dir: Path,
    job_name: str,
    nodes: int = 1,
    devices: int = 1,
    gpus: bool = True,
    resources: SbatchResources = SbatchResources(),
    chdir: Path | None = None,
) -> Path:
    """An sbatch script for Lightning training on ``nodes`` x ``devices`` (its SLURM environment).

    Lightning's ``SLURMEnvironment`` wants one process per device started by ``srun``: so
    ``--nodes=nodes``, ``--ntasks-per-node=devices``, ``--gres=gpu:devices`` (when ``gpus`` and no
    gres is given) and ``srun`` in front of ``argv``; the trainer must be built with
    ``num_nodes=nodes, devices=devices``. ``--signal=SIGUSR1@90`` lets Lightning requeue the job
    before its time limit; the log is appended to (``--open-mode=append``) so a requeued job keeps it.
    """
    Path(logs_dir).mkdir(parents=True, exist_ok=True)  # SLURM does not create the log folder
    gres = resources.gres or (f"gpu:{devices}" if gpus else None)
    res = dc.replace(
        resources,
        nodes=nodes,
        ntasks_per_node=devices,
        gres=gres,
        extra=(*resources.extra, ("--open-mode=append",)),
    )
    return write_sbatch_script(
        path,
        argv,
        job_name=job_name,
        output=log_pattern(logs_dir, f"{job_name}_%j.out"),
        resources=res,
        chdir=chdir,
        srun=True,
        signal="SIGUSR1@90",
        comments=[f"Generated by unitwave: {nodes} node(s) x {devices} device(s), one process per device.",
                  f"Submit with: sbatch {shlex.quote(str(Path(path).absolute()))}"],
    )
