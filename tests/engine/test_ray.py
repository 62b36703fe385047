"""The Ray backend on a local Ray cluster (one per module): same output, killed workers, a killed driver."""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from unitwave.engine.options import EngineConfig, RayOptions
from unitwave.engine.runner import run_stage
from unitwave.testing.crash import kill_when
from unitwave.testing.fixtures import write_good_inputs
from unitwave.testing.stages import EchoStage

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'unitwave[distributed]' (make test does)")

#: setup() calls in this process (a module global: an actor's process sets up once, a task per task)
SETUPS_IN_PROCESS = 0


class PidStage(EchoStage):
    """EchoStage that also records the worker's pid and how often that process ran setup()."""

    name = "pid-echo"

    def setup(self) -> None:
        global SETUPS_IN_PROCESS
        SETUPS_IN_PROCESS += 1
        super().setup()

    def process(self, batch: list[dict]) -> list[list[dict]]:
        extra = {"pid": os.getpid(), "process_setups": SETUPS_IN_PROCESS}
        return [[{**r, **extra} for r in outs] for outs in super().process(batch)]


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster shared by this module's tests; yields its address for other drivers."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import test modules
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def records(n: int) -> list[dict]:
    return [{"id": f"r{i:04d}", "audio_filepath": f"/x/{i}.wav", "duration": 1.0} for i in range(n)]


def ray_engine(mode: str = "auto", **kw) -> EngineConfig:
    return EngineConfig(backend="ray", progress=False, ray=RayOptions(ray_mode=mode), **kw)


def shard_ids(out: Path) -> list[str]:
    return [json.loads(x)["id"] for p in sorted((out / "shards").glob("*.jsonl")) for x in p.read_text().splitlines()]


def test_convert_on_ray_matches_local(ray_cluster, tmp_path):
    from unitwave.prepare.convert import ConvertConfig, run

    src = tmp_path / "in"
    write_good_inputs(src, count=8)
    local = run(ConvertConfig(src, tmp_path / "ref", engine=EngineConfig(workers=1, shards=2, progress=False)))
    on_ray = run(ConvertConfig(src, tmp_path / "out", engine=ray_engine(shards=2)))
    assert local.exit_code == on_ray.exit_code == 0 and on_ray.processed == 8
    assert (tmp_path / "out" / "manifest.jsonl").read_bytes() == (tmp_path / "ref" / "manifest.jsonl").read_bytes()


def test_actors_run_setup_once_each(ray_cluster, tmp_path):
    s = run_stage(PidStage(), lambda: iter(records(24)), tmp_path, ray_engine("auto", shards=6, workers=2))
    assert s.complete and s.exit_code == 0
    out = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert len(out) == 24 and len({r["pid"] for r in out}) == 2  # two actors ran the six shards
    assert {r["process_setups"] for r in out} == {1}


@pytest.mark.parametrize("mode", ["tasks", "actors"])
def test_worker_killed_mid_shard_is_retried(ray_cluster, tmp_path, shard_writer, mode):
    recs = records(30)
    stage = PidStage(sleep_seconds=0.05)
    with cf.ThreadPoolExecutor(1) as pool:
        driver = pool.submit(run_stage, stage, lambda: iter(recs), tmp_path, ray_engine(mode, shards=2))
        killed = shard_writer(tmp_path, 0, min_lines=3)
        os.kill(killed, signal.SIGKILL)
        s = driver.result(timeout=120)
    assert s.complete and s.exit_code == 0 and not s.failed_shards
    out = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in out] == [r["id"] for r in recs]
    ids = shard_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 30  # nothing committed twice, nothing lost
    assert killed in {r["pid"] for r in out} and len({r["pid"] for r in out}) >= 2


def test_driver_killed_then_rerun_resumes(ray_cluster, tmp_path, cli):
    src = tmp_path / "in"
    write_good_inputs(src, count=40, seconds=1.0)
    cli("convert", src, tmp_path / "ref", "--shards", "2", "--workers", "1", check=True)
    out = tmp_path / "out"
    args = ["convert", src, out, "--backend", "ray", "--ray-address", ray_cluster, "--shards", "2"]
    assert kill_when(args, out, committed=4), "the driver finished before it could be killed"
    assert not (out / "manifest.jsonl").exists()
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] >= 4 and summary["processed"] > 0 and summary["processed"] + summary["skipped"] == 40
    assert (out / "manifest.jsonl").read_bytes() == (tmp_path / "ref" / "manifest.jsonl").read_bytes()
    ids = shard_ids(out)
    assert len(ids) == len(set(ids)) == 40
