"""``unitwave segment`` through the real CLI: cuts at true pause middles, WAVs, ids, namespaces, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from unitwave.testing.corpus import CorpusConfig, CorpusInfo, build_corpus, load_vad

RATE = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusInfo:
    return build_corpus(
        CorpusConfig(
            tmp_path_factory.mktemp("segment-cli") / "corpus",
            utterances=4,
            sentences_per_utterance=(3, 4),
            pause_seconds=(0.6, 1.1),
            edge_silence_seconds=(0.3, 0.5),
            seed=11,
        )
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_pause_is_cut_in_its_middle(corpus: CorpusInfo, tmp_path: Path, cli) -> None:
    proc = cli(
        "segment",
        corpus.manifest,
        tmp_path,
        "--language",
        "pt-br",
        "--short",
        "keep",
        "--min-segment-s",
        "0",
        "--workers",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "pt-br"  # the language namespaces the outputs
    records = read_jsonl(run / "manifest.jsonl")
    truth = load_vad(corpus.vad)
    sources = {r["id"]: r for r in read_jsonl(corpus.manifest)}
    assert len(records) == sum(len(t["speech"]) for t in truth.values())
    for source_id, t in truth.items():
        mine = [r for r in records if r["source_id"] == source_id]
        assert [r["id"] for r in mine] == [f"{source_id}_{k:04d}" for k in range(len(mine))]
        cuts = [a["source_offset"] + a["duration"] for a in mine[:-1]]
        assert cuts == pytest.approx([b["source_offset"] for b in mine[1:]], abs=1e-4)  # contiguous
        np.testing.assert_allclose(cuts, [(s + e) / 2 for s, e in t["pauses"]], atol=0.05)
        source_audio, _ = sf.read(corpus.root / sources[source_id]["audio_filepath"], dtype="float32")
        for r in mine:
            wav = run / r["audio_filepath"]
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
            assert r["duration"] == pytest.approx(info.frames / RATE)
            first = round(r["source_offset"] * RATE)
            piece, _ = sf.read(wav, dtype="float32")
            np.testing.assert_allclose(piece, source_audio[first : first + len(piece)], atol=1 / 32767)
            assert r["language"] == "pt-br" and r["speaker"] == sources[source_id]["speaker"]
            assert "text" not in r and "offset" not in r  # a file's transcript is not its segment's
            assert Path(r["source"]) == (corpus.root / sources[source_id]["audio_filepath"]).absolute()
        # segment files keep the source's relative folder
        assert Path(mine[0]["audio_filepath"]).parent.as_posix() == "audio/" + str(
            Path(sources[source_id]["audio_filepath"]).parent
        )
    meta = json.loads((run / "segments.meta.json").read_text())
    assert meta["backend"]["name"] == "silero" and meta["rules"]["min_silence_s"] == 0.5
    assert meta["segment_rules"]["short"] == "keep" and meta["segments"] == len(records)


def test_folder_defaults_bad_inputs_and_resume(corpus: CorpusInfo, tmp_path: Path, cli) -> None:
    folder = tmp_path / "raw"
    shutil.copytree(corpus.root / "wavs", folder)
    (folder / "broken.mp3").write_text("not an mp3\n" * 40)
    sf.write(folder / "silent.wav", np.zeros(3 * RATE, np.float32), RATE, subtype="PCM_16")
    sf.write(folder / "tiny.wav", 0.3 * np.sin(np.arange(100) / 5).astype(np.float32), RATE, subtype="PCM_16")
    out = tmp_path / "segments"
    proc = cli("segment", folder, out, "--workers", "2", "--shards", "3")
    assert proc.returncode == 1 and "1 failed" in proc.stdout, proc.stderr
    records = read_jsonl(out / "manifest.jsonl")
    assert records and all(2.0 <= r["duration"] <= 30.0 for r in records)
    assert not any(r["source_id"] in ("silent", "tiny") for r in records)  # no speech: no segments, no error
    for r in records:
        assert (out / r["audio_filepath"]).is_file()
        rel_source = Path(r["source"]).relative_to(folder).with_suffix("")
        assert r["audio_filepath"].startswith(f"audio/{rel_source.parent.as_posix()}/{rel_source.name}_")
        assert r["id"] == f"{rel_source.as_posix()}_{int(r['id'].rsplit('_', 1)[1]):04d}"
    errors = read_jsonl(out / "errors.jsonl")
    assert [(e["id"], e["stage"]) for e in errors] == [("broken", "segment")]
    assert "not an audio file" in errors[0]["reason"]
    # rerun: everything done is skipped (the broken file is retried), outputs unchanged
    before = (out / "manifest.jsonl").read_bytes()
    again = cli("segment", folder, out, "--max-failures", "1")
    assert again.returncode == 0 and "0 done, 6 skipped, 1 failed" in again.stdout
    assert (out / "manifest.jsonl").read_bytes() == before
    refused = cli("segment", folder, out, "--max-segment-s", "20")
    assert refused.returncode == 2 and "max_segment_s: 30.0 -> 20.0" in refused.stderr


def test_energy_without_audio_points_into_the_sources(corpus: CorpusInfo, tmp_path: Path, cli) -> None:
    proc = cli(
        "segment",
        corpus.manifest,
        tmp_path,
        "--name",
        "energy",
        "--vad-backend",
        "energy",
        "--no-write-audio",
        "--workers",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    records = read_jsonl(tmp_path / "energy" / "manifest.jsonl")
    assert records and not (tmp_path / "energy" / "audio").exists()
    truth = load_vad(corpus.vad)
    middles = [(s + e) / 2 for t in truth.values() for s, e in t["pauses"]]
    for r in records:
        assert r["audio_filepath"] == r["source"] and r["offset"] == r["source_offset"]
        end = r["offset"] + r["duration"]  # a cut in the middle of a pause, or the end of the file
        assert min(abs(end - m) for m in middles + [truth[r["source_id"]]["duration"]]) < 0.05
    assert json.loads((tmp_path / "energy" / "segments.meta.json").read_text())["backend"]["name"] == "energy"


def test_a_manifest_elsewhere_keeps_the_folders_its_audio_shares(corpus: CorpusInfo, tmp_path: Path) -> None:
    """``unitwave vad``'s manifest holds absolute paths outside its own folder: segment paths then keep
    the structure below the folder all sources share."""
    from unitwave.data.inputs import input_root as sources_root
    from unitwave.data.manifest import write_manifest

    records = [
        {**r, "audio_filepath": str(corpus.root / r["audio_filepath"])} for r in read_jsonl(corpus.manifest)
    ]
    write_manifest(tmp_path / "meta" / "corpus.json", records)
    assert sources_root(tmp_path / "meta" / "corpus.json") == corpus.root / "wavs"
    assert sources_root(corpus.manifest) == corpus.root
    assert sources_root(tmp_path / "meta" / "corpus.json", tmp_path) == tmp_path


def test_an_output_folder_inside_the_input_is_not_read_back(corpus: CorpusInfo, tmp_path: Path, cli) -> None:
    folder = tmp_path / "raw"
    shutil.copytree(corpus.root / "wavs", folder)
    args = ("segment", folder, folder / "segments", "--vad-backend", "energy", "--workers", "1")
    first = cli(*args, check=True)
    again = cli(*args, check=True)
    assert "0 done, 4 skipped" in again.stdout, first.stdout + again.stdout
    assert not (folder / "segments" / "audio" / "segments").exists()
