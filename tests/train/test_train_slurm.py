"""Training commands as SLURM jobs (``--backend slurm``): the generated sbatch script of ``lm train`` and
``vocoder train`` (quoting, srun, one task per device), and a tiny ``lm train`` run on a real SLURM."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import typing as tp
from pathlib import Path

import pytest

from unitwave.config import from_dict, read_yaml
from unitwave.lm.commands import LMTrainConfig
from unitwave.testing.unit_corpus import write_unit_corpus
from unitwave.train.launch import local_config, write_train_script
from unitwave.vocoder.commands import VocoderTrainConfig

#: a folder name that breaks any script that does not quote: spaces, both quotes, $(...), #, %
HOSTILE = "run dir 'q' \"dq\" $(touch PWNED) #x 50%"
SLURM = {"backend": "slurm", "slurm": {"partition": "gpu", "time": "12:00:00", "slurm_extra": "--account=abc --qos high"}}


def configs(tmp_path: Path) -> dict[str, tp.Any]:
    out = tmp_path / HOSTILE
    train = {"devices": 4, "num_nodes": 2}
    return {
        "lm train": from_dict(LMTrainConfig, {"units": str(tmp_path / "u.txt"), "output_dir": str(out / "lm"),
                                              "train": train, "launch": SLURM}),
        "vocoder train": from_dict(VocoderTrainConfig, {"units": str(tmp_path / "c.jsonl"), "output_dir": str(out / "voc"),
                                                        "train": train, "launch": SLURM}),
    }


@pytest.mark.parametrize("command", ["lm train", "vocoder train"])
def test_generated_script_runs_the_command_on_its_saved_config(command, tmp_path):
    cfg = configs(tmp_path)[command]
    out = Path(cfg.output_dir)
    script, log, name = write_train_script(cfg, out, cfg.train)
    assert (script, name) == (out.absolute() / "train.sbatch", command)
    text = script.read_text()
    for directive in ("--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4", "--partition=gpu", "--time=12:00:00",
                      "--signal=SIGUSR1@90", f"--job-name=unitwave-{command.replace(' ', '-')}", "--account=abc"):
        assert f'#SBATCH "{directive}"' in text, directive
    assert '#SBATCH "--qos" "high"' in text
    assert str(log).endswith(f"logs/unitwave-{command.replace(' ', '-')}_%j.out")
    # the job reruns the command on the saved config, which says backend: local (it trains, not submits)
    saved = read_yaml(out / "config.yaml")
    assert saved["launch"]["backend"] == "local" and saved["launch"]["slurm"]["partition"] == "gpu"
    assert from_dict(type(cfg), saved) == local_config(cfg)
    # run the script with an `srun` that prints its arguments: the command arrives exactly, nothing executes
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    (fake / "srun").chmod(0o755)
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, cwd=tmp_path, check=True,
                          env={"PATH": f"{fake}:/usr/bin:/bin"})
    expected = [sys.executable, "-m", "unitwave", *command.split(), "--config", str(out.absolute() / "config.yaml")]
    assert proc.stdout.splitlines() == expected
    assert not list(tmp_path.rglob("PWNED"))
    exec_line = text.strip().splitlines()[-1]
    assert exec_line.startswith("exec srun ") and shlex.split(exec_line)[2:] == expected


def test_cpu_jobs_ask_for_no_gpus_and_bad_options_are_named(tmp_path, cli):
    cfg = configs(tmp_path)["lm train"]
    cpu = from_dict(LMTrainConfig, {"units": str(tmp_path / "u.txt"), "output_dir": str(tmp_path / "cpu"),
                                    "train": {"device": "cpu", "devices": 2}, "launch": SLURM})
    script, _, _ = write_train_script(cpu, cpu.output_dir, cpu.train)
    assert "--gres" not in script.read_text() and '#SBATCH "--ntasks-per-node=2"' in script.read_text()
    (tmp_path / "u.txt").write_text("1 2 3\n4 5 6\n")
    proc = cli("lm", "train", tmp_path / "u.txt", tmp_path / "o", "--backend", "slurm", env={"PATH": str(tmp_path)})
    assert proc.returncode == 2 and "sbatch not found on PATH" in proc.stderr and "--backend local" in proc.stderr
    proc = cli("lm", "train", tmp_path / "u.txt", tmp_path / "o", "--backend", "slurm", "--slurm-extra", "account=x")
    assert proc.returncode == 2 and "--slurm-extra must hold sbatch options" in proc.stderr
    assert cfg.launch.slurm.wait is False


def test_lm_train_completes_as_a_slurm_job(slurm, tmp_path, cli):
    corpus = write_unit_corpus(tmp_path / "units", "synth", num_utterances=60, k=12, num_words=8, seed=1)
    out = tmp_path / "lm run"
    proc = cli("lm", "train", corpus.units_txt, out, "--backend", "slurm", "--wait", "--device", "cpu",
               "--epochs", "2", "--embedding-dim", "8", "--hidden-size", "16", "--num-layers", "1",
               "--batch-size", "16", "--no-progress-bar", check=True, env={"OMP_NUM_THREADS": "1"})
    job = json.loads((out / "slurm_job.json").read_text())
    assert f"submitted to SLURM as job {job['job_id']}" in proc.stdout and "ended COMPLETED" in proc.stdout
    log = Path(job["log"]).read_text()
    assert "epoch 2/2" in log and "validation perplexity" in log
    card = json.loads((out / "model" / "model_card.json").read_text())
    assert card["metrics"]["epochs"] == 2 and len(json.loads((out / "training_history.json").read_text())) == 2
    assert read_yaml(out / "config.yaml")["launch"]["backend"] == "local"


def test_lm_grid_runs_as_a_slurm_array(slurm, tmp_path, cli):
    """The grid is a per-record stage: each grid point is an array task (the engine's SLURM backend)."""
    corpus = write_unit_corpus(tmp_path / "units", "synth", num_utterances=60, k=12, num_words=8, seed=1)
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: {epochs: 1, batch_size: 16, num_layers: 1, embedding_dim: 8, device: cpu, "
                    "progress_bar: false}\ngrid: {hidden_size: [8, 16]}\n")
    out = tmp_path / "grid"
    proc = cli("lm", "grid", grid, corpus.units_txt, out, "--backend", "slurm", "--wait", check=True,
               env={"OMP_NUM_THREADS": "1"})
    assert "submitted to SLURM as job" in proc.stdout and "2 done, 0 skipped, 0 failed" in proc.stdout
    board = (out / "leaderboard.csv").read_text().splitlines()
    assert len(board) == 3 and {row.split(",")[1] for row in board[1:]} == {"lstm_h8", "lstm_h16"}
