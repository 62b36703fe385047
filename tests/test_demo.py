"""``unitwave demo`` runs the whole pipeline on a synthetic corpus and ends by printing the report's path."""

from __future__ import annotations

import json


def test_demo_runs_every_step_and_points_to_the_report(tmp_path, cli):
    out = tmp_path / "demo"
    proc = cli("demo", out, "--utterances", "8", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last == f"Report: {(out / 'eval' / 'report.html').resolve()}" and (out / "report.md").is_file()
    steps = json.loads((out / "demo.json").read_text())
    assert steps and all(s["exit"] == 0 for s in steps)
    commands = [" ".join(s["args"][:2]) for s in steps]
    for stage in ("convert", "split", "status", "vad", "segment", "units", "motifs", "lm train", "lm score",
                  "lm sample", "lm grid", "vocoder train", "resynth", "eval resynth"):
        assert any(c.startswith(stage) for c in commands), stage
    assert (out / "units" / "demo" / "quality.json").is_file() and (out / "lm" / "metrics.json").is_file()
    assert len((out / "lm-grid" / "leaderboard.csv").read_text().splitlines()) == 5  # header + 4 runs
    assert len((out / "resynth" / "manifest.jsonl").read_text().splitlines()) == 8
    # a rerun resumes: nothing is redone
    again = cli("demo", out, "--utterances", "8", timeout=600)
    assert again.returncode == 0 and "0 done, 8 skipped" in again.stdout
