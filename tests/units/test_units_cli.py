"""``unitwave units`` through the real CLI on the synthetic espeak corpus: MFCC units with timestamps,
PNMI against the phone alignments, resume, namespaced outputs, bad input, and the library extractor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.audio.io import load_audio
from unitwave.testing.corpus import CorpusConfig, CorpusInfo, build_corpus
from unitwave.units.extractor import UnitExtractor
from unitwave.units.fit import FitConfig, KMeansOptions, fit
from unitwave.units.presets import EncoderOptions


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusInfo:
    return build_corpus(CorpusConfig(tmp_path_factory.mktemp("corpus"), utterances=12))


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_one_go_mfcc_units_reach_the_pnmi_target_and_resume(corpus, cli, tmp_path):
    out = tmp_path / "out"
    args = [
        "units",
        corpus.manifest,
        out,
        "--encoder",
        "mfcc",
        "--k",
        "100",
        "--alignments",
        corpus.alignments,
        "--workers",
        "1",
        "--shards",
        "2",
    ]
    proc = cli(*args, check=True)
    assert "units quality: PNMI" in proc.stdout and "12 done" in proc.stdout
    run = out / "all"
    quality = json.loads((run / "quality.json").read_text())
    assert quality["pnmi"] >= 0.25 and quality["aligned_utterances"] == 12 and quality["k"] == 100
    records = lines(run / "all_corpus_timestamped.jsonl")
    texts = (run / "all_units.txt").read_text().splitlines()
    assert [r["id"] for r in records] == [r["id"] for r in lines(corpus.manifest)] and len(texts) == 12
    for rec, text in zip(records, texts):
        units, times = rec["units"], np.array(rec["times"])
        assert text.split() == [str(u) for u in units]
        assert len(units) == 1 + (round(rec["duration"] * 16000) - 400) // 160
        assert (rec["encoder"], rec["layer"], rec["k"], rec["frame_hop_s"]) == ("mfcc", None, 100, 0.01)
        assert np.allclose(times[:, 0], 0.0075 + 0.01 * np.arange(len(units)), atol=2e-6)
        assert np.allclose(times[1:, 0], times[:-1, 1], atol=2e-6)
        runs = rec["runs"]
        assert sum(round((e - s) / 0.01) for _, s, e in runs) == len(units)
        assert [u for u, _, _ in runs] == [u for i, u in enumerate(units) if i == 0 or units[i - 1] != u]
        assert rec["text"] and rec["speaker"]  # other fields pass through
    first = (run / "all_corpus_timestamped.jsonl").read_bytes()
    again = cli(*args, check=True)
    assert "reusing the k-means" in again.stdout and "0 done, 12 skipped" in again.stdout
    assert (run / "all_corpus_timestamped.jsonl").read_bytes() == first
    other = cli(*[a if a != "100" else "50" for a in args])
    assert other.returncode == 2 and "other settings (kmeans.k: 100 -> 50)" in other.stderr


def test_fit_encode_and_quality_apart_with_a_name(corpus, cli, tmp_path):
    km = tmp_path / "km"
    cli(
        "units",
        "fit",
        corpus.manifest,
        km,
        "--encoder",
        "mfcc",
        "--frame-rate",
        "50",
        "--k",
        "20",
        "--sample-frac",
        "0.5",
        "--max-frames",
        "3000",
        "--seed",
        "3",
        check=True,
    )
    card = json.loads((km / "model_card.json").read_text())
    assert card["frames_used"] <= 3000 < card["frames_seen"] and 0 < card["utterances_used"] < 12
    assert (card["k"], card["dim"], card["seed"], card["frame_hop_s"], card["encoder"]["kind"]) == (
        20,
        39,
        3,
        0.02,
        "mfcc",
    )
    assert len(card["input_manifest_hash"]) == 64 and card["code_version"] and card["inertia"] > 0
    assert sorted(p.name for p in km.iterdir()) == ["config.yaml", "kmeans.safetensors", "model_card.json"]

    enc = tmp_path / "enc"
    cli("units", "encode", corpus.manifest, enc, "--kmeans", km, "--name", "pt", "--workers", "1", check=True)
    assert (enc / "pt_corpus_timestamped.jsonl").is_file() and (enc / "pt_units.txt").is_file()
    proc = cli("units", "quality", enc, corpus.alignments, "--ignore", "sil", check=True)
    report = json.loads((enc / "quality.json").read_text())
    assert (
        "units quality: PNMI" in proc.stdout and report["ignored_labels"] == ["sil"] and report["pnmi"] > 0.2
    )

    # the library extractor gives the corpus' units, batched or one by one
    extractor = UnitExtractor.from_dir(km, device="cpu")
    assert (extractor.sample_rate, extractor.frame_hop_s, extractor.k) == (16000, 0.02, 20)
    records = lines(enc / "pt_corpus_timestamped.jsonl")[:5]
    waves = [
        load_audio(
            corpus.root / r["audio_filepath"]
            if not Path(r["audio_filepath"]).is_absolute()
            else r["audio_filepath"]
        )[0]
        for r in records
    ]
    together = extractor.encode(waves)
    for rec, wave, units in zip(records, waves, together):
        assert units.tolist() == rec["units"] == extractor.encode([wave])[0].tolist()
        assert np.allclose(extractor.frame_times(len(units)), rec["times"], atol=2e-6)


def test_bad_inputs_go_to_errors_and_bad_settings_are_named(corpus, cli, tmp_path):
    km = tmp_path / "km"
    first = lines(corpus.manifest)[:2]
    small = tmp_path / "small.jsonl"
    small.write_text(
        "".join(
            json.dumps({**r, "audio_filepath": str(corpus.root / r["audio_filepath"])}) + "\n" for r in first
        )
    )
    fit(FitConfig(small, km, EncoderOptions(encoder="mfcc"), KMeansOptions(k=8)))
    sf.write(tmp_path / "blip.wav", np.zeros(160, np.float32), 16000)
    (tmp_path / "text.wav").write_text("not audio at all\n" * 10)
    manifest = tmp_path / "mixed.jsonl"
    manifest.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                *[{**r, "audio_filepath": str(corpus.root / r["audio_filepath"])} for r in first],
                {"id": "missing", "audio_filepath": str(tmp_path / "nope.wav")},
                {"id": "blip", "audio_filepath": str(tmp_path / "blip.wav")},
                {"id": "text", "audio_filepath": str(tmp_path / "text.wav")},
            ]
        )
    )
    out = tmp_path / "out"
    proc = cli("units", "encode", manifest, out, "--kmeans", km, "--workers", "1")
    assert proc.returncode == 1 and "3 failed" in proc.stdout
    reasons = {e["id"]: e["reason"] for e in lines(out / "errors.jsonl")}
    assert "file not found" in reasons["missing"] and "not an audio file" in reasons["text"]
    assert "shorter than one frame of the encoder (25 ms)" in reasons["blip"]
    assert len(lines(out / "all_corpus_timestamped.jsonl")) == 2

    no_km = cli("units", "encode", manifest, tmp_path / "o2", "--kmeans", tmp_path)
    assert no_km.returncode == 2 and "not a k-means folder" in no_km.stderr
    too_many = cli("units", "fit", small, tmp_path / "km2", "--encoder", "mfcc", "--k", "100000")
    assert too_many.returncode == 2 and "k=100000 needs at least 100000 frames" in too_many.stderr
    # a k-means folder whose card names another encoder than its centroids fit: one error before any shard
    import shutil

    shutil.copytree(km, tmp_path / "km_edited")
    card_path = tmp_path / "km_edited" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["encoder"] = {**card["encoder"], "kind": "logmel", "preset": "logmel"}
    card_path.write_text(json.dumps(card))
    edited = cli("units", "encode", manifest, tmp_path / "o3", "--kmeans", tmp_path / "km_edited")
    assert edited.returncode == 2 and "fitted on another encoder" in edited.stderr and "Traceback" not in edited.stderr
    assert not (tmp_path / "o3").exists()


def test_a_kmeans_fitted_with_another_chunk_length_is_not_reused(tmp_path):
    """The chunk length shapes SSL frames (and encode rebuilds the encoder from the card, so a reused
    k-means would silently keep the old length)."""
    import dataclasses as dc

    from unitwave.config import to_dict
    from unitwave.units.pipeline import UnitsConfig, _same_fit, fit_config

    base = UnitsConfig(tmp_path / "in.jsonl", tmp_path / "out", EncoderOptions(encoder="hubert-base"))
    card = {"config": to_dict(fit_config(base))}
    assert _same_fit(card, fit_config(base)) == []
    other = dc.replace(base, encoder=EncoderOptions(encoder="hubert-base", chunk_seconds=10.0))
    assert _same_fit(card, fit_config(other)) == ["encoder.chunk_seconds: 30.0 -> 10.0"]
