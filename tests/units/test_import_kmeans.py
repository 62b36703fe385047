"""``unitwave units import-kmeans``: a fairseq/textlesslib km.bin (joblib pickle) is read only with
--trust-pickle, converted once to safetensors + model card, and then used like any k-means folder."""

from __future__ import annotations

import json

import joblib
import numpy as np
from sklearn.cluster import MiniBatchKMeans

from unitwave.units.extractor import UnitExtractor
from unitwave.units.kmeans import KMeansModel
from unitwave.units.legacy import ImportKmeansConfig, run
from unitwave.units.presets import EncoderOptions


def km_bin(path, dim: int, k: int = 5):
    x = np.random.default_rng(0).standard_normal((200, dim)).astype(np.float32)
    model = MiniBatchKMeans(n_clusters=k, n_init=1, random_state=0, batch_size=100).fit(x)
    joblib.dump(model, path)
    return model


def test_import_needs_trust_then_converts_once(tmp_path, cli):
    model = km_bin(tmp_path / "km.bin", 39)
    refused = cli("units", "import-kmeans", tmp_path / "km.bin", tmp_path / "out", "--encoder", "mfcc")
    assert refused.returncode == 2 and "--trust-pickle" in refused.stderr and not (tmp_path / "out").exists()

    card = run(
        ImportKmeansConfig(
            tmp_path / "km.bin", tmp_path / "out", EncoderOptions(encoder="mfcc"), trust_pickle=True
        )
    )
    assert (card["k"], card["dim"], card["encoder"]["kind"], card["frame_hop_s"]) == (5, 39, "mfcc", 0.01)
    assert card["imported_class"].endswith("MiniBatchKMeans") and len(card["imported_sha256"]) == 64
    assert np.array_equal(
        KMeansModel.load(tmp_path / "out").centroids, model.cluster_centers_.astype(np.float32)
    )
    assert json.loads((tmp_path / "out" / "model_card.json").read_text())["k"] == 5
    wave = (0.1 * np.random.default_rng(1).standard_normal(8000)).astype(np.float32)
    units = UnitExtractor.from_dir(tmp_path / "out", device="cpu").encode([wave])[0]
    assert units.shape == (48,) and units.max() < 5


def test_import_checks_the_encoder_dimension(tmp_path, cli):
    km_bin(tmp_path / "km13.bin", 13)
    proc = cli(
        "units",
        "import-kmeans",
        tmp_path / "km13.bin",
        tmp_path / "out",
        "--encoder",
        "mfcc",
        "--trust-pickle",
    )
    assert proc.returncode == 2 and "dimension 13 but mfcc" in proc.stderr
    # a preset's dimension is known without its weights (none are on this machine)
    proc = cli("units", "import-kmeans", tmp_path / "km13.bin", tmp_path / "out2", "--encoder", "hubert-base",
               "--trust-pickle")
    assert proc.returncode == 2 and "dimension 13 but preset hubert-base gives 768" in proc.stderr
