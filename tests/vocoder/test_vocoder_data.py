"""F0 on unit frames (WORLD), its cache and quantisation; the (units, F0, audio) training dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from unitwave.vocoder.config import PitchConfig, VocoderConfig
from unitwave.vocoder.dataset import UnitAudioDataset, collate, read_unit_corpus, speaker_table
from unitwave.vocoder.pitch import (
    F0Cache,
    bin_edges_hz,
    dequantize_f0,
    pool_to_frames,
    quantize_f0,
    unit_f0,
)

SR = 16000


def tone_then_silence(f0: float, tone_s: float = 0.5, silence_s: float = 0.3) -> np.ndarray:
    t = np.arange(int(tone_s * SR)) / SR
    x = (
        0.4 * np.sin(2 * np.pi * f0 * t)
        + 0.2 * np.sin(2 * np.pi * 2 * f0 * t)
        + 0.1 * np.sin(2 * np.pi * 3 * f0 * t)
    )
    return np.concatenate([x, np.zeros(int(silence_s * SR))]).astype(np.float32)


def test_unit_f0_follows_the_tone_and_marks_silence_unvoiced():
    cfg = PitchConfig()
    track = unit_f0(tone_then_silence(150.0), SR, 0.02, 40, cfg)
    assert track.shape == (40,) and track.dtype == np.float32
    np.testing.assert_allclose(track[2:23], 150.0, rtol=0.01)
    assert np.all(track[27:] == 0.0)


def test_pooling_onto_frames_needs_half_voiced():
    fine = np.array([100, 100, 0, 0, 200, 0, 0, 0, 400, 400], dtype=np.float32)  # 5 ms frames
    pooled = pool_to_frames(fine, 0.005, 0.02, 3)  # 4 fine frames per 20 ms frame
    np.testing.assert_allclose(pooled, [100.0, 0.0, 400.0])


def test_quantisation_bins_and_unvoiced():
    cfg = PitchConfig()
    edges = bin_edges_hz(cfg)
    assert len(edges) == 33 and edges[0] == pytest.approx(50.0) and edges[-1] == pytest.approx(400.0)
    assert np.allclose(np.diff(np.log(edges)), np.log(8.0) / 32)  # log-spaced
    bins = quantize_f0(
        np.array([0.0, -1.0, 10.0, 50.0, 50.0 * 8 ** (1 / 32) + 1e-6, 399.0, 400.0, 5000.0]), cfg
    )
    assert bins.tolist() == [0, 0, 1, 1, 2, 32, 32, 32]
    voiced = np.geomspace(51, 399, 200)
    back = dequantize_f0(quantize_f0(voiced, cfg), cfg)
    assert np.max(np.abs(np.log2(back / voiced))) <= np.log2(8.0) / 64 + 1e-9  # within half a bin
    assert dequantize_f0(np.array([0]), cfg)[0] == 0.0


def test_f0_cache_is_reused_and_keyed_by_parameters(tmp_path):
    wav = tmp_path / "a.wav"
    audio = tone_then_silence(200.0)
    sf.write(wav, audio, SR)
    cache = F0Cache(tmp_path / "f0", PitchConfig(), SR)
    first = cache.get("utt/1", wav, 0.02, 40, lambda: audio)
    assert len(list((tmp_path / "f0").glob("*.npy"))) == 1

    def must_not_load() -> np.ndarray:
        raise AssertionError("cached track was recomputed")

    np.testing.assert_array_equal(cache.get("utt/1", wav, 0.02, 40, must_not_load), first)
    other = F0Cache(tmp_path / "f0", PitchConfig(floor_hz=60.0), SR)
    other.get("utt/1", wav, 0.02, 40, lambda: audio)  # other extractor settings: its own file
    assert len(list((tmp_path / "f0").glob("*.npy"))) == 2


def write_corpus(tmp_path, hop_s: float = 0.02):
    """Two utterances (tones), a unit corpus JSONL and an audio manifest with speakers."""
    (tmp_path / "wavs").mkdir()
    rows, manifest = [], []
    for i, (f0, seconds, spk) in enumerate([(150.0, 0.8, "ana"), (220.0, 0.3, "bob")]):
        audio = tone_then_silence(f0, seconds, 0.1)
        sf.write(tmp_path / "wavs" / f"u{i}.wav", audio, SR)
        n = int(len(audio) / SR / hop_s)
        rows.append(
            {
                "id": f"u{i}",
                "audio_filepath": f"wavs/u{i}.wav",
                "frame_hop_s": hop_s,
                "units": [(j // 3) % 7 for j in range(n)],
                "encoder": "test",
                "k": 7,
            }
        )
        manifest.append({"id": f"u{i}", "audio_filepath": f"wavs/u{i}.wav", "speaker": spk})
    corpus = tmp_path / "test_corpus_timestamped.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    return corpus, tmp_path / "manifest.jsonl"


def test_dataset_gives_aligned_segments_with_f0_and_speakers(tmp_path):
    corpus, manifest = write_corpus(tmp_path)
    utts = read_unit_corpus(corpus, manifest)
    assert [u.id for u in utts] == ["u0", "u1"] and speaker_table(utts) == ["ana", "bob"]
    cfg = VocoderConfig().with_units(7)
    torch.manual_seed(0)
    ds = UnitAudioDataset(
        utts, cfg, segment_samples=6400, f0_cache_dir=tmp_path / "f0", speakers=speaker_table(utts)
    )
    long, short = ds[0], ds[1]
    assert long["units"].shape == (20,) and long["audio"].shape == (1, 20 * 320) and int(long["length"]) == 20
    assert int(short["length"]) == 20 and short["units"].shape == (20,)  # 0.4 s = 20 frames, no padding
    assert int(long["speaker"]) == 0 and int(short["speaker"]) == 1
    voiced = long["f0"][long["f0"] > 0]
    assert len(voiced) > 0 and set(voiced.tolist()) <= set(
        quantize_f0(np.array([148.0, 150.0, 152.0]), cfg.pitch).tolist()
    )
    assert len(list((tmp_path / "f0").glob("*.npy"))) == 2
    batch = collate([long, short])
    assert (
        batch["units"].shape == (2, 20)
        and batch["audio"].shape == (2, 1, 6400)
        and batch["id"] == ["u0", "u1"]
    )
    full = UnitAudioDataset(utts, cfg, segment_samples=None, f0_cache_dir=tmp_path / "f0")
    item = full[0]
    assert item["units"].shape == (45,) and item["audio"].shape == (1, 45 * 320)
    padded = UnitAudioDataset(utts, cfg, segment_samples=16000)[1]  # 50 frames wanted, 20 real
    assert int(padded["length"]) == 20 and padded["audio"].shape == (1, 16000)
    assert torch.all(padded["audio"][0, 20 * 320 :] == 0) and torch.all(padded["units"][20:] == 0)


def test_hop_mismatch_and_missing_audio_are_explained(tmp_path):
    corpus, manifest = write_corpus(tmp_path, hop_s=0.025)
    utts = read_unit_corpus(corpus, manifest)
    with pytest.raises(ValueError, match="upsamples each frame by 320"):
        UnitAudioDataset(utts, VocoderConfig().with_units(7))
    (tmp_path / "other.jsonl").write_text(json.dumps({"id": "nope", "audio_filepath": "x.wav"}) + "\n")
    with pytest.raises(ValueError, match="no utterance with audio"):
        read_unit_corpus(corpus, tmp_path / "other.jsonl")


def test_given_f0_tracks_replace_extraction(tmp_path):
    corpus, manifest = write_corpus(tmp_path)
    rows = [json.loads(line) for line in corpus.read_text().splitlines()]
    rows[0]["f0"] = [0.0 if i % 2 else 200.0 for i in range(len(rows[0]["units"]))]
    np.save(tmp_path / "u1_f0.npy", np.full(len(rows[1]["units"]), 100.0, np.float32))
    rows[1]["f0_filepath"] = "u1_f0.npy"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = VocoderConfig().with_units(7)
    ds = UnitAudioDataset(
        read_unit_corpus(corpus, manifest), cfg, segment_samples=None, f0_cache_dir=tmp_path / "f0"
    )
    bin200, bin100 = quantize_f0(np.array([200.0, 100.0]), cfg.pitch)
    assert ds[0]["f0"][:4].tolist() == [bin200, 0, bin200, 0]
    assert set(ds[1]["f0"].tolist()) == {bin100}
    assert not (tmp_path / "f0").exists()  # nothing extracted

