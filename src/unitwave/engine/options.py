"""Engine options shared by every per-record command (``--workers``, ``--shards``, ``--shard k/N``...).

Backend-specific options are grouped in their own frozen dataclasses (:class:`SlurmOptions`,
:class:`RayOptions`) nested in :class:`EngineConfig` and flattened on the command line, so a stage's
config composes one ``EngineConfig`` and gets every backend's flags (``--partition``, ``--ray-address``).
In YAML they are nested: ``engine: {backend: slurm, slurm: {partition: gpu, max_parallel: 7}}``.
"""

from __future__ import annotations

import dataclasses as dc
import os
import shlex
import typing as tp

import tyro


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


@dc.dataclass(frozen=True)
class SlurmOptions:
    """SLURM array jobs (``--backend slurm``): one array task per shard."""

    max_parallel: int | None = None
    """Most array tasks running at once (sbatch --array=0-15%P); default: no limit."""
    partition: str | None = None
    """sbatch --partition."""
    gres: str | None = None
    """sbatch --gres per task, e.g. gpu:1."""
    time: str | None = None
    """sbatch --time per task, e.g. 12:00:00."""
    mem: str | None = None
    """sbatch --mem per task, e.g. 16G."""
    cpus_per_task: int | None = None
    """sbatch --cpus-per-task (default: --torch-threads)."""
    slurm_extra: str = ""
    """More sbatch options, as #SBATCH lines (never run as shell); note the '=':
    --slurm-extra='--account=abc --qos=high'."""
    wait: bool = False
    """Wait for the array to finish, then merge (default: return after submission)."""

    def extra_options(self) -> list[list[str]]:
        """``slurm_extra`` as sbatch options, one list per option (the option and its values).

        ValueError when it does not start with an option (``-...``), with what to write instead.
        """
        try:
            tokens = shlex.split(self.slurm_extra)
        except ValueError as e:
            raise ValueError(f"--slurm-extra {self.slurm_extra!r}: {e}") from None
        options: list[list[str]] = []
        for tok in tokens:
            if tok.startswith("-"):
                options.append([tok])
            elif options:
                options[-1].append(tok)
            else:
                raise ValueError(
                    f"--slurm-extra must hold sbatch options such as '--account=abc --qos=high', got {tok!r}"
                )
        return options


@dc.dataclass(frozen=True)
class RayOptions:
    """Ray (``--backend ray``): one Ray task (or actor call) per shard."""

    ray_address: str = "local"
    """'local' starts a private Ray on this machine (--workers CPUs); 'auto' joins the running cluster;
    or a cluster address (ray://head:10001, head:6379)."""
    ray_num_cpus: float = 1.0
    """CPUs Ray reserves per shard task."""
    ray_num_gpus: float = 0.0
    """GPUs Ray reserves per shard task (fractions share a GPU)."""
    ray_max_retries: int = 3
    """Times a shard is retried when its worker process dies (a retry resumes the shard)."""
    ray_mode: tp.Literal["auto", "tasks", "actors"] = "auto"
    """'actors' run setup() once per actor (model loading); 'auto': actors when the stage has a setup()."""


@dc.dataclass(frozen=True)
class EngineConfig:
    """How a per-record stage runs: shards, workers, backend, failure budget."""

    workers: int = 0
    """Worker processes for the local backend; Ray's CPUs with --ray-address local (0: one per CPU core)."""
    shards: int | None = None
    """Shard count on the first run (default: from workers and input size); pinned in run.json afterwards."""
    shard: str | None = None
    """Run exactly one shard, 'k/N' (what a SLURM array task or a Ray task runs)."""
    backend: tp.Literal["local", "slurm", "ray"] = "local"
    """Where shards run: a local process pool, SLURM array tasks, or Ray tasks."""
    max_failures: int = 0
    """Failed records allowed before the exit status says failure."""
    torch_threads: int = 1
    """Compute threads per worker process."""
    absolute_paths: bool = False
    """Write absolute audio paths in the output manifest (default: relative to its folder when inside it)."""
    progress: bool = True
    """Show a progress bar (only when stderr is a terminal)."""
    slurm: tp.Annotated[SlurmOptions, tyro.conf.OmitArgPrefixes] = SlurmOptions()
    ray: tp.Annotated[RayOptions, tyro.conf.OmitArgPrefixes] = RayOptions()

    def check(self) -> EngineConfig:
        """ValueError naming the flag for values that cannot work; returns self."""
        problems = [
            (self.workers >= 0, f"--workers must be >= 0 (0: one per CPU core), got {self.workers}"),
            (self.shards is None or self.shards >= 1, f"--shards must be >= 1, got {self.shards}"),
            (self.max_failures >= 0, f"--max-failures must be >= 0, got {self.max_failures}"),
            (self.torch_threads >= 1, f"--torch-threads must be >= 1, got {self.torch_threads}"),
            (self.slurm.max_parallel is None or self.slurm.max_parallel >= 1,
             f"--max-parallel must be >= 1, got {self.slurm.max_parallel}"),
        ]
        for ok, message in problems:
            if not ok:
                raise ValueError(message)
        self.parsed_shard()
        return self

    def resolved_workers(self) -> int:
        return self.workers if self.workers > 0 else default_workers()

    def for_model(self, device: str) -> EngineConfig:
        """These options for a stage whose workers each load a model, when ``--workers`` is left at 0:
        one worker on a GPU (model copies on one GPU only compete), and on CPU one worker using every
        core (each extra process would load its own copy and pay the imports again for no gain)."""
        if self.workers != 0:
            return self
        if device.startswith("cuda"):
            return dc.replace(self, workers=1)
        return dc.replace(self, workers=1, torch_threads=max(self.torch_threads, default_workers()))

    def parsed_shard(self) -> tuple[int, int] | None:
        """``--shard k/N`` as ``(k, N)``; ValueError naming the flag on bad input."""
        if self.shard is None:
            return None
        try:
            k_s, n_s = self.shard.split("/")
            k, n = int(k_s), int(n_s)
        except ValueError:
            raise ValueError(f"--shard must look like k/N (e.g. 3/16), got {self.shard!r}") from None
        if n < 1 or not 0 <= k < n:
            raise ValueError(f"--shard {self.shard}: need 0 <= k < N and N >= 1")
        return k, n


def default_shard_count(num_records: int, workers: int) -> int:
    """About 4 shards per worker (so one slow shard does not leave the other workers idle at the end),
    none much smaller than 25 records, at least one per worker, never more than records."""
    return max(1, min(num_records, max(workers, min(num_records // 25, 4 * workers))))
