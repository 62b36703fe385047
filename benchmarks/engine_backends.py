"""Backend overhead: the same 2-shard ``unitwave convert`` on the local pool, SLURM arrays and Ray.

Baseline (same run): the local process pool with 2 workers. Every job runs through the CLI, as a user
runs it, into a fresh run folder, and must produce the same manifest as the baseline. Reported:
- local pool scaling, 1 -> 2 workers;
- SLURM (``--wait``) on a one-node SLURM on this machine: an existing one when ``sinfo`` answers, else
  a throwaway one started here (needs root and slurm-wlm + munge; its start-up is not counted);
- Ray, cold (``--ray-address local``: starts and stops a private Ray per job) and warm (the driver joins
  a Ray started once by this script: what a job pays on a running cluster).
Target: SLURM and warm Ray add only their fixed start-up costs (seconds), not per-record overhead.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import soundfile as sf
from common import report

FILES = 160
REPO = Path(__file__).resolve().parents[1]


def convert(src: Path, out: Path, *flags: str) -> float:
    """Wall seconds of ``unitwave convert SRC OUT --shards 2 FLAGS`` (fresh run folder)."""
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unitwave", "convert", str(src), str(out), "--shards", "2", *flags],
                   check=True, capture_output=True)
    return time.perf_counter() - t


def best(fn: tp.Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def _slurm_cluster(tmp: Path) -> tuple[tp.Any, str]:
    """(cluster to stop or None, why SLURM is unavailable or "")."""
    if shutil.which("sinfo") and subprocess.run(["sinfo"], capture_output=True, check=False).returncode == 0:
        return None, ""
    from unitwave.testing import slurm as module

    if module.missing_binaries():
        return None, f"SLURM not installed (missing {', '.join(module.missing_binaries())})"
    if os.geteuid() != 0:
        return None, "a throwaway SLURM needs root here"
    cluster = module.LocalSlurm(Path(tempfile.mkdtemp(prefix="uw-slurm-")), cpus=2).start()
    os.environ.update(cluster.env)
    return cluster, ""


def main() -> None:
    from unitwave.testing.fixtures import tone

    tmp = Path(tempfile.mkdtemp(prefix="uw-bench-"))
    src = tmp / "in"
    src.mkdir()
    for i in range(FILES):
        sf.write(src / f"f{i:04d}.flac", tone(4.0 + (i % 5), 44100, 100 + i, seed=i, channels=2), 44100)
    one = best(lambda: convert(src, tmp / "local1", "--workers", "1"), 2)
    two = best(lambda: convert(src, tmp / "local2", "--workers", "2"), 2)
    reference = (tmp / "local2" / "manifest.jsonl").read_bytes()
    metrics: dict[str, tp.Any] = {
        "files": FILES, "shards": 2,
        "local_1_worker_s": round(one, 2), "local_2_workers_s": round(two, 2),
        "local_speedup_1_to_2_workers": round(one / two, 2),
    }

    cluster, why = _slurm_cluster(tmp)
    try:
        if why:
            metrics["slurm"] = f"skipped: {why}"
        else:
            slurm = best(lambda: convert(src, tmp / "slurm", "--backend", "slurm", "--wait"), 2)
            assert (tmp / "slurm" / "manifest.jsonl").read_bytes() == reference
            metrics |= {"slurm_wait_s": round(slurm, 2), "slurm_vs_local_ratio": round(slurm / two, 2),
                        "slurm_overhead_s": round(slurm - two, 2)}
    finally:
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)

    try:
        import ray
    except ImportError:
        metrics["ray"] = "skipped: ray not installed (pip install 'unitwave[distributed]')"
    else:
        cold = convert(src, tmp / "ray_cold", "--backend", "ray", "--ray-address", "local", "--workers", "2")
        assert (tmp / "ray_cold" / "manifest.jsonl").read_bytes() == reference
        t = time.perf_counter()
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        ray_start = time.perf_counter() - t
        address = ray.get_runtime_context().gcs_address
        try:
            warm = best(lambda: convert(src, tmp / "ray_warm", "--backend", "ray", "--ray-address", address), 2)
            assert (tmp / "ray_warm" / "manifest.jsonl").read_bytes() == reference
        finally:
            ray.shutdown()
        metrics |= {"ray_cold_s": round(cold, 2), "ray_cold_vs_local_ratio": round(cold / two, 2),
                    "ray_cluster_start_s": round(ray_start, 2),
                    "ray_warm_s": round(warm, 2), "ray_warm_vs_local_ratio": round(warm / two, 2),
                    "ray_warm_overhead_s": round(warm - two, 2)}
    report("engine_backends", metrics,
           "same manifest on every backend; SLURM and warm-Ray overhead = fixed start-up seconds")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
