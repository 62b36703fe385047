"""Where a training command runs: in this process, or as a SLURM job in Lightning's SLURM environment.

A training command composes :class:`LaunchConfig` next to its :class:`~unitwave.train.config.TrainConfig`::

    train: tp.Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig()
    launch: tp.Annotated[LaunchConfig, tyro.conf.OmitArgPrefixes] = LaunchConfig()

and starts with ``if cfg.launch.backend == "slurm": return submit_training(cfg, cfg.output_dir, cfg.train)``.
So ``unitwave <model> train ... --backend slurm --num-nodes 2 --devices 4 --partition gpu --time 12:00:00``
does not train here: it saves the resolved config (with ``backend: local``) as ``<out>/config.yaml``,
writes ``<out>/train.sbatch`` whose ``srun`` starts one process per device running
``python -m unitwave <model> train --config <out>/config.yaml`` (every argument shell-quoted), submits
it, records the job in ``<out>/slurm_job.json`` and prints the job id and the log path
(``<out>/logs/<job name>_<job id>.out``). ``--wait`` waits for the job and exits with its outcome.

The job runs the same command in SLURM's environment: Lightning reads ``SLURM_NTASKS``/``SLURM_PROCID``
and the trainer is built with ``--num-nodes`` x ``--devices``; rerunning the script (or requeueing the
job) resumes from ``latest.ckpt`` (``--resume auto``). The resource flags (:class:`SlurmJobOptions`) are
named like the engine's SLURM backend flags and go through the same sbatch writer and quoting
(:mod:`unitwave.engine.sbatch`).
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import shlex
import time
import typing as tp
from pathlib import Path

import tyro

from unitwave.config import ConfigError
from unitwave.data.atomic import atomic_write_text
from unitwave.engine.options import SlurmOptions

if tp.TYPE_CHECKING:
    from unitwave.train.config import TrainConfig

SCRIPT_NAME = "train.sbatch"
JOB_RECORD = "slurm_job.json"
#: seconds between two looks at the queue with --wait
POLL_SECONDS = 2.0


@dc.dataclass(frozen=True)
class SlurmJobOptions:
    """What the training job asks SLURM for (--nodes and --ntasks-per-node come from --num-nodes and --devices)."""

    partition: str | None = None
    """sbatch --partition."""
    gres: str | None = None
    """sbatch --gres per node (default: gpu:<devices>, none with --device cpu)."""
    time: str | None = None
    """sbatch --time, e.g. 12:00:00 (Lightning requeues the job 90 s before it ends; the requeued job resumes from latest.ckpt)."""
    mem: str | None = None
    """sbatch --mem per node, e.g. 64G."""
    cpus_per_task: int | None = None
    """sbatch --cpus-per-task: CPUs of each training process (DataLoader workers); default: the cluster's."""
    slurm_extra: str = ""
    """More sbatch options, as #SBATCH lines (never run as shell); note the '=': --slurm-extra='--account=abc --qos=high'."""
    wait: bool = False
    """Wait for the job to end and exit with its outcome (default: return after submission)."""

    def resources(self) -> tp.Any:
        """The job's :class:`~unitwave.engine.sbatch.SbatchResources` (ConfigError for a bad --slurm-extra)."""
        from unitwave.engine.sbatch import SbatchResources

        as_engine = SlurmOptions(partition=self.partition, gres=self.gres, time=self.time, mem=self.mem,
                                 cpus_per_task=self.cpus_per_task, slurm_extra=self.slurm_extra)
        try:
            return SbatchResources.from_options(as_engine)
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dc.dataclass(frozen=True)
class LaunchConfig:
    """Run the training here, or submit it as a SLURM job (multi-GPU / multi-node with --devices, --num-nodes)."""

    backend: tp.Literal["local", "slurm"] = "local"
    """local: train in this process; slurm: write <out>/train.sbatch (srun, one process per device), submit it and return (or --wait)."""
    slurm: tp.Annotated[SlurmJobOptions, tyro.conf.OmitArgPrefixes] = SlurmJobOptions()


@dc.dataclass
class SlurmTrainJob:
    """What :func:`submit_training` did; ``exit_code`` is what the CLI exits with."""

    job_id: str
    script: Path
    log: Path
    state: str = "SUBMITTED"  # the final SLURM state after --wait

    @property
    def exit_code(self) -> int:
        return 0 if self.state in ("SUBMITTED", "COMPLETED") else 1


def _launch_field(cfg: tp.Any) -> str:
    """The name of ``cfg``'s :class:`LaunchConfig` field (ValueError when it has none)."""
    for f in dc.fields(cfg):
        if isinstance(getattr(cfg, f.name), LaunchConfig):
            return f.name
    raise ValueError(f"{type(cfg).__name__} has no LaunchConfig field: it cannot be submitted to SLURM")


def local_config(cfg: tp.Any) -> tp.Any:
    """``cfg`` with ``backend: local``: what the job runs (it must train, not submit again)."""
    name = _launch_field(cfg)
    return dc.replace(cfg, **{name: dc.replace(getattr(cfg, name), backend="local")})


def job_name(command: str) -> str:
    """``unitwave-lm-train`` for ``lm train``."""
    return "unitwave-" + "-".join(command.split())


def write_train_script(cfg: tp.Any, out_dir: Path, train: TrainConfig) -> tuple[Path, Path, str]:
    """Save ``<out>/config.yaml`` (backend local) and write ``<out>/train.sbatch``.

    Returns ``(script, log file pattern with %j, command name)``. GPUs are requested (``--gres=gpu:D``
    unless ``--gres`` is given) except with ``--device cpu``.
    """
    from unitwave.commands import command_for_config
    from unitwave.config import save_config
    from unitwave.engine.sbatch import lightning_sbatch_script, unitwave_argv

    launch: LaunchConfig = getattr(cfg, _launch_field(cfg))
    resources = launch.slurm.resources()
    if train.device == "mps":
        raise ConfigError("--backend slurm with --device mps: SLURM nodes have no MPS; use --device cuda or cpu")
    command = command_for_config(type(cfg))
    out = Path(out_dir).absolute()
    config_path = save_config(local_config(cfg), out)
    name = job_name(command)
    logs = out / "logs"
    script = lightning_sbatch_script(
        out / SCRIPT_NAME,
        [*unitwave_argv(command), "--config", str(config_path)],
        logs_dir=logs,
        job_name=name,
        nodes=train.num_nodes,
        devices=train.devices,
        gpus=train.device != "cpu",
        resources=resources,
    )
    return script, logs / f"{name}_%j.out", command


def submit_training(cfg: tp.Any, out_dir: Path, train: TrainConfig) -> SlurmTrainJob:
    """Submit ``cfg``'s command as one SLURM job (see the module docstring); wait when ``--wait``.

    Args:
        cfg: the command's resolved config; it has a :class:`LaunchConfig` field.
        out_dir: the run folder (config, script, logs, job record).
        train: the command's TrainConfig (nodes, devices, device).
    """
    from unitwave.engine.slurm_client import slurm_command, submit

    train.check()
    slurm_command("sbatch")  # before writing anything: says which backend to use instead
    launch: LaunchConfig = getattr(cfg, _launch_field(cfg))
    script, pattern, command = write_train_script(cfg, out_dir, train)
    job_id = submit(script)
    log = Path(str(pattern).replace("%j", job_id))
    record = {"command": command, "job_id": job_id, "script": str(script), "log": str(log),
              "nodes": train.num_nodes, "devices": train.devices,
              "submitted": _dt.datetime.now().isoformat(timespec="seconds")}
    atomic_write_text(script.parent / JOB_RECORD, json.dumps(record, indent=2) + "\n")
    print(f"{command}: submitted to SLURM as job {job_id} ({train.num_nodes} node(s) x {train.devices} "
          f"device(s)); log: {log}", flush=True)
    print(f"{command}: script {script}; follow with `squeue -j {job_id}` or `tail -f {shlex.quote(str(log))}`",
          flush=True)
    job = SlurmTrainJob(job_id, script, log)
    if launch.slurm.wait:
        job.state = wait_for_job(job_id, Path(out_dir))
        print(f"{command}: SLURM job {job_id} ended {job.state}; log: {log}", flush=True)
    return job


def wait_for_job(job_id: str, out_dir: Path, poll_seconds: float = POLL_SECONDS) -> str:
    """Block until ``job_id`` leaves the queue; its final state (``COMPLETED``, ``FAILED``...).

    A job SLURM has already forgotten (finished longer than ``MinJobAge`` ago) counts as ``COMPLETED``
    when the run folder has ``checkpoints/final.ckpt`` (the training finished), else ``UNKNOWN``.
    """
    from unitwave.engine.slurm_client import job_states
    from unitwave.train.checkpoint import CHECKPOINT_DIR, FINAL

    while True:
        state = job_states([job_id]).get((job_id, None))
        if state is None:
            return "COMPLETED" if (Path(out_dir) / CHECKPOINT_DIR / FINAL).is_file() else "UNKNOWN"
        if not state.active:
            return state.state
        time.sleep(poll_seconds)
