"""``unitwave resynth``: audio -> MFCC units -> the tiny trained vocoder, on the engine; then ``eval resynth``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.audio.io import load_audio
from unitwave.cli import main
from unitwave.data.inputs import input_root, iter_inputs
from unitwave.data.manifest import iter_jsonl
from unitwave.testing.fixtures import tone, write_bad_inputs
from unitwave.vocoder.resynth import ResynthConfig, ResynthStage


def records(path: Path) -> list[dict]:
    return list(iter_jsonl(path))


def resynth_args(c, voc: Path, manifest: Path, out: Path, *extra: str) -> list[str]:
    return ["resynth", str(manifest), str(out), "--units", str(c.kmeans), "--vocoder", str(voc), "--workers", "1",
            *extra]


def test_resynth_keeps_folders_resumes_and_feeds_eval(unit_corpus, trained_vocoder, cli, tmp_path):
    out = tmp_path / "rs"
    args = resynth_args(unit_corpus, trained_vocoder.run, unit_corpus.manifest, out)
    proc = cli(*args, check=True)
    assert "8 done, 0 skipped, 0 failed" in proc.stdout
    units_of = {r["id"]: r["units"] for r in records(unit_corpus.corpus)}
    sources = {r["id"]: r for r in records(unit_corpus.manifest)}
    outputs = records(out / "manifest.jsonl")
    assert [r["id"] for r in outputs] == list(sources)
    for rec in outputs:
        src = sources[rec["id"]]
        wav = out / rec["audio_filepath"]  # relative to the run folder: under audio/, the corpus' own folders
        assert wav.resolve() == (out / "audio" / src["audio_filepath"]).resolve()
        assert rec["source"] == str(unit_corpus.manifest.parent / src["audio_filepath"])
        assert rec["units"] == units_of[rec["id"]] and rec["num_units"] == len(rec["units"])  # the units stage's
        info = sf.info(wav)
        assert info.samplerate == 16000 and info.subtype == "PCM_16"
        assert info.frames == 320 * rec["num_units"] and rec["duration"] == pytest.approx(info.frames / 16000)
        assert rec["text"] == src["text"] and rec["speaker"] == src["speaker"]  # other fields pass through
    stamps = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}

    again = cli(*args, check=True)
    assert "0 done, 8 skipped" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")} == stamps

    ev = tmp_path / "eval"
    cli("eval", "resynth", unit_corpus.manifest, out, ev, "--training-log", trained_vocoder.run / "training_log.json",
        "--workers", "1", check=True)
    results = json.loads((ev / "test_results.json").read_text())
    assert results["counts"] == {"evaluated": 8, "failed": 0}
    assert all(0.9 < r["length_ratio"] <= 1.0 for r in results["files"])
    assert (ev / "report.html").is_file()


def test_existing_outputs_are_not_synthesized_again(unit_corpus, trained_vocoder, tmp_path):
    first = records(unit_corpus.manifest)[0]
    out = tmp_path / "rs"
    kept = out / "audio" / first["audio_filepath"]  # e.g. left by an earlier run of the users' scripts
    kept.parent.mkdir(parents=True)
    sf.write(kept, tone(0.5), 16000, subtype="PCM_16")
    before = kept.read_bytes()
    main([*resynth_args(unit_corpus, trained_vocoder.run, unit_corpus.manifest, out), "--keep-existing"])
    by_id = {r["id"]: r for r in records(out / "manifest.jsonl")}
    assert kept.read_bytes() == before
    assert by_id[first["id"]]["existing"] is True and "units" not in by_id[first["id"]]
    assert by_id[first["id"]]["duration"] == pytest.approx(0.5)
    assert sum("units" in r for r in by_id.values()) == 7

    # the vocoder retrained in place (here: its weights changed): every record runs again instead of keeping
    # the old model's audio; files beside the model (logs, samples) change nothing
    import shutil

    from safetensors.torch import load_file, save_file

    voc = tmp_path / "voc"
    shutil.copytree(trained_vocoder.run, voc)
    main(resynth_args(unit_corpus, voc, unit_corpus.manifest, tmp_path / "rs2"))
    (voc / "notes.txt").write_text("a file beside the model")
    main(resynth_args(unit_corpus, voc, unit_corpus.manifest, tmp_path / "rs2"))
    summary = json.loads((tmp_path / "rs2" / "summary.json").read_text())
    assert (summary["processed"], summary["skipped"]) == (0, 8)
    weights = voc / "model" / "generator.safetensors"
    save_file({k: v * 1.01 for k, v in load_file(str(weights)).items()}, str(weights))
    main(resynth_args(unit_corpus, voc, unit_corpus.manifest, tmp_path / "rs2"))
    summary = json.loads((tmp_path / "rs2" / "summary.json").read_text())
    assert (summary["processed"], summary["skipped"]) == (8, 0)
    assert all("units" in r and "existing" not in r for r in records(tmp_path / "rs2" / "manifest.jsonl"))


def test_bad_inputs_go_to_errors_jsonl(unit_corpus, trained_vocoder, tmp_path):
    folder = tmp_path / "in"
    expected = write_bad_inputs(folder)  # {relative path: "ok" or a fragment of the reason}
    sf.write(folder / "blip.wav", np.zeros(160, np.float32), 16000)
    expected["blip.wav"] = "shorter than one frame of the encoder"
    out = tmp_path / "rs"
    with pytest.raises(SystemExit) as exit_info:
        main(resynth_args(unit_corpus, trained_vocoder.run, folder, out))
    assert exit_info.value.code == 1  # failures > --max-failures 0
    reasons = {e["id"]: e["reason"] for e in records(out / "errors.jsonl")}
    done = {r["id"]: r for r in records(out / "manifest.jsonl")}
    for rel, outcome in expected.items():
        rid = str(Path(rel).with_suffix(""))
        if outcome == "ok":  # a folder input keeps its relative folders (spaces, accents) under audio/
            assert rid not in reasons and (out / "audio" / f"{rid}.wav").is_file(), rel
            assert done[rid]["num_units"] > 0
        else:
            assert outcome in reasons[rid], (rel, reasons.get(rid))
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*.wav"))


def test_a_batch_gives_what_each_record_gives_alone(unit_corpus, trained_vocoder, tmp_path):
    cfg = ResynthConfig(unit_corpus.manifest, tmp_path / "rs", units=unit_corpus.kmeans, vocoder=trained_vocoder.run,
                        device="cpu")
    stage = ResynthStage(cfg, input_root(unit_corpus.manifest), False, "cpu", 60.0)
    stage.setup()
    waves = [load_audio(r["audio_filepath"], 16000)[0] for r in list(iter_inputs(unit_corpus.manifest))[:3]]
    together, units = stage.synthesize(waves, [None] * 3)
    for i, wave in enumerate(waves):
        alone, alone_units = stage.synthesize([wave], [None])
        assert np.array_equal(alone_units[0], units[i]) and np.array_equal(alone[0], together[i])


def test_speakers_and_mismatched_folders(unit_corpus, trained_vocoder, vocoder_args, tmp_path, fails):
    voc = tmp_path / "spk"
    main(vocoder_args(unit_corpus, voc, "--speakers", "--vocoder.hifigan.f0", "none", "--epochs", "1",
                      "--save-every", "0"))
    two = [{**r, "audio_filepath": str(unit_corpus.manifest.parent / r["audio_filepath"])}
           for r in records(unit_corpus.manifest)[:2]]
    manifest = tmp_path / "two.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in [two[0], {**two[1], "speaker": "stranger"}]))
    with pytest.raises(SystemExit):  # the stranger is not in the table: that record fails, named
        main(resynth_args(unit_corpus, voc, manifest, tmp_path / "own"))
    (error,) = records(tmp_path / "own" / "errors.jsonl")
    assert "speaker 'stranger' is not in the vocoder's speaker table" in error["reason"]
    assert records(tmp_path / "own" / "manifest.jsonl")[0]["vocoder_speaker"] == two[0]["speaker"]
    main(resynth_args(unit_corpus, voc, manifest, tmp_path / "as_one", "--speaker", two[0]["speaker"]))
    assert {r["vocoder_speaker"] for r in records(tmp_path / "as_one" / "manifest.jsonl")} == {two[0]["speaker"]}

    # a speaker id does what the name does (legacy checkpoints come without names)
    names = json.loads((voc / "model" / "model_card.json").read_text())["speakers"]
    sid = str(names.index(two[0]["speaker"]))
    main(resynth_args(unit_corpus, voc, manifest, tmp_path / "by_id", "--speaker", sid))
    for a, b in zip(records(tmp_path / "as_one" / "manifest.jsonl"), records(tmp_path / "by_id" / "manifest.jsonl")):
        assert b["vocoder_speaker"] == sid
        assert (tmp_path / "as_one" / a["audio_filepath"]).read_bytes() == (
            tmp_path / "by_id" / b["audio_filepath"]
        ).read_bytes()

    fails(resynth_args(unit_corpus, voc, manifest, tmp_path / "x", "--speaker", "nobody"), "unknown speaker 'nobody'")
    fails(resynth_args(unit_corpus, voc, manifest, tmp_path / "x", "--speaker", str(len(names) + 5)), "out of range")
    fails(resynth_args(unit_corpus, trained_vocoder.run, manifest, tmp_path / "x", "--speaker", two[0]["speaker"]),
          "has no speaker conditioning")
    other_km = tmp_path / "km_seed7"  # same encoder, k and frame rate; other clusters
    main(["units", "fit", str(manifest), str(other_km), "--encoder", "mfcc", "--frame-rate", "50", "--k", "16",
          "--seed", "7"])
    fails(["resynth", str(manifest), str(tmp_path / "x"), "--units", str(other_km), "--vocoder", str(voc)],
          "was trained on units of another k-means")
    km100 = tmp_path / "km100"  # MFCC at 100 Hz: 10 ms units for a vocoder trained on 20 ms ones
    main(["units", "fit", str(manifest), str(km100), "--encoder", "mfcc", "--k", "8"])
    fails(["resynth", str(manifest), str(tmp_path / "x"), "--units", str(km100), "--vocoder", str(voc)],
          "gives units every 10 ms but")
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_slices_are_resynthesized_alone_even_at_offset_zero(unit_corpus, trained_vocoder, tmp_path):
    """A record with an offset (0.0 included) is the ``[offset, offset + duration)`` slice of its file."""
    first = records(unit_corpus.manifest)[0]
    path = str(unit_corpus.manifest.parent / first["audio_filepath"])
    slices = [{**first, "id": f"s{o}", "audio_filepath": path, "offset": o, "duration": 1.0} for o in (0.0, 0.5)]
    manifest = tmp_path / "slices.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in slices))
    main(resynth_args(unit_corpus, trained_vocoder.run, manifest, tmp_path / "rs"))
    out = {r["id"]: r for r in records(tmp_path / "rs" / "manifest.jsonl")}
    assert first["duration"] > 2.0
    for rid in ("s0.0", "s0.5"):
        assert out[rid]["duration"] == pytest.approx(1.0, abs=0.03) and out[rid]["num_units"] <= 50
    assert out["s0.0"]["source_offset"] == 0.0 and out["s0.5"]["source_offset"] == 0.5
