"""The synthetic corpus (unitwave.testing): espeak binding, files, ground truth, determinism, noise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.testing import CorpusConfig, CorpusInfo, build_corpus
from unitwave.testing.corpus import load_alignments, load_vad, run
from unitwave.testing.espeak import SAMPLE_RATE, EspeakError, synthesize

LANGUAGES = {"pt-br", "en-us"}
EXACT_PAUSE_S = 0.5
EXACT_EDGE_S = 0.25


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusInfo:
    """8 utterances: both languages, two speakers each, default pause and edge ranges."""
    return build_corpus(CorpusConfig(tmp_path_factory.mktemp("corpus"), utterances=8))


def exact_config(output_dir: Path, snr_db: float | None = None) -> CorpusConfig:
    """Fixed pause and edge lengths, so the drawn values are known."""
    return CorpusConfig(
        output_dir, utterances=4, sentences_per_utterance=(3, 3), snr_db=snr_db,
        pause_seconds=(EXACT_PAUSE_S, EXACT_PAUSE_S), edge_silence_seconds=(EXACT_EDGE_S, EXACT_EDGE_S),
    )


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> CorpusInfo:
    return build_corpus(exact_config(tmp_path_factory.mktemp("exact")))


# ---------------------------------------------------------------------------------------------------
# espeak binding


def test_hello_world_phones_and_words() -> None:
    s = synthesize("hello world", "en-us")
    assert s.sample_rate == SAMPLE_RATE and s.audio.dtype == np.float32
    spoken = [p for _, _, p in s.phones if p != "sil"]
    assert spoken[0] == "h" and spoken[-1] == "d" and {"l", "w"} <= set(spoken) and len(spoken) == 8
    assert [w for _, _, w in s.words] == ["hello", "world"]
    assert s.phones[0][0] == 0.0 and s.phones[-1][1] == pytest.approx(len(s.audio) / SAMPLE_RATE)
    assert all(a[1] == b[0] for a, b in zip(s.phones, s.phones[1:]))
    assert 0.5 < len(s.audio) / SAMPLE_RATE < 1.2


def test_synthesis_is_deterministic_and_respects_accents() -> None:
    text = "Você já viu o avião?"
    a = synthesize(text, "pt-br+m3", rate=150, pitch=40, pitch_range=60)
    b = synthesize(text, "pt-br+m3", rate=150, pitch=40, pitch_range=60)
    assert np.array_equal(a.audio, b.audio) and a.phones == b.phones and a.words == b.words
    assert " ".join(w for _, _, w in a.words) == "Você já viu o avião"
    faster = synthesize(text, "pt-br+m3", rate=300)
    assert len(faster.audio) < len(a.audio)


def test_sounds_without_an_ipa_symbol_are_not_pauses() -> None:
    # "dias" has espeak's linking glide after /i/, whose IPA name is empty like a pause's
    phones = [p for _, _, p in synthesize("Todos os dias.", "pt-br").phones]
    assert phones[0] == phones[-1] == "sil" and "sil" not in phones[1:-1]
    assert phones[-4:-1] == ["i", "æ", "s"]


def test_unknown_voice_is_an_error() -> None:
    with pytest.raises(EspeakError, match="unknown espeak-ng voice"):
        synthesize("hello", "xx-nonexistent")


# ---------------------------------------------------------------------------------------------------
# corpus files


def test_same_config_gives_byte_identical_files(corpus: CorpusInfo, tmp_path: Path) -> None:
    again = build_corpus(CorpusConfig(tmp_path / "again", utterances=8))
    assert files_of(again.root) == files_of(corpus.root)


def test_manifest_fields_and_layout(corpus: CorpusInfo) -> None:
    records = read_jsonl(corpus.manifest)
    assert len(records) == corpus.utterances == 8
    for index, r in enumerate(records):
        assert set(r) == {"id", "audio_filepath", "duration", "text", "speaker", "language"}
        assert r["id"] == f"{r['speaker']}_{index:04d}" and r["speaker"].startswith(r["language"] + "_")
        assert r["audio_filepath"] == f"wavs/{r['language']}/{r['speaker']}/{r['id']}.wav"
        assert r["text"] and r["duration"] == round(r["duration"], 4)
    assert corpus.total_seconds == pytest.approx(sum(r["duration"] for r in records), abs=1e-3)


def test_two_languages_with_the_configured_speakers(corpus: CorpusInfo, tmp_path: Path) -> None:
    records = read_jsonl(corpus.manifest)
    assert {r["language"] for r in records} == LANGUAGES
    for language in LANGUAGES:
        assert len({r["speaker"] for r in records if r["language"] == language}) == 2
    three = build_corpus(CorpusConfig(tmp_path, utterances=6, languages=("en-us",), speakers_per_language=3,
                                      sentences_per_utterance=(1, 1)))
    assert len({r["speaker"] for r in read_jsonl(three.manifest)}) == 3


def test_durations_match_wav_lengths(corpus: CorpusInfo) -> None:
    for r in read_jsonl(corpus.manifest):
        info = sf.info(str(corpus.root / r["audio_filepath"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert r["duration"] == pytest.approx(info.frames / info.samplerate, abs=1e-4)


# ---------------------------------------------------------------------------------------------------
# ground truth


def test_phones_are_monotonic_and_cover_the_utterance(corpus: CorpusInfo) -> None:
    alignments = load_alignments(corpus.alignments)
    for r in read_jsonl(corpus.manifest):
        phones = alignments[r["id"]]
        assert phones[0][0] == 0.0 and phones[-1][1] == pytest.approx(r["duration"], abs=1e-4)
        assert phones[0][2] == phones[-1][2] == "sil"
        assert all(start < end and label for start, end, label in phones)
        assert all(a[1] == b[0] for a, b in zip(phones, phones[1:]))


def test_phone_speech_regions_match_vad(corpus: CorpusInfo) -> None:
    alignments, vad = load_alignments(corpus.alignments), load_vad(corpus.vad)
    for utt_id, phones in alignments.items():
        speech = vad[utt_id]["speech"]
        for start, end in speech:
            inside = [p for p in phones if p[2] != "sil" and p[0] >= start - 0.02 and p[1] <= end + 0.02]
            assert abs(inside[0][0] - start) <= 0.02 and abs(inside[-1][1] - end) <= 0.02
        spoken = [p for p in phones if p[2] != "sil"]
        assert all(any(s - 1e-4 <= p[0] and p[1] <= e + 1e-4 for s, e in speech) for p in spoken)


def test_words_lie_in_speech_and_spell_the_text(corpus: CorpusInfo) -> None:
    vad = load_vad(corpus.vad)
    words = {r["id"]: r["words"] for r in read_jsonl(corpus.alignments)}
    for r in read_jsonl(corpus.manifest):
        spans = words[r["id"]]
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
        speech = vad[r["id"]]["speech"]
        assert all(any(s - 1e-4 <= w[0] and w[1] <= e + 1e-4 for s, e in speech) for w in spans)
        assert " ".join(w[2] for w in spans) == " ".join(re.findall(r"\w+(?:'\w+)*", r["text"]))


def test_vad_intervals_are_exact_in_the_audio(corpus: CorpusInfo) -> None:
    vad = load_vad(corpus.vad)
    for r in read_jsonl(corpus.manifest):
        audio, rate = sf.read(str(corpus.root / r["audio_filepath"]), dtype="int16")
        intervals = [(round(s * rate), round(e * rate)) for s, e in vad[r["id"]]["speech"]]
        silent = np.ones(len(audio), bool)
        for s, e in intervals:
            silent[s:e] = False
            assert np.abs(audio[s : s + 80]).max() > 0 and np.abs(audio[e - 80 : e]).max() > 0  # 5 ms
        assert not audio[silent].any()
        v = vad[r["id"]]
        assert v["duration"] == r["duration"]
        assert v["pauses"] == [(a[1], b[0]) for a, b in zip(v["speech"], v["speech"][1:])]


def test_pauses_and_edges_have_the_drawn_lengths(corpus: CorpusInfo, exact: CorpusInfo) -> None:
    for v in load_vad(exact.vad).values():
        assert len(v["pauses"]) == 2
        assert all(abs(e - s - EXACT_PAUSE_S) <= 0.01 for s, e in v["pauses"])
        assert abs(v["speech"][0][0] - EXACT_EDGE_S) <= 0.01
        assert abs(v["duration"] - v["speech"][-1][1] - EXACT_EDGE_S) <= 0.01
    for v in load_vad(corpus.vad).values():
        assert all(0.3 - 0.01 <= e - s <= 1.2 + 0.01 for s, e in v["pauses"])
        assert 0.2 - 0.01 <= v["speech"][0][0] <= 0.6 + 0.01


def test_noise_gives_the_requested_snr(exact: CorpusInfo, tmp_path: Path) -> None:
    noisy = build_corpus(exact_config(tmp_path, snr_db=10.0))
    vad = load_vad(exact.vad)
    for r in read_jsonl(exact.manifest):
        clean, rate = sf.read(str(exact.root / r["audio_filepath"]))
        mixed, _ = sf.read(str(noisy.root / r["audio_filepath"]))
        intervals = vad[r["id"]]["speech"]
        speech = np.concatenate([np.arange(round(s * rate), round(e * rate)) for s, e in intervals])
        snr = 10 * np.log10(np.mean(clean[speech] ** 2) / np.mean((mixed - clean)[speech] ** 2))
        assert snr == pytest.approx(10.0, abs=0.5)
    assert read_jsonl(noisy.vad) == read_jsonl(exact.vad)


# ---------------------------------------------------------------------------------------------------
# config and entry point


@pytest.mark.parametrize("changes", [
    {"languages": ("xx-yy",)},
    {"sentences_per_utterance": (3, 2)},
    {"pause_seconds": (1.0, 0.5)},
    {"speakers_per_language": 0},
    {"utterances": 0},
])
def test_bad_config_is_refused(changes: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        CorpusConfig(tmp_path, **changes)


def test_run_prints_what_was_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    info = run(CorpusConfig(tmp_path, utterances=1, sentences_per_utterance=(1, 1)))
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and str(tmp_path) in out and "manifest.jsonl" in out
    assert info.manifest.exists() and info.alignments.exists() and info.vad.exists()
