"""``unitwave vad`` through the real CLI: CSV columns, manifest, intervals, sidecar, bad inputs, resume."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.audio.io import resample
from unitwave.audio.vad import FrameCounts
from unitwave.audio.vad.stats import STAT_FIELDS
from unitwave.prepare.vad import CSV_COLUMNS
from unitwave.testing.corpus import CorpusConfig, CorpusInfo, build_corpus, load_vad

RATE = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusInfo:
    return build_corpus(
        CorpusConfig(
            tmp_path_factory.mktemp("vad-cli") / "corpus",
            utterances=4,
            sentences_per_utterance=(3, 3),
            pause_seconds=(0.6, 1.0),
            edge_silence_seconds=(0.3, 0.5),
        )
    )


@pytest.fixture(scope="module")
def folder(corpus: CorpusInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``recordings/``: the corpus WAVs, one as 44.1 kHz stereo FLAC, and three awkward files."""
    root = tmp_path_factory.mktemp("vad-in") / "recordings"
    shutil.copytree(corpus.root / "wavs", root)
    audio, _ = sf.read(first_wav(root), dtype="float32")
    stereo = resample(audio, RATE, 44100)
    (root / "stereo").mkdir()
    sf.write(root / "stereo" / "first_again.flac", np.stack([stereo, 0.8 * stereo], axis=1), 44100)
    bad = root / "awkward"
    bad.mkdir()
    (bad / "not_audio.mp3").write_text("these are words, not sound\n" * 30)
    sf.write(bad / "silent.wav", np.zeros(2 * RATE, np.float32), RATE, subtype="PCM_16")
    sf.write(bad / "tiny.wav", 0.3 * np.sin(np.arange(100) / 5).astype(np.float32), RATE, subtype="PCM_16")
    return root


def first_wav(root: Path) -> Path:
    return min(root.rglob("*.wav"))


def read_csv(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), {row["id"]: row for row in reader}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_folder_gives_csv_manifest_intervals_and_sidecar(
    folder: Path, corpus: CorpusInfo, tmp_path: Path, cli
) -> None:
    out = tmp_path / "metadata"
    proc = cli("vad", folder, out, "--workers", "1")
    assert proc.returncode == 1, proc.stderr  # the text file fails; the budget is 0 failures
    assert "vad: 7 done, 0 skipped, 1 failed" in proc.stdout
    name = f"recordings_{dt.date.today().isoformat()}"
    columns, rows = read_csv(out / f"{name}.csv")
    assert columns == list(CSV_COLUMNS) and {f for f in STAT_FIELDS} - {"duration_s"} <= set(columns)
    assert len(rows) == 8
    # the non-audio file: a row with the reason, nothing made up
    bad = rows["awkward/not_audio"]
    assert "not an audio file" in bad["error"] and bad["duration_s"] == "" and bad["speech_s"] == ""
    # silence and a file shorter than one frame are audio without speech, not errors
    silent, tiny = rows["awkward/silent"], rows["awkward/tiny"]
    assert (silent["speech_s"], silent["speech_segments"], silent["longest_speech_s"]) == ("0.0", "0", "")
    assert float(silent["leading_silence_s"]) == float(silent["duration_s"]) == 2.0
    assert float(tiny["duration_s"]) == pytest.approx(100 / RATE) and tiny["speech_segments"] == "0"
    # speech: figures agree with the ground truth
    truth = load_vad(corpus.vad)
    for uid, t in truth.items():
        row = next(r for k, r in rows.items() if k.endswith(uid))
        assert int(row["speech_segments"]) == 3 and (row["sample_rate"], row["channels"]) == ("16000", "1")
        assert float(row["leading_silence_s"]) == pytest.approx(t["speech"][0][0], abs=0.08)
        longest_pause = max(e - s for s, e in t["pauses"])
        assert float(row["longest_silence_s"]) == pytest.approx(longest_pause, abs=0.15)
        assert 0.5 < float(row["speech_ratio"]) < 1.0
    stereo = rows["stereo/first_again"]
    assert (stereo["sample_rate"], stereo["channels"]) == ("44100", "2")
    wavs = corpus.root / "wavs"
    original = rows[first_wav(wavs).relative_to(wavs).with_suffix("").as_posix()]
    assert float(stereo["speech_s"]) == pytest.approx(float(original["speech_s"]), abs=0.1)
    # the manifest: absolute paths and durations of every analysed file
    manifest = read_jsonl(out / f"{name}.json")
    assert len(manifest) == 7 and all(Path(r["audio_filepath"]).is_absolute() for r in manifest)
    for r in manifest:
        assert r["duration"] == pytest.approx(sf.info(r["audio_filepath"]).duration, abs=1e-6)
        assert list(r)[:2] == ["audio_filepath", "duration"] and "vad" not in r
    # the intervals agree with the truth frame by frame
    counts = FrameCounts()
    for r in read_jsonl(out / f"{name}.segments.jsonl"):
        uid = Path(r["audio_filepath"]).stem
        if uid in truth and "stereo" not in r["id"]:
            counts.add(np.array(r["speech"]), truth[uid]["speech"], r["duration"])
            assert len(r["pauses"]) == len(r["speech"]) - 1
    assert counts.f1 > 0.93
    # the sidecar pins what produced the numbers
    meta = json.loads((out / f"{name}.meta.json").read_text())
    assert meta["backend"]["name"] == "silero" and meta["backend"]["version"].startswith("silero-vad ")
    assert len(meta["backend"]["model_sha256"]) == 64 and meta["backend"]["runtime"].startswith("onnxruntime")
    assert meta["rules"]["min_silence_s"] == 0.1 and meta["rules"]["threshold"] == 0.5
    assert (meta["files"], meta["failed"]) == (7, 1) and meta["csv_columns"] == list(CSV_COLUMNS)
    errors = read_jsonl(out / name / "errors.jsonl")
    assert len(errors) == 1 and errors[0]["stage"] == "vad" and errors[0]["path"].endswith("not_audio.mp3")


def test_rerun_resumes_and_other_settings_are_refused(folder: Path, tmp_path: Path, cli) -> None:
    out = tmp_path / "out"
    first = cli("vad", folder, out, "--name", "run", "--workers", "2", "--max-failures", "1")
    assert first.returncode == 0, first.stderr
    outputs = {s: (out / f"run{s}").read_bytes() for s in (".csv", ".json", ".segments.jsonl")}
    again = cli("vad", folder, out, "--name", "run", "--max-failures", "1")
    assert again.returncode == 0 and "0 done, 7 skipped, 1 failed" in again.stdout
    assert {s: (out / f"run{s}").read_bytes() for s in outputs} == outputs
    changed = cli("vad", folder, out, "--name", "run", "--threshold", "0.7")
    assert changed.returncode == 2 and "other settings (vad.threshold: 0.5 -> 0.7)" in changed.stderr
    status = cli("status", out / "run")
    assert status.returncode == 0 and "7 records" in status.stdout


def test_manifest_input_energy_backend_keeps_record_fields(corpus: CorpusInfo, tmp_path: Path, cli) -> None:
    proc = cli(
        "vad",
        corpus.manifest,
        tmp_path,
        "--name",
        "corpus",
        "--vad-backend",
        "energy",
        "--energy-threshold-db",
        "-45",
        "--workers",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    manifest = read_jsonl(tmp_path / "corpus.json")
    source = read_jsonl(corpus.manifest)
    assert [r["id"] for r in manifest] == [r["id"] for r in source]
    for got, want in zip(manifest, source):
        assert got["audio_filepath"] == str((corpus.root / want["audio_filepath"]).absolute())
        assert (got["text"], got["speaker"]) == (want["text"], want["speaker"])
        assert got["duration"] == pytest.approx(want["duration"], abs=1e-4)
    meta = json.loads((tmp_path / "corpus.meta.json").read_text())
    assert meta["backend"]["name"] == "energy" and meta["backend"]["parameters"]["threshold_db"] == -45.0
    assert read_csv(tmp_path / "corpus.csv")[1]["pt-br_m1_0000"]["error"] == ""


def test_a_record_with_offset_zero_is_its_slice_not_the_whole_file(tmp_path: Path) -> None:
    from unitwave.prepare.vad import load_record_audio
    from unitwave.testing.fixtures import tone

    sf.write(tmp_path / "long.wav", tone(3.0), RATE)
    whole = load_record_audio({"id": "w", "audio_filepath": str(tmp_path / "long.wav"), "duration": 3.0})
    first = load_record_audio({"id": "f", "audio_filepath": str(tmp_path / "long.wav"), "offset": 0.0, "duration": 1.0})
    assert (whole.duration_s, len(whole.audio), whole.sliced) == (3.0, 3 * RATE, False)
    assert (first.duration_s, len(first.audio), first.sliced) == (1.0, RATE, True)


def test_slices_of_one_file_keep_their_offsets_in_csv_and_intervals(corpus: CorpusInfo, tmp_path: Path, cli) -> None:
    source = read_jsonl(corpus.manifest)[0]
    path = str(corpus.root / source["audio_filepath"])
    slices = tmp_path / "slices.jsonl"
    slices.write_text(
        json.dumps({"id": "a", "audio_filepath": path, "offset": 0.0, "duration": 1.5}) + "\n"
        + json.dumps({"id": "b", "audio_filepath": path, "offset": 1.5, "duration": 1.5}) + "\n"
    )
    proc = cli("vad", slices, tmp_path / "out", "--name", "sl", "--vad-backend", "energy", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    columns, rows = read_csv(tmp_path / "out" / "sl.csv")
    assert columns[:4] == ["id", "path", "offset_s", "duration_s"]
    assert (float(rows["a"]["offset_s"]), float(rows["b"]["offset_s"])) == (0.0, 1.5)
    intervals = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "sl.segments.jsonl")}
    assert intervals["b"]["offset"] == 1.5 and all(e <= 1.5 + 1e-6 for _, e in intervals["b"]["speech"])
