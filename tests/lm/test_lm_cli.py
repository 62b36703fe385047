"""``unitwave lm train|score|sample|grid`` through the CLI on a synthetic unit corpus.

Most calls go through ``unitwave.cli.main`` in this process (the real parsing and commands, without
paying Lightning's import per call); the grid runs as a subprocess with a pool of two workers.
"""

from __future__ import annotations

import csv
import json

import pytest

from unitwave.cli import main
from unitwave.testing.unit_corpus import write_unit_corpus

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SMALL = ("--embedding-dim", "32", "--hidden-size", "96", "--num-layers", "1", "--dropout", "0", "--batch-size", "16",
         "--lr", "0.01", "--warmup-steps", "5", "--val-ratio", "0.1", "--no-progress-bar")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_unit_corpus(tmp_path_factory.mktemp("units"), "synth", num_utterances=240, k=30, num_words=20,
                             words_per_utterance=(3, 8), seed=3)


def unitwave(capsys, *args) -> str:
    """Run ``unitwave ARGS`` in this process; returns its stdout."""
    import torch

    torch.set_num_threads(1)
    main([str(a) for a in args])
    return capsys.readouterr().out


def failing(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_train_beats_count_baselines_then_resume_score_sample(corpus, tmp_path, capsys, cli):
    out = tmp_path / "lm"
    stdout = unitwave(capsys, "lm", "train", corpus.units_txt, out, "--epochs", "3", *SMALL)
    assert "validation perplexity: lstm" in stdout and "bigram (Kneser-Ney)" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val_ppl"] < metrics["bigram_ppl"] < metrics["unigram_ppl"], metrics
    assert metrics["val_bpu"] == pytest.approx(metrics["val_loss"] / 0.6931471805599453, rel=1e-6)
    card = json.loads((out / "model" / "model_card.json").read_text())
    assert card["vocabulary"] == {"units": 30, "sos": 30, "pad": 31} and card["metrics"]["val_ppl"] == metrics["val_ppl"]
    assert (out / "checkpoints" / "best.ckpt").is_file() and (out / "config.yaml").is_file()

    # the same command with more epochs continues from latest.ckpt: only epoch 4 trains
    main([str(a) for a in ("lm", "train", corpus.units_txt, out, "--epochs", "4", *SMALL)])
    captured = capsys.readouterr()
    stdout = captured.out
    assert "resuming from" in stdout and "epoch 4/4" in stdout and "epoch 1/4" not in stdout
    assert "the saved cosine schedule was planned for 3 epochs" in captured.err  # said, not silent
    assert len(json.loads((out / "training_history.json").read_text())) == 4
    other = tmp_path / "other_units.txt"
    other.write_text(corpus.units_txt.read_text())
    assert "was trained on other data (units:" in failing(capsys, "lm", "train", other, out, "--epochs", "5", *SMALL)

    scores = tmp_path / "scores.jsonl"
    unitwave(capsys, "lm", "score", out, corpus.timestamped, scores, "--batch-size", "32")
    rows = [json.loads(line) for line in scores.read_text().splitlines()]
    assert len(rows) == 240 and rows[0]["id"] == "synth_00000" and rows[0]["logprob"] < 0
    assert rows[0]["num_units"] == len(corpus.units_txt.read_text().splitlines()[0].split())

    # the installed command, as a user runs it (torch + safetensors only)
    proc = cli("lm", "sample", out / "model", "--prompt", "1 1 2", "--length", "20", "--num-samples", "3", env=ENV)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.split()[:3] == ["1", "1", "2"] and len(line.split()) == 23 for line in lines)


def test_train_bad_input_and_bad_flags(tmp_path, capsys):
    bad = tmp_path / "bad_units.txt"
    bad.write_text("1 2 3\n4 x 6\n")
    assert f"{bad}:2: 'x' is not a unit id" in failing(capsys, "lm", "train", bad, tmp_path / "out")
    good = tmp_path / "ok_units.txt"
    good.write_text("1 2 3\n")
    assert "--grad-accum must be >= 1" in failing(capsys, "lm", "train", good, tmp_path / "out", "--grad-accum", "0")
    assert "training and validation need at least 2" in failing(capsys, "lm", "train", good, tmp_path / "out")
    three = tmp_path / "three_units.txt"
    three.write_text("1 2 3\n4 5 6\n7 8 9\n")
    assert "no validation utterances" in failing(capsys, "lm", "train", three, tmp_path / "out", "--val-ratio", "0.0")
    (tmp_path / "empty.txt").write_text("\n")
    assert "--val-units" in failing(capsys, "lm", "train", three, tmp_path / "out", "--val-units", tmp_path / "empty.txt")
    assert "unit corpus not found" in failing(capsys, "lm", "train", tmp_path / "missing.txt", tmp_path / "out")


def test_grid_runs_in_parallel_writes_leaderboard_and_skips_finished_runs(corpus, tmp_path, capsys, cli):
    grid = tmp_path / "grid.yaml"
    grid.write_text("base:\n  epochs: 1\n  batch_size: 16\n  lr: 0.01\n  val_ratio: 0.1\n"
                    "grid:\n  hidden_size: [16, 48]\n  num_layers: [1]\n")
    out = tmp_path / "grid"
    proc = cli("lm", "grid", grid, corpus.units_txt, out, "--workers", "2", env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "2 done, 0 skipped, 0 failed" in proc.stdout
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert [r["run"] for r in rows] == ["lstm_h48_l1", "lstm_h16_l1"]  # the bigger model wins after one epoch
    assert float(rows[0]["val_ppl"]) <= float(rows[1]["val_ppl"]) and rows[0]["status"] == "done"
    for r in rows:
        assert (out / "runs" / r["run"] / "model" / "model_card.json").is_file()
    assert "0 done, 2 skipped" in unitwave(capsys, "lm", "grid", grid, corpus.units_txt, out)
    # a changed base setting changes every run's config: they are trained on (resumed to 2 epochs)
    grid.write_text(grid.read_text().replace("epochs: 1", "epochs: 2"))
    assert "2 done, 0 skipped" in unitwave(capsys, "lm", "grid", grid, corpus.units_txt, out)
    assert all(len(json.loads((out / "runs" / r["run"] / "training_history.json").read_text())) == 2 for r in rows)
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  hiden_size: [16]\n")
    assert "did you mean 'hidden_size'" in failing(capsys, "lm", "grid", bad, corpus.units_txt, tmp_path / "bad")


def test_ddp_on_two_cpu_processes_trains_and_exports(corpus, tmp_path, cli):
    """Lightning's DDP (gloo on CPU here; NCCL on GPUs) through the same flags: --devices 2."""
    out = tmp_path / "ddp"
    proc = cli("lm", "train", corpus.units_txt, out, "--epochs", "2", "--embedding-dim", "16", "--hidden-size", "32",
               "--num-layers", "1", "--batch-size", "8", "--device", "cpu", "--devices", "2", "--no-progress-bar",
               env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs"] == 2
    assert (out / "model" / "model.safetensors").is_file() and (out / "checkpoints" / "final.ckpt").is_file()
