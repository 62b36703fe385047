"""``unitwave convert`` through the real CLI: bad inputs, manifests, path safety, SIGKILL crash safety."""

from __future__ import annotations

import json
import random
from pathlib import Path

import soundfile as sf

from unitwave.data.manifest import write_manifest
from unitwave.testing.crash import kill_when
from unitwave.testing.fixtures import tone, write_bad_inputs, write_good_inputs


def load(out: Path, name: str = "manifest.jsonl") -> list[dict]:
    p = out / name
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_folder_with_every_kind_of_bad_input(tmp_path, cli):
    expected = write_bad_inputs(tmp_path / "in")
    write_good_inputs(tmp_path / "in" / "good", count=4)
    proc = cli("convert", tmp_path / "in", tmp_path / "out", "--workers", "2")
    assert proc.returncode == 1, proc.stderr
    assert "failed" in proc.stdout and "errors.jsonl" in proc.stdout
    errors = {Path(e["path"]).relative_to(tmp_path / "in").as_posix(): e for e in load(tmp_path / "out", "errors.jsonl")}
    for rel, outcome in expected.items():
        if outcome == "ok":
            assert rel not in errors
        else:
            assert outcome in errors[rel]["reason"] and errors[rel]["stage"] == "convert", errors[rel]
    done = load(tmp_path / "out")
    assert len(done) == 4 + sum(v == "ok" for v in expected.values())
    for rec in done:
        wav = tmp_path / "out" / rec["audio_filepath"]
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / 16000 - rec["duration"]) < 1e-3
        assert Path(rec["source"]).is_file()
    assert (tmp_path / "out" / "audio" / "with spaces" / "ação é ñ.wav").is_file()
    assert (tmp_path / "out" / "config.yaml").is_file()
    # failures within the budget: exit status 0
    assert cli("convert", tmp_path / "in", tmp_path / "out", "--max-failures", "10").returncode == 0


def test_manifest_input_relative_paths_slices_and_unsafe_paths(tmp_path, cli):
    data = tmp_path / "corpus"
    write_good_inputs(data / "wav", count=2, seconds=3.0)
    sf.write(tmp_path / "outside.wav", tone(1.0), 16000)
    manifest = data / "m.jsonl"
    write_manifest(manifest, [
        {"audio_filepath": "wav/good_000.wav", "text": "hello", "speaker": "s1"},
        {"id": "slice", "audio_filepath": "wav/good_000.wav", "offset": 1.0, "duration": 0.5},
        {"audio_filepath": "wav/missing.wav"},
        {"audio_filepath": "../outside.wav"},
        {"audio_filepath": str(tmp_path / "outside.wav")},
        {"audio_filepath": "wav/good_001.flac", "custom": {"nested": [1, 2]}},
    ])
    with manifest.open("a") as f:
        f.write("{broken json\n")
    # --relative-to pins the root: sources outside it are refused, never written outside the output folder
    proc = cli("convert", manifest, tmp_path / "out", "--workers", "1", "--sample-rate", "8000",
               "--relative-to", data)
    assert proc.returncode == 1
    assert f"{manifest}:7" in proc.stderr and "1 malformed input lines skipped" in proc.stdout
    done = {r.get("text", r["id"]): r for r in load(tmp_path / "out")}
    assert done["hello"]["speaker"] == "s1" and done["hello"]["audio_filepath"] == "audio/wav/good_000.wav"
    assert abs(done["slice"]["duration"] - 0.5) < 1e-6 and done["slice"]["source_offset"] == 1.0
    assert done["slice"]["audio_filepath"] == "audio/wav/good_000_00001000.wav"
    assert sf.info(tmp_path / "out" / done["slice"]["audio_filepath"]).samplerate == 8000
    custom = [r for r in done.values() if "custom" in r]
    assert custom[0]["custom"] == {"nested": [1, 2]}
    reasons = sorted(e["reason"] for e in load(tmp_path / "out", "errors.jsonl"))
    assert len(reasons) == 3 and any("file not found" in r for r in reasons)
    assert sum("outside" in r and "--relative-to" in r for r in reasons) == 2
    assert not list((tmp_path / "out").glob("*.wav")) and not (tmp_path / "out" / "outside.wav").exists()
    # by default the root is the folder all sources share, so sources beside the manifest's folder keep
    # their structure inside the output folder; --absolute-paths writes absolute paths
    proc = cli("convert", manifest, tmp_path / "out2", "--absolute-paths")
    assert proc.returncode == 1  # only the missing file failed
    assert len(load(tmp_path / "out2", "errors.jsonl")) == 1
    done2 = load(tmp_path / "out2")
    assert all(Path(r["audio_filepath"]).is_absolute() for r in done2)
    written = {Path(r["audio_filepath"]).relative_to(tmp_path / "out2" / "audio").as_posix() for r in done2}
    assert {"corpus/wav/good_000.wav", "corpus/wav/good_001.wav"} <= written
    # outside.wav is listed twice (two ids): each record gets its own file, never one written twice
    twice = sorted(w for w in written if w.startswith("outside"))
    assert len(twice) == 2 and all(w != "outside.wav" for w in twice)


def test_rerun_skips_everything_and_status(tmp_path, cli):
    write_good_inputs(tmp_path / "in", count=5)
    cli("convert", tmp_path / "in", tmp_path / "out", "--shards", "3", check=True)
    first = (tmp_path / "out" / "manifest.jsonl").read_bytes()
    proc = cli("convert", tmp_path / "in", tmp_path / "out", check=True)
    assert "0 done, 5 skipped" in proc.stdout
    assert (tmp_path / "out" / "manifest.jsonl").read_bytes() == first
    proc = cli("convert", tmp_path / "in", tmp_path / "out", "--shards", "4")
    assert proc.returncode == 2 and "started with 3 shards" in proc.stderr
    proc = cli("status", tmp_path / "out", check=True)
    assert "3/3 shards done" in proc.stdout and "5 records" in proc.stdout


def test_sigkill_at_random_points_then_rerun_equals_uninterrupted(tmp_path, cli):
    src = tmp_path / "in"
    for i in range(60):
        path = src / f"d{i % 4}" / f"f{i:03d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone(0.5 + (i % 5) * 0.4, 22050, 100 + 7 * i, seed=i), 22050)
    ref = tmp_path / "ref"
    cli("convert", src, ref, "--workers", "2", "--shards", "4", check=True)
    reference = load(ref)
    rng = random.Random(1234)
    out = tmp_path / "out"
    # kill points are random in progress, not in time, so every kill lands mid-run on any machine
    args = ["convert", src, out, "--workers", "2", "--shards", "4"]
    kills = sum(kill_when(args, out, target) for target in sorted(rng.sample(range(3, 57), 3)))
    assert kills == 3
    final = cli("convert", src, out, "--workers", "2")
    assert final.returncode == 0, final.stderr
    result = load(out)
    assert [r["id"] for r in result] == [r["id"] for r in reference]
    assert len({r["id"] for r in result}) == 60
    for a, b in zip(result, reference):
        assert {k: v for k, v in a.items()} == {k: v for k, v in b.items()}
        assert (out / a["audio_filepath"]).read_bytes() == (ref / b["audio_filepath"]).read_bytes()
    assert not list(out.rglob(".*.tmp"))


def test_an_output_folder_inside_the_input_is_not_read_back(tmp_path, cli):
    src = tmp_path / "recordings"
    write_good_inputs(src, count=2)
    out = src / "converted"
    cli("convert", src, out, "--workers", "1", check=True)
    again = cli("convert", src, out, "--workers", "1", check=True)
    assert "0 done, 2 skipped" in again.stdout  # its own WAVs are not new inputs
    assert len(load(out)) == 2 and not (out / "audio" / "converted").exists()


def test_a_file_name_that_is_not_utf8_is_skipped_not_fatal(tmp_path, cli):
    import os

    src = tmp_path / "in"
    write_good_inputs(src, count=2)
    os.rename(src / "good_000.wav", os.path.join(os.fsencode(src), b"a\xe7\xe3o.wav"))  # latin-1 bytes
    proc = cli("convert", src, tmp_path / "out", "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert "not valid UTF-8" in proc.stderr and "1 malformed input lines skipped" in proc.stdout
    assert [r["id"] for r in load(tmp_path / "out")] == ["good_001"]


def test_an_offset_of_zero_is_a_slice_of_the_file(tmp_path, cli):
    """NeMo writes ``"offset": 0.0`` for the first segment of a long file: it is that segment, not the file."""
    sf.write(tmp_path / "long.wav", tone(3.0), 16000)
    write_manifest(tmp_path / "m.jsonl", [
        {"id": "whole", "audio_filepath": "long.wav", "duration": 3.0},
        {"id": "first", "audio_filepath": "long.wav", "offset": 0.0, "duration": 1.0},
        {"id": "second", "audio_filepath": "long.wav", "offset": 1.0, "duration": 1.0},
    ])
    cli("convert", tmp_path / "m.jsonl", tmp_path / "out", "--workers", "1", check=True)
    done = {r["id"]: r for r in load(tmp_path / "out")}
    assert [done[k]["duration"] for k in ("whole", "first", "second")] == [3.0, 1.0, 1.0]
    assert done["first"]["source_offset"] == 0.0 and "source_offset" not in done["whole"]
    assert len({r["audio_filepath"] for r in done.values()}) == 3  # no slice overwrites another's WAV
    assert sf.info(tmp_path / "out" / done["whole"]["audio_filepath"]).frames == 3 * 16000


def test_reruns_redo_changed_records_and_never_share_an_output(tmp_path, cli):
    """Results count only for the input they were made from: a record changed under its id is done
    again, a deleted output is written again, records that would share an output file get their own,
    a repeated id is left out with a warning, and counts describe the current input."""
    data = tmp_path / "data"
    write_good_inputs(data, count=2, seconds=3.0)
    sf.write(data / "good_000.flac", tone(2.0, seed=7), 16000)  # beside good_000.wav: same stem
    manifest = tmp_path / "m.jsonl"
    rows = [
        {"id": "x1", "audio_filepath": "data/good_000.wav", "offset": 1.0, "duration": 1.0},
        {"id": "x2", "audio_filepath": "data/good_000.wav", "offset": 1.0, "duration": 1.5},
        {"id": "y1", "audio_filepath": "data/good_000.wav"},
        {"id": "y2", "audio_filepath": "data/good_000.flac"},
        {"id": "z", "audio_filepath": "data/good_001.flac", "text": "old"},
    ]
    write_manifest(manifest, rows + [{"id": "z", "audio_filepath": "data/good_000.flac"}])
    proc = cli("convert", manifest, tmp_path / "out", "--workers", "2", check=True)
    assert "input record 6: id 'z' was already used" in proc.stderr
    assert "1 input records left out" in proc.stdout
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["duplicate_ids"] == 1
    done = {r["id"]: r for r in load(tmp_path / "out")}
    assert set(done) == {"x1", "x2", "y1", "y2", "z"} and done["z"]["text"] == "old"
    paths = [r["audio_filepath"] for r in done.values()]
    assert len(set(paths)) == 5  # nothing written twice
    for r in done.values():
        assert abs(sf.info(tmp_path / "out" / r["audio_filepath"]).duration - r["duration"]) < 1e-3
    assert done["z"]["audio_filepath"] == "audio/data/good_001.wav"  # no collision: its natural name

    # z changes under its id; x2 is removed; the WAV of y1 is deleted
    rows[4] = {**rows[4], "text": "new", "offset": 0.5, "duration": 1.0}
    write_manifest(manifest, [r for r in rows if r["id"] != "x2"])
    (tmp_path / "out" / done["y1"]["audio_filepath"]).unlink()
    proc = cli("convert", manifest, tmp_path / "out", "--workers", "2", check=True)
    # z (changed), y1 (output deleted) and x1 (no longer shares its name with x2: back to its natural
    # name) are done again; y2 is kept
    assert "3 done, 1 skipped, 0 failed" in proc.stdout, proc.stdout
    again = {r["id"]: r for r in load(tmp_path / "out")}
    assert set(again) == {"x1", "y1", "y2", "z"} and again["y2"] == done["y2"]
    assert again["x1"]["audio_filepath"] == "audio/data/good_000_00001000.wav"
    assert again["z"]["text"] == "new" and abs(again["z"]["duration"] - 1.0) < 1e-3
    assert (tmp_path / "out" / again["y1"]["audio_filepath"]).is_file()
    assert "4 records" in cli("status", tmp_path / "out", check=True).stdout
    # the same input, one output deleted: only that record runs
    (tmp_path / "out" / again["z"]["audio_filepath"]).unlink()
    proc = cli("convert", manifest, tmp_path / "out", "--workers", "2", check=True)
    assert "1 done, 3 skipped, 0 failed" in proc.stdout, proc.stdout
    assert (tmp_path / "out" / again["z"]["audio_filepath"]).is_file()


def test_inputs_that_are_no_input_say_so(tmp_path, cli):
    notes = tmp_path / "readme.txt"
    notes.write_text("These are my recordings.\nPlease convert them.")
    proc = cli("convert", notes, tmp_path / "out")
    assert proc.returncode == 2 and "none of the 2 input lines is a record" in proc.stderr
    proc = cli("convert", tmp_path / "nowhere", tmp_path / "out2")
    assert proc.returncode == 2 and "input not found" in proc.stderr and "folder of audio or a JSONL manifest" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = cli("convert", tmp_path / "empty", tmp_path / "out3", check=True)
    assert "the input holds no records" in proc.stderr
