"""k-means: k-means++ and Lloyd (faiss and torch agree), fairseq's MiniBatchKMeans, the safetensors
model, nearest-centroid assignment, and the seeded reservoir of frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unitwave.units.fit import FrameSample
from unitwave.units.kmeans import KMeansModel, fit_kmeans, kmeans_plusplus, nearest


def blobs(n: int = 3000, k: int = 6, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, dim)).astype(np.float32) * 10
    labels = rng.integers(0, k, n)
    return (centres[labels] + rng.standard_normal((n, dim)).astype(np.float32)), centres


def matched_error(found: np.ndarray, true: np.ndarray) -> float:
    return float(np.max(np.min(((found[:, None] - true[None]) ** 2).sum(-1), axis=0)))


@pytest.mark.parametrize("backend", ["faiss", "torch", "sklearn"])
def test_fit_recovers_separated_clusters(backend):
    n = 600 if backend == "sklearn" else 3000  # fairseq's recipe runs 20 initialisations
    x, true = blobs(n)
    fit = fit_kmeans(x, 6, seed=1, backend=backend)
    assert fit.centroids.shape == (6, 8) and fit.backend == backend and fit.frames == n
    assert matched_error(fit.centroids, true) < 0.5  # the blobs are ~40 apart (squared: 1600)
    _, dist = nearest(torch.from_numpy(x), torch.from_numpy(fit.centroids))
    assert fit.inertia == pytest.approx(float(dist.double().sum()), rel=1e-4)
    assert 7.0 < fit.inertia_per_frame < 9.0  # 8 unit-variance dimensions


def test_faiss_and_torch_lloyd_agree_and_seeds_repeat():
    x, _ = blobs(k=20, seed=3)
    a = fit_kmeans(x, 12, seed=5, backend="faiss")
    b = fit_kmeans(x, 12, seed=5, backend="torch")
    assert np.allclose(a.centroids, b.centroids, atol=1e-3) and a.iterations == b.iterations
    assert np.array_equal(fit_kmeans(x, 12, seed=5, backend="faiss").centroids, a.centroids)
    assert np.array_equal(kmeans_plusplus(x, 12, 7, 1000), kmeans_plusplus(x, 12, 7, 1000))
    assert not np.array_equal(kmeans_plusplus(x, 12, 7, 1000), kmeans_plusplus(x, 12, 8, 1000))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="k=10 needs at least 10 frames, got 5"):
        fit_kmeans(np.zeros((5, 3), np.float32), 10)
    with pytest.raises(ValueError, match=r"frames \(N, D\)"):
        fit_kmeans(np.zeros(5, np.float32), 2)
    with pytest.raises(ValueError, match="dimension 3"):
        KMeansModel(np.zeros((4, 3), np.float32)).assign(np.zeros((2, 5), np.float32))


def test_model_round_trip_and_assignment(tmp_path):
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((16, 5)).astype(np.float32)
    KMeansModel(centroids).save(tmp_path / "km")
    loaded = KMeansModel.load(tmp_path / "km")
    assert np.array_equal(loaded.centroids, centroids) and (loaded.k, loaded.dim) == (16, 5)
    x = rng.standard_normal((1000, 5)).astype(np.float32)
    brute = ((x[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(loaded.assign(x), brute)
    assert loaded.assign(np.zeros((0, 5), np.float32)).shape == (0,)
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "kmeans.npz", centroids=centroids)
    assert np.array_equal(KMeansModel.load(tmp_path / "npz").centroids, centroids)
    with pytest.raises(FileNotFoundError, match="k-means folder"):
        KMeansModel.load(tmp_path)


def test_frame_reservoir_is_bounded_seeded_and_uniform():
    def run(seed: int) -> FrameSample:
        sample = FrameSample(capacity=500, seed=seed)
        for start in range(0, 5000, 250):
            sample.add(np.arange(start, start + 250, dtype=np.float32)[:, None])
        return sample

    a, b = run(0), run(0)
    assert a.frames is not None and b.frames is not None
    assert a.frames.shape == (500, 1) and a.seen == 5000 and np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, run(1).frames)
    # every tenth of the stream is represented about equally (uniform, not just the first or last frames)
    share = np.bincount((a.frames[:, 0] // 500).astype(int), minlength=10)
    assert share.min() > 20
