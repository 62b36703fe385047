"""The transformers path end to end with tiny random models saved locally: ``unitwave units`` with a
HuBERT folder through the CLI, and fit + ``UnitExtractor`` for wav2vec2 and w2v-BERT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from unitwave.audio.io import load_audio
from unitwave.testing.corpus import CorpusConfig, CorpusInfo, build_corpus
from unitwave.units.extractor import UnitExtractor
from unitwave.units.fit import FitConfig, KMeansOptions, fit
from unitwave.units.presets import EncoderOptions
from unitwave.units.random_models import save_random_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[CorpusInfo, Path]:
    info = build_corpus(
        CorpusConfig(tmp_path_factory.mktemp("corpus"), utterances=4, sentences_per_utterance=(1, 2))
    )
    return info, info.manifest


def test_hubert_folder_through_the_cli(corpus, cli, tmp_path):
    info, manifest = corpus
    model = save_random_model(tmp_path / "tiny-hubert", "hubert")
    proc = cli(
        "units",
        manifest,
        tmp_path / "out",
        "--encoder",
        model,
        "--layer",
        "2",
        "--k",
        "8",
        "--name",
        "hb",
        "--alignments",
        info.alignments,
        "--workers",
        "1",
        check=True,
    )
    assert "units quality" in proc.stdout
    card = json.loads((tmp_path / "out" / "hb" / "kmeans" / "model_card.json").read_text())
    assert card["encoder"]["kind"] == "transformers" and card["encoder"]["model"] == str(model.absolute())
    assert (card["dim"], card["layer"], card["frame_hop_s"], card["frame_offset_s"]) == (32, 2, 0.02, 0.0025)
    for rec in map(
        json.loads, (tmp_path / "out" / "hb" / "hb_corpus_timestamped.jsonl").read_text().splitlines()
    ):
        assert (rec["encoder"], rec["layer"], rec["k"]) == ("tiny-hubert", 2, 8)
        assert len(rec["units"]) == 1 + (round(rec["duration"] * 16000) - 400) // 320
        assert rec["times"][0] == [0.0025, 0.0225]


@pytest.mark.parametrize("family,field", [("wav2vec2", 400), ("w2v-bert", 560)])
def test_fit_and_extract_with_other_families(corpus, tmp_path, family, field):
    info, manifest = corpus
    model = save_random_model(tmp_path / family, family)
    km = tmp_path / "km"
    card = fit(FitConfig(manifest, km, EncoderOptions(encoder=str(model), layer=1), KMeansOptions(k=6, seed=1)))
    assert card["encoder"]["receptive_field"] == field and card["frames_used"] > 6
    extractor = UnitExtractor.from_dir(km, device="cpu", max_batch_seconds=60.0)  # padded batches on CPU too
    records = [json.loads(x) for x in manifest.read_text().splitlines()]
    waves = [load_audio(info.root / r["audio_filepath"])[0] for r in records]
    waves.append(waves[0][: 16000 // 3])  # a short one in the same batch
    together = extractor.encode(waves)
    for wave, units in zip(waves, together):
        assert units.shape == (1 + (wave.size - field) // 320,)
        assert np.array_equal(units, extractor.encode([wave])[0])
        assert units.min() >= 0 and units.max() < 6
