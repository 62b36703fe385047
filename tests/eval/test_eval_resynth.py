"""``unitwave eval resynth`` on a tiny espeak corpus: outputs, matching, resume, report in Chromium."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.engine.options import EngineConfig
from unitwave.eval.resynth import EvalResynthConfig, find_synth, run
from unitwave.testing.corpus import CorpusConfig, build_corpus

CHROMIUM = "/usr/bin/chromium"


def corpus_and_synth(root: Path, utterances: int = 3, skip_last: bool = True) -> tuple[Path, Path]:
    """An espeak corpus and, at the same relative paths, low-passed noisy delayed copies as 'synthesis'."""
    from scipy.signal import butter, sosfilt

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the synthetic corpus needs it)")
    info = build_corpus(
        CorpusConfig(
            root / "corpus",
            utterances=utterances,
            languages=("en-us",),
            speakers_per_language=1,
            sentences_per_utterance=(1, 1),
        )
    )
    rng = np.random.default_rng(0)
    records = [json.loads(line) for line in info.manifest.read_text().splitlines()]
    for rec in records[: len(records) - 1 if skip_last else len(records)]:
        x, sr = sf.read(info.root / rec["audio_filepath"])
        y = sosfilt(butter(6, 3000, fs=sr, output="sos"), x) + 0.003 * rng.standard_normal(len(x))
        out = root / "synth" / rec["audio_filepath"]
        out.parent.mkdir(parents=True, exist_ok=True)
        sf.write(out, np.concatenate([np.zeros(80), y]), sr)
    return info.manifest, root / "synth"


def test_cli_writes_results_pairs_and_report_and_resumes(tmp_path, cli):
    manifest, synth = corpus_and_synth(tmp_path)
    log = tmp_path / "training_log.json"
    log.write_text(
        json.dumps({"history": [{"epoch": e, "mel_loss": 1.0 / e, "d_loss": 2.0} for e in (1, 2, 3)]})
    )
    out = tmp_path / "eval"
    proc = cli("eval", "resynth", manifest, synth, out, "--workers", "2", "--training-log", log)
    assert proc.returncode == 1, proc.stderr  # one original has no synthesized file
    assert "2 done" in proc.stdout and "1 failed" in proc.stdout
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 1 and "no synthesized file" in errors[0]["reason"]
    results = json.loads((out / "test_results.json").read_text())
    assert results["counts"] == {"evaluated": 2, "failed": 1}
    assert (
        results["convention"]["mcd_db"]["c0"] == "excluded" and results["convention"]["mcd_db"]["order"] == 23
    )
    summary = results["summary"]
    assert 5.0 < summary["snr_db"]["mean"] < 30.0  # 3 kHz low-pass + light noise
    assert summary["length_ratio"]["mean"] == pytest.approx(1.0, abs=0.01)
    assert summary["f0_rmse_hz"]["mean"] < 20.0 and summary["mcd_db"]["mean"] > 1.0
    for row in results["files"]:
        assert row["lag_ms"] == pytest.approx(80 / 16, abs=0.5)  # the 80-sample delay (+ filter delay)
    rows = list(csv.DictReader((out / "test_results.csv").open()))
    assert [r["index"] for r in rows] == ["0", "1"] and float(rows[0]["mcd_db"]) > 0
    for name in ("orig_0000.wav", "synth_0000.wav", "orig_0001.wav", "synth_0001.wav"):
        assert sf.info(out / "audio" / name).samplerate == 16000
    page = (out / "report.html").read_text()
    assert page.count("<audio") == 4 and "mel_loss" in page and "d_loss" in page
    # rerun: finished records are skipped, the failed one retried (and failing within the budget now)
    proc = cli(
        "eval", "resynth", manifest, synth, out, "--workers", "1", "--max-failures", "1", "--embed-audio"
    )
    assert proc.returncode == 0 and "2 skipped" in proc.stdout, proc.stdout + proc.stderr
    assert (out / "report.html").read_text().count('src="data:audio/wav;base64,') == 4  # one-file report
    proc = cli("eval", "resynth", manifest, synth, out, "--max-lag-ms", "50")  # metrics settings are pinned
    assert proc.returncode == 2 and "other settings" in proc.stderr


def test_missing_inputs_are_one_line_errors(tmp_path, cli):
    proc = cli("eval", "resynth", tmp_path / "nope.jsonl", tmp_path, tmp_path / "out")
    assert proc.returncode == 2 and "original manifest not found" in proc.stderr
    (tmp_path / "m.jsonl").write_text("")
    proc = cli("eval", "resynth", tmp_path / "m.jsonl", tmp_path / "nodir", tmp_path / "out")
    assert proc.returncode == 2 and "synthesized audio folder not found" in proc.stderr


def test_matching_by_run_manifest_relative_path_and_id(tmp_path):
    root = tmp_path / "orig"
    (root / "a" / "b").mkdir(parents=True)
    rec = {"id": "utt1", "audio_filepath": str(root / "a" / "b" / "x.wav")}
    synth = tmp_path / "synth"
    (synth / "audio" / "a" / "b").mkdir(parents=True)
    sf.write(synth / "audio" / "a" / "b" / "x.flac", np.zeros(160), 16000)
    assert find_synth(rec, synth, root, {})[0] == str(synth / "audio" / "a" / "b" / "x.flac")
    sf.write(synth / "elsewhere.wav", np.zeros(160), 16000)
    assert find_synth(rec, synth, root, {"utt1": str(synth / "elsewhere.wav")})[0] == str(
        synth / "elsewhere.wav"
    )
    other = {"id": "utt2", "audio_filepath": str(tmp_path / "outside.wav")}
    sf.write(synth / "utt2.wav", np.zeros(160), 16000)
    assert find_synth(other, synth, root, {})[0] == str(synth / "utt2.wav")  # outside the root: by id
    found, looked = find_synth({"id": "zzz", "audio_filepath": str(root / "z.wav")}, synth, root, {})
    assert found is None and any("z.*" in p for p in looked)


def test_report_renders_in_headless_chromium(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium): cannot render report.html")
    manifest, synth = corpus_and_synth(tmp_path, utterances=2, skip_last=False)
    out = tmp_path / "eval"
    summary = run(EvalResynthConfig(manifest, synth, out, engine=EngineConfig(workers=1, progress=False)))
    assert summary.exit_code == 0
    copied = tmp_path / "copied"
    shutil.copytree(out, copied)  # the report works wherever the folder goes
    profile = tmp_path / "chromium-profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    page = (copied / "report.html").as_uri()
    dom = subprocess.run(
        [*cmd, "--dump-dom", page], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    assert '<table class="summary">' in dom and dom.count("</tr>") >= 1 + 8 + 1 + 2
    sources = re.findall(r'<audio class="(orig|synth)" controls="" preload="none" src="([^"]+)"', dom)
    assert len(sources) == 4, dom[:2000]
    for _, src in sources:
        assert (copied / src).is_file()
    assert len(re.findall(r'<img alt="[a-z ]*spectrogram" src="data:image/png;base64,', dom)) == 4
    assert dom.count("<svg") >= 2 and "How the numbers are computed" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [*cmd, f"--screenshot={shot}", "--window-size=1200,900", page],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file() and shot.stat().st_size > 10_000
