"""Transformers encoders from tiny random models saved locally: geometry, batch == item by item for each
family (incl. group-norm frontends), the read layer, chunking of long inputs, and load errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from unitwave.units.encoders import SignalEncoder, build_encoder, plan_chunks
from unitwave.units.presets import EncoderOptions, EncoderSpec, resolve_spec
from unitwave.units.random_models import FAMILIES, save_random_model
from unitwave.units.ssl import ModelUnavailableError

LENGTHS = (16000, 12345, 4000, 30011, 399, 640, 721)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {family: save_random_model(root / family, family) for family in FAMILIES}


def waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in LENGTHS]


def spec_for(folder: Path, layer: int = 2, **kw) -> EncoderSpec:
    return EncoderSpec(
        kind="transformers", model=str(folder), layer=layer, frame_hop=0, receptive_field=0, **kw
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_equals_item_by_item(models, family):
    enc = build_encoder(spec_for(models[family]), "cpu")
    field = 560 if family == "w2v-bert" else 400
    assert (enc.spec.frame_hop, enc.spec.receptive_field) == (320, field)
    data = waves()
    together = enc.features(data)
    for wave, feats in zip(data, together):
        alone = enc.features([wave])[0]
        assert feats.shape == alone.shape == (enc.num_frames(wave.size), 32)
        assert torch.allclose(feats, alone, atol=1e-4), float((feats - alone).abs().max())
    assert [f.shape[0] for f in together] == [0 if n < field else 1 + (n - field) // 320 for n in LENGTHS]


@pytest.mark.parametrize("family", ["hubert", "wav2vec2"])
def test_layer_is_the_raw_output_of_that_transformer_layer(models, family):
    from transformers import AutoModel

    wave = waves()[0]
    model = AutoModel.from_pretrained(models[family]).eval()
    x = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7) if family == "wav2vec2" else wave
    captured = []
    model.encoder.layers[0].register_forward_hook(
        lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o)
    )
    with torch.no_grad():
        model(torch.from_numpy(x)[None])
    ours = build_encoder(spec_for(models[family], layer=1), "cpu").features([wave])[0]
    assert torch.allclose(ours, captured[0][0], atol=1e-4)


def test_long_inputs_are_chunked_on_the_frame_grid(models):
    wave = (0.1 * np.random.default_rng(3).standard_normal(16000 * 7 + 123)).astype(np.float32)
    whole = build_encoder(spec_for(models["hubert"]), "cpu").features([wave])[0]
    chunked = build_encoder(
        spec_for(models["hubert"], chunk_seconds=2.0, context_seconds=0.5), "cpu"
    ).features([wave])[0]
    assert chunked.shape == whole.shape
    # each chunk sees 0.5 s of context: features stay close, though attention spans differ
    assert torch.nn.functional.cosine_similarity(chunked, whole, dim=1).mean() > 0.9
    mfcc = resolve_spec(EncoderOptions(encoder="mfcc", chunk_seconds=1.0))
    chunks = SignalEncoder(mfcc, "cpu").features([wave])[0]
    assert torch.equal(
        chunks, SignalEncoder(resolve_spec(EncoderOptions(encoder="mfcc")), "cpu").features([wave])[0]
    )


def test_chunk_plan_tiles_every_frame_once():
    def count(n):
        return 0 if n < 400 else 1 + (n - 400) // 320
    steps = 320 * 1000 + 77
    chunks = plan_chunks(steps, 320, 400, chunk_frames=150, context_frames=20, count=count)
    kept = [c.first_frame + j for c in chunks for j in range(c.keep_to - c.keep_from)]
    assert kept == list(range(count(steps)))
    for c in chunks:
        assert c.start % 320 == 0 and c.end <= steps and count(c.end - c.start) >= c.keep_to
    assert plan_chunks(1000, 320, 400, 150, 20, count) == [plan_chunks(1000, 320, 400, 150, 20, count)[0]]


def test_load_errors_name_the_model_and_the_fix(models, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"facebook/mms-300m.*--model-path DIR"):
        build_encoder(resolve_spec(EncoderOptions(encoder="mms-300m")), "cpu")
    with pytest.raises(ValueError, match="layers 1..2"):
        build_encoder(spec_for(models["hubert"], layer=3), "cpu")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_encoder(spec_for(tmp_path), "cpu")
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="not a supported speech encoder"):
        build_encoder(spec_for(tmp_path / "bert", layer=1), "cpu")


def test_presets_and_names_resolve():
    mms = resolve_spec(EncoderOptions())
    assert (mms.model, mms.layer, mms.frame_hop, mms.receptive_field, mms.frame_hop_s) == (
        "facebook/mms-300m",
        14,
        320,
        400,
        0.02,
    )
    assert resolve_spec(EncoderOptions(encoder="w2v-bert-2")).layer == 17
    assert resolve_spec(EncoderOptions(encoder="hubert-base", layer=9)).layer == 9
    local = resolve_spec(EncoderOptions(encoder="mhubert-147", model_path=Path("/models/mhubert.pt")))
    assert (local.kind, local.model, local.layer) == ("fairseq", "/models/mhubert.pt", 9)
    mfcc50 = resolve_spec(EncoderOptions(encoder="mfcc", frame_rate=50))
    assert (mfcc50.frame_hop, mfcc50.frame_offset_s) == (320, 0.0025)
    assert resolve_spec(EncoderOptions(encoder="org/model", layer=3)).kind == "transformers"
    with pytest.raises(ValueError, match="pass --layer"):
        resolve_spec(EncoderOptions(encoder="org/model"))
    with pytest.raises(ValueError, match="not a preset"):
        resolve_spec(EncoderOptions(encoder="mfcc-13"))
    with pytest.raises(ValueError, match="does not apply"):
        resolve_spec(EncoderOptions(encoder="logmel", layer=3))


def test_the_spec_records_waveform_normalisation_so_a_card_rebuilds_the_same_encoder(tmp_path):
    import json

    folder = save_random_model(tmp_path / "hubert", "hubert")
    preprocessor = folder / "preprocessor_config.json"
    settings = json.loads(preprocessor.read_text())
    preprocessor.write_text(json.dumps({**settings, "do_normalize": True}))  # e.g. wav2vec2-base's
    first = build_encoder(spec_for(folder), "cpu")
    assert first.spec.normalize is True
    wave = (0.2 + 0.05 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32)
    expected = first.features([wave])[0]
    # the model card's spec on a machine whose cache lacks the preprocessor config (from_pretrained
    # alone never downloads it): the same normalisation, the same features
    preprocessor.unlink()
    card_spec = EncoderSpec.from_dict(json.loads(json.dumps(first.spec.to_dict())))
    again = build_encoder(card_spec, "cpu")
    assert torch.allclose(again.features([wave])[0], expected, atol=1e-5)
    assert build_encoder(spec_for(folder), "cpu").spec.normalize is False  # without the record: the default
