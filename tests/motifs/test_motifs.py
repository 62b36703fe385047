"""unitwave motifs: exact round trip, planted motifs found, vocabulary auto-adjustment, CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unitwave.config import ConfigError
from unitwave.motifs.bpe import MotifsConfig, decode_frames, run
from unitwave.motifs.encoding import MAX_UNITS, text_to_units, units_to_text
from unitwave.testing.unit_corpus import write_unit_corpus
from unitwave.units.corpus import run_lengths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_unit_corpus(tmp_path_factory.mktemp("units"), "synth", num_utterances=200, k=40, num_words=25, seed=1)


def read_vocab(path: Path) -> list[tuple[int, ...]]:
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    return [tuple(int(u) for u in units.split()) if units != "<unk>" else () for _, units, _ in rows]


def frame_lines(units_txt: Path) -> list[list[int]]:
    return [[int(u) for u in line.split()] for line in units_txt.read_text().splitlines()]


@pytest.mark.parametrize("dedup", [True, False])
def test_units_to_pieces_to_units_is_exact(corpus, tmp_path, dedup):
    out = tmp_path / "motifs"
    report = run(MotifsConfig(corpus.units_txt, out, vocab_size=150, dedup=dedup))
    pieces = read_vocab(out / "synth_bpe.vocab")
    rows = [json.loads(line) for line in (out / "synth_motifs.jsonl").read_text().splitlines()]
    ids_txt = [[int(p) for p in line.split()] for line in (out / "synth_motifs.txt").read_text().splitlines()]
    originals = frame_lines(corpus.units_txt)
    assert len(rows) == len(originals) == report["utterances"]
    for row, ids, units in zip(rows, ids_txt, originals):
        assert row["pieces"] == ids
        assert decode_frames(row["pieces"], pieces, row.get("run_frames")) == units
        assert sum(row["frames"]) == len(units)
    # the SentencePiece model itself maps unit characters to the same pieces
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(out / "synth_bpe.model"))
    symbols = [u for u, _ in run_lengths(originals[0])] if dedup else originals[0]
    assert sp.encode(units_to_text(symbols)) == rows[0]["pieces"]
    assert text_to_units(sp.decode(rows[0]["pieces"])) == symbols
    assert report["mode"] == ("runs" if dedup else "frames")


def test_pieces_span_several_units_and_planted_words_are_found(corpus, tmp_path):
    out = tmp_path / "motifs"
    report = run(MotifsConfig(corpus.units_txt, out, vocab_size=120))
    pieces = read_vocab(out / "synth_bpe.vocab")
    assert max(len(p) for p in pieces) >= 4
    assert report["vocabulary"]["motifs"] >= 60 and report["coverage"]["motifs"] > 0.9
    planted = set(corpus.lexicon.words)
    assert len(planted & set(pieces)) >= len(planted) // 2, "most planted words should be pieces"
    top = report["top_motifs"][0]
    assert top["length"] >= 2 and top["count"] >= 10 and top["units"] == list(pieces[top["piece_id"]])
    # durations come from the timestamped corpus: 20 ms frames
    assert top["mean_duration_ms"] == pytest.approx(20.0 * top["mean_frames"], rel=1e-4)
    assert sum(report["length_histogram"]["vocabulary"].values()) == report["vocabulary"]["pieces"] - 1  # <unk>
    assert report["timestamps_file"].endswith("synth_corpus_timestamped.jsonl")


def test_vocabulary_too_high_is_lowered_to_what_sentencepiece_allows(tmp_path):
    small = write_unit_corpus(tmp_path / "units", "tiny", num_utterances=3, k=12, num_words=4, seed=2)
    out = tmp_path / "motifs"
    report = run(MotifsConfig(small.units_txt, out, vocab_size=500))
    assert report["vocab_size_adjusted"] and report["vocab_size"] < 500
    assert f"allows at most {report['vocab_size']} pieces" in report["adjustment"]
    assert len(read_vocab(out / "tiny_bpe.vocab")) == report["vocab_size"]
    with pytest.raises(ConfigError, match="--vocab-size 5 is below the"):
        run(MotifsConfig(small.units_txt, tmp_path / "too_small", vocab_size=5))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=MAX_UNITS - 1), max_size=50))
def test_unit_characters_round_trip(units):
    text = units_to_text(units)
    assert len(text) == len(units) and text_to_units(text) == units


def test_cli_smoke_and_bad_input(corpus, tmp_path, cli):
    env = {"OMP_NUM_THREADS": "1"}
    out = tmp_path / "cli"
    proc = cli("motifs", corpus.units_txt, out, "--vocab-size", "100", "--top", "5", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "motifs: 100 pieces" in proc.stdout
    for name in ("synth_bpe.model", "synth_bpe.vocab", "synth_motifs.txt", "synth_motifs.jsonl", "motif_analysis.json", "config.yaml"):
        assert (out / name).is_file(), name
    assert len(json.loads((out / "motif_analysis.json").read_text())["top_motifs"]) == 5

    bad = tmp_path / "bad_units.txt"
    bad.write_text("1 2 3\n4 five 6\n")
    proc = cli("motifs", bad, tmp_path / "bad", env=env)
    assert proc.returncode == 2 and f"{bad}:2: 'five' is not a unit id" in proc.stderr
    mismatch = tmp_path / "m_units.txt"
    mismatch.write_text("1 2 3\n")
    proc = cli("motifs", mismatch, tmp_path / "mm", "--timestamps", corpus.timestamped, env=env)
    assert proc.returncode == 2 and "does not match" in proc.stderr


def test_empty_lines_stay_in_place_in_the_motif_corpus(tmp_path):
    small = write_unit_corpus(tmp_path / "units", "tiny", num_utterances=6, k=12, num_words=4, seed=3)
    lines = small.units_txt.read_text().splitlines()
    gappy = tmp_path / "gappy_units.txt"
    gappy.write_text("\n".join(["", *lines[:2], "", *lines[2:], "", ""]) + "\n")
    run(MotifsConfig(gappy, tmp_path / "m", vocab_size=40, timestamps=None))
    out = (tmp_path / "m" / "gappy_motifs.txt").read_text().splitlines()
    src = gappy.read_text().splitlines()
    assert len(out) == len(src) and [bool(x.strip()) for x in out] == [bool(x.strip()) for x in src]
