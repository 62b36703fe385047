"""The SLURM backend on a real SLURM (see conftest.py): arrays, status, scancel + resubmit, sbatch quoting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.data.manifest import write_manifest
from unitwave.data.records import shard_of
from unitwave.engine.options import SlurmOptions
from unitwave.engine.sbatch import (
    SbatchResources,
    Shell,
    directive_value,
    lightning_sbatch_script,
    log_pattern,
    write_sbatch_script,
)
from unitwave.engine.slurm_client import compress_indices, expand_indices, job_states, plan_arrays
from unitwave.testing.fixtures import tone, write_good_inputs

#: a folder name that breaks any script that does not quote: spaces, both quotes, $(...), #, %
HOSTILE = "run dir 'q' \"dq\" $(touch PWNED) #x 50%"


def read(path: Path) -> bytes:
    return path.read_bytes()


def wait_jobs_end(job: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(s.active for s in job_states([job]).values()):
            return
        time.sleep(0.3)
    raise AssertionError(f"SLURM job {job} still running after {timeout} s")


# ---------------------------------------------------------------------------------------- no cluster needed
def test_generated_script_passes_hostile_values_through_unchanged(tmp_path):
    values = ["a b", "it's", 'say "hi"', "$(touch PWNED)", "`touch PWNED`", "x; touch PWNED", "#x", "50%", "\\n"]
    script = write_sbatch_script(
        tmp_path / HOSTILE / "job.sbatch",
        [sys.executable, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", *values, Shell('"$SHARD/4"')],
        job_name="t",
        output=log_pattern(tmp_path / HOSTILE / "logs", "t_%A_%a.out"),
        resources=SbatchResources(time="1:00", extra=(("--comment", "a 'b' \"c\""),)),
        setup_lines=[Shell("SHARD=$((1 + SLURM_ARRAY_TASK_ID))")],
        chdir=tmp_path,
    )
    text = script.read_text()
    assert '#SBATCH "--comment" "a \'b\' \\"c\\""' in text and "50%%/logs/t_%A_%a.out" in text
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "SLURM_ARRAY_TASK_ID": "2"}, check=True).stdout
    assert json.loads(out) == [*values, "3/4"]
    assert not list(tmp_path.rglob("PWNED"))


def test_directives_refuse_what_sbatch_cannot_hold():
    assert directive_value('a"b\\c') == '"a\\"b\\\\c"'
    with pytest.raises(ValueError, match="line break"):
        directive_value("a\nb")
    with pytest.raises(ValueError, match="backslash"):
        log_pattern(Path("/tmp/a\\b"), "x_%j.out")
    opts = SlurmOptions(slurm_extra="--account=abc --comment 'a b' -x node1")
    assert opts.extra_options() == [["--account=abc"], ["--comment", "a b"], ["-x", "node1"]]
    with pytest.raises(ValueError, match="sbatch options"):
        SlurmOptions(slurm_extra="account=abc").extra_options()


def test_array_planning_splits_at_max_array_size():
    assert compress_indices([5, 0, 1, 2, 7, 8]) == "0-2,5,7-8"
    assert expand_indices("0-2,5,7-9:2%4") == [0, 1, 2, 5, 7, 9]
    assert plan_arrays(range(4), 4) == [(0, [0, 1, 2, 3])]
    assert plan_arrays([0, 3, 4, 9, 10], 4) == [(0, [0, 3]), (4, [0]), (8, [1, 2])]


def test_missing_sbatch_says_which_backend_to_use(tmp_path, cli):
    write_good_inputs(tmp_path / "in", count=2)
    proc = cli("convert", tmp_path / "in", tmp_path / "out", "--backend", "slurm", env={"PATH": str(tmp_path)})
    assert proc.returncode == 2
    assert "sbatch not found" in proc.stderr and "--backend local" in proc.stderr


def test_array_tasks_run_from_the_saved_config_and_exit_by_their_own_shard(tmp_path, cli):
    """What each array task does, without SLURM: `unitwave convert --config RUN/config.yaml --shard k/N`."""
    src, out = tmp_path / "in", tmp_path / "out"
    write_good_inputs(src, count=6)
    cli("convert", src, out, "--shards", "3", "--workers", "1", check=True)
    reference, config = read(out / "manifest.jsonl"), read(out / "config.yaml")
    assert json.loads((out / "run.json").read_text())["command"] == "convert"
    for k in (1, 2):
        for p in (out / "shards").glob(f"{k}.*"):
            p.unlink()
    (out / "manifest.jsonl").unlink()
    first = cli("convert", "--config", out / "config.yaml", "--shard", "1/3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr  # its shard is done; shard 2 is another task's business
    assert not (out / "manifest.jsonl").exists() and read(out / "config.yaml") == config
    cli("convert", "--config", out / "config.yaml", "--shard", "2/3", cwd=tmp_path, check=True)
    assert read(out / "manifest.jsonl") == reference  # the last task merged


def test_lightning_script_generation_for_gpus(tmp_path):
    script = lightning_sbatch_script(
        tmp_path / "train.sbatch", [sys.executable, "-m", "unitwave", "lm", "train", "--config", str(tmp_path / "c.yaml")],
        logs_dir=tmp_path / "logs", job_name="lm-train", nodes=2, devices=4,
        resources=SbatchResources(partition="gpu", time="12:00:00", mem="64G", cpus_per_task=8),
    )
    text = script.read_text()
    for directive in ("--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4", "--signal=SIGUSR1@90",
                      "--partition=gpu", "--time=12:00:00", "--cpus-per-task=8", "--open-mode=append"):
        assert f'#SBATCH "{directive}"' in text
    assert "\nexec srun " in text and " lm train --config " in text


# ---------------------------------------------------------------------------------------- real SLURM
def test_lightning_script_starts_one_process_per_device(slurm, tmp_path):
    from unitwave.engine.slurm_client import submit

    code = "import os; print('rank', os.environ['SLURM_PROCID'], 'of', os.environ['SLURM_NTASKS'])"
    script = lightning_sbatch_script(tmp_path / "train.sbatch", [sys.executable, "-c", code],
                                     logs_dir=tmp_path / "logs", job_name="train", devices=2, gpus=False)
    job = submit(script)
    wait_jobs_end(job)
    log = (tmp_path / "logs" / f"train_{job}.out").read_text()
    assert sorted(line for line in log.splitlines() if line.startswith("rank")) == ["rank 0 of 2", "rank 1 of 2"]


def test_convert_on_slurm_arrays_matches_local(slurm, tmp_path, cli):
    src = tmp_path / "in"
    write_good_inputs(src, count=8)
    cli("convert", src, tmp_path / "ref", "--shards", "4", "--workers", "1", check=True)
    out = tmp_path / HOSTILE
    proc = cli("convert", src, out, "--backend", "slurm", "--shards", "4", "--max-parallel", "2", "--wait",
               "--time", "5:00", "--mem", "200M", check=True)
    assert "submitted to SLURM as job" in proc.stdout and "--array=0-3%2" in proc.stdout
    assert f"{out}/logs/convert_%A_%a.out" in proc.stdout
    assert "8 done, 0 skipped, 0 failed" in proc.stdout
    assert read(out / "manifest.jsonl") == read(tmp_path / "ref" / "manifest.jsonl")
    job = json.loads((out / "slurm.json").read_text())["submissions"][0]["job_id"]
    assert sorted(p.name for p in (out / "logs").iterdir()) == [f"convert_{job}_{k}.out" for k in range(4)]
    status = cli("status", out, check=True).stdout
    assert "4/4 shards done" in status and status.count("COMPLETED") == 4
    assert not list(tmp_path.rglob("PWNED"))


def _slow_shard_corpus(folder: Path, num_shards: int) -> tuple[Path, int]:
    """A manifest of 12 short files plus a long one last in a shard of the second array; that shard."""
    write_good_inputs(folder / "small", count=12, seconds=0.3)
    recs = [{"id": f"utt_{i:03d}", "audio_filepath": str(p)} for i, p in enumerate(sorted((folder / "small").iterdir()))]
    target = max(range(4, num_shards), key=lambda k: sum(shard_of(r["id"], num_shards) == k for r in recs))
    assert any(shard_of(r["id"], num_shards) == target for r in recs)
    long_id = next(f"long_{i}" for i in range(1000) if shard_of(f"long_{i}", num_shards) == target)
    second = tone(1.0, 48000, channels=2)
    sf.write(folder / "long.wav", np.tile(second, (150, 1)), 48000)  # 150 s: ~1 s to convert
    write_manifest(folder / "manifest.jsonl", [*recs, {"id": long_id, "audio_filepath": str(folder / "long.wav")}])
    return folder / "manifest.jsonl", target


def test_scancelled_task_shows_failed_and_resubmit_completes_it(slurm, tmp_path, cli, shard_writer):
    n = 6  # MaxArraySize is 4 here: shards 4-5 go in a second array (tasks 0-1, first shard 4)
    manifest, target = _slow_shard_corpus(tmp_path / "corpus", n)
    cli("convert", manifest, tmp_path / "ref", "--shards", str(n), "--workers", "1", check=True)
    out = tmp_path / "out"
    proc = cli("convert", manifest, out, "--backend", "slurm", "--shards", str(n), check=True)
    assert f"{n} shards submitted, not waited for" in proc.stdout and "unitwave resubmit" in proc.stdout
    record = json.loads((out / "slurm.json").read_text())
    assert [s["shards"] for s in record["submissions"]] == ["0-3", "4-5"]
    task = record["shards"][str(target)]
    assert task["task"] == target - 4

    pid = shard_writer(out, target, min_lines=1)  # mid-shard: short records committed, the long one in work
    os.kill(pid, signal.SIGSTOP)  # freeze it there, then kill it the way a user does
    assert not (out / "shards" / f"{target}.done").exists()
    committed = (out / "shards" / f"{target}.jsonl").read_bytes().count(b"\n")
    subprocess.run(["scancel", f"{task['job_id']}_{task['task']}"], check=True)
    for job in {s["job_id"] for s in record["submissions"]}:
        wait_jobs_end(job)

    status = cli("status", out, check=True).stdout
    row = next(line for line in status.splitlines() if line.strip().startswith(f"{target}  "))
    assert "failed" in row and "CANCELLED" in row
    assert f"logs/convert_{task['job_id']}_{task['task']}.out" in row
    assert f"{n - 1}/{n} shards done" in status and "unitwave resubmit" in status

    proc = cli("resubmit", out, "--wait", check=True)
    assert "all resubmitted shards done" in proc.stdout and f"(shards {target}," in proc.stdout
    assert read(out / "manifest.jsonl") == read(tmp_path / "ref" / "manifest.jsonl")
    entries = [json.loads(x) for x in (out / "shards" / f"{target}.jsonl").read_text().splitlines()]
    ids = [e["id"] for e in entries]
    assert len(ids) == len(set(ids)) and committed >= 1  # committed records were kept, none redone
    assert "nothing to resubmit" in cli("resubmit", out, check=True).stdout
