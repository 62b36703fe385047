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
    (tmp_path / "log.json").write_text("epoch 1 loss 0.5\n")  # not JSON: refused before any file is evaluated
    log = ("--training-log", tmp_path / "log.json")
    proc = cli("eval", "resynth", tmp_path / "m.jsonl", tmp_path, tmp_path / "out", *log)
    assert proc.returncode == 2 and f"{tmp_path / 'log.json'}: not a JSON training log" in proc.stderr
    assert not (tmp_path / "out").exists()


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


def test_slices_of_one_file_match_their_own_synthesis(tmp_path):
    """resynth names a slice ``<stem>_<offset ms>.wav``: each slice finds its own file, never the whole file's."""
    root = tmp_path / "orig"
    root.mkdir()
    synth = tmp_path / "synth"
    (synth / "audio").mkdir(parents=True)
    for name in ("long.wav", "long_00002000.wav", "long_00004500.wav"):
        sf.write(synth / "audio" / name, np.zeros(160), 16000)
    path = str(root / "long.wav")
    whole = {"id": "whole", "audio_filepath": path}
    assert find_synth(whole, synth, root, {})[0] == str(synth / "audio" / "long.wav")
    for offset, name in ((2.0, "long_00002000.wav"), (4.5, "long_00004500.wav")):
        rec = {"id": f"s{offset}", "audio_filepath": path, "offset": offset, "duration": 2.0}
        assert find_synth(rec, synth, root, {})[0] == str(synth / "audio" / name)


def test_an_offset_zero_slice_is_compared_as_the_slice(tmp_path):
    """The original of a record with an offset (0.0 included) is its ``[offset, offset + duration)`` slice."""
    from unitwave.eval.resynth import EvalStage
    from unitwave.testing.fixtures import tone

    sf.write(tmp_path / "long.wav", tone(3.0), 16000)
    sf.write(tmp_path / "synth.wav", tone(1.0), 16000)
    stage = EvalStage(EvalResynthConfig(tmp_path / "m.jsonl", tmp_path, tmp_path / "eval"))
    rec = {"id": "s", "audio_filepath": str(tmp_path / "long.wav"), "offset": 0.0, "duration": 1.0,
           "eval_index": 0, "synth_filepath": str(tmp_path / "synth.wav")}
    row = stage.evaluate(rec)
    assert row["orig_seconds"] == pytest.approx(1.0) and row["length_ratio"] == pytest.approx(1.0)


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


def test_report_escapes_ids_titles_and_curve_names():
    from unitwave.eval.report import ReportRow, render_report

    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    row = ReportRow(index=0, id=evil, metrics={"snr_db": 1.0, "mcd_db": evil}, orig_audio=f"audio/{evil}.wav",
                    synth_audio="audio/synth_0000.wav", orig_png="data:image/png;base64,AA==",
                    synth_png="data:image/png;base64,AA==", f0_svg="<svg></svg>")
    curves = {evil: ([1.0, 2.0], [3.0, 4.0])}
    page = render_report(evil, {}, {"note": evil}, [row], {"evaluated": 1, "failed": 0}, curves)
    assert "<script" not in page and "onerror=alert(2)>" not in page and "&lt;script&gt;" in page
    assert page.count("<img") == 2  # the two spectrograms, nothing injected


def test_identical_audio_counts_as_infinite_snr_and_changed_synth_files_are_evaluated_again(tmp_path, cli):
    manifest, synth = corpus_and_synth(tmp_path, utterances=2, skip_last=False)
    # the originals against themselves: SNR is infinite, kept out of the mean but counted
    same = tmp_path / "same"
    cli("eval", "resynth", manifest, manifest.parent, same, "--workers", "1", check=True)
    results = json.loads((same / "test_results.json").read_text())
    assert all(r["snr_db"] is None and r["snr_infinite"] for r in results["files"])
    assert results["summary"]["snr_db"]["n"] == 0 and results["summary"]["snr_db"]["infinite"] == 2
    assert "identical: &infin;" in (same / "report.html").read_text()
    (same / "audio" / "orig_0000.wav").unlink()  # an output of the eval itself is gone: that pair runs again
    proc = cli("eval", "resynth", manifest, manifest.parent, same, "--workers", "1", check=True)
    assert "1 done, 1 skipped" in proc.stdout and (same / "audio" / "orig_0000.wav").is_file()
    # a synthesized file rewritten in place (a retrained vocoder) is evaluated again on rerun
    out = tmp_path / "eval"
    cli("eval", "resynth", manifest, synth, out, "--workers", "1", check=True)
    first = json.loads((out / "test_results.json").read_text())["files"][0]
    victim = Path(first["synth_filepath"])
    x, sr = sf.read(victim)
    sf.write(victim, 0.5 * x, sr)
    proc = cli("eval", "resynth", manifest, synth, out, "--workers", "1", check=True)
    assert "1 done, 1 skipped" in proc.stdout
    again = json.loads((out / "test_results.json").read_text())["files"][0]
    assert again["snr_db"] != first["snr_db"]


def test_training_curves_leave_out_bookkeeping_and_ticks_tell_values_apart(tmp_path):
    from unitwave.eval.plots import line_chart_svg, nice_ticks
    from unitwave.eval.report import training_curves

    log = tmp_path / "training_log.json"
    log.write_text(json.dumps({"history": [
        {"epoch": e, "val_mel_loss": 4.99 + 0.001 * e, "best": 4.99, "best_epoch": 1, "seconds": 3.1, "lr_1": 2e-4}
        for e in (1, 2, 3, 4, 5)]}))
    curves = training_curves(log)
    assert set(curves) == {"val_mel_loss", "lr_1"}
    svg = line_chart_svg({"val_mel_loss": curves["val_mel_loss"]}, x_label="epoch")
    labels = re.findall(r">([-0-9.]+)</text>", svg)
    y_labels = [x for x in labels if "." in x]
    assert len(set(y_labels)) == len(y_labels) >= 3  # distinct values, not five times "4.99"
    assert not any("." in x for x in labels if x not in y_labels) and "1.5" not in labels  # whole epochs
    ticks, decimals = nice_ticks(0.9, 12.1, integer=True)
    assert ticks == [2, 4, 6, 8, 10, 12] and decimals == 0
