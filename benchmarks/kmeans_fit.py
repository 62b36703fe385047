"""k-means fit: unitwave's k-means++ + Lloyd (faiss) vs fairseq simple_kmeans' MiniBatchKMeans, same frames.

Baseline (same run, same frames, same k): scikit-learn ``MiniBatchKMeans(init="k-means++", max_iter=100,
batch_size=10000, tol=0.0, max_no_improvement=100, n_init=20, reassignment_ratio=0.0,
compute_labels=False)``, what ``learn_kmeans.py`` runs. Inertia is measured identically for both: the
sum of squared distances of all frames to their nearest final centroid.

Frames: (a) a mixture of 300 anisotropic Gaussians, 100k x 256 (``--full``: 200k x 768, the size
ENVIRONMENT.md measured; the baseline's 20 k-means++ initialisations on 30k frames then take minutes on
a 2-core machine); (b) MFCC frames (39-d, 100 Hz) of the synthetic espeak corpus, real speech
structure. Target: <= 0.5x the baseline's time at <= 1.02x its inertia.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import report

K = 100


def mixture_frames(n: int = 200_000, dim: int = 768, components: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((components, dim)).astype(np.float32)
    scales = rng.uniform(0.3, 1.5, (components, dim)).astype(np.float32)
    labels = rng.integers(0, components, n)
    x = centres[labels]
    x += rng.standard_normal((n, dim)).astype(np.float32) * scales[labels]
    return x


def mfcc_frames(utterances: int = 48) -> np.ndarray:
    from unitwave.audio.features import mfcc_with_deltas
    from unitwave.audio.io import load_audio
    from unitwave.data.manifest import iter_jsonl
    from unitwave.testing.corpus import CorpusConfig, build_corpus

    root = Path(tempfile.mkdtemp(prefix="uw-bench-km-"))
    info = build_corpus(CorpusConfig(root, utterances=utterances))
    feats = [
        mfcc_with_deltas(load_audio(root / r["audio_filepath"])[0]).numpy() for r in iter_jsonl(info.manifest)
    ]
    return np.concatenate(feats)


def compare(name: str, x: np.ndarray) -> dict[str, float]:
    from unitwave.units.kmeans import fit_kmeans

    t = time.perf_counter()
    baseline = fit_kmeans(x, K, seed=0, backend="sklearn")
    base_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = fit_kmeans(x, K, seed=0, backend="faiss")
    ours_s = time.perf_counter() - t
    print(
        f"   {name}: sklearn {base_s:.1f} s inertia/frame {baseline.inertia_per_frame:.5g}; "
        f"unitwave {ours_s:.1f} s ({ours.iterations} Lloyd it) inertia/frame {ours.inertia_per_frame:.5g}",
        flush=True,
    )
    return {
        f"{name}_frames": int(x.shape[0]),
        f"{name}_dim": int(x.shape[1]),
        f"{name}_sklearn_seconds": round(base_s, 2),
        f"{name}_unitwave_seconds": round(ours_s, 2),
        f"{name}_unitwave_iterations": ours.iterations,
        f"{name}_time_ratio": round(ours_s / base_s, 3),
        f"{name}_inertia_ratio": round(ours.inertia / baseline.inertia, 4),
    }


def main() -> None:
    full = "--full" in sys.argv
    n, dim = (200_000, 768) if full else (100_000, 256)
    metrics: dict[str, float] = {"k": K}
    metrics |= compare(f"gaussian_{dim}d", mixture_frames(n, dim))
    metrics |= compare("mfcc_39d", mfcc_frames())
    report("kmeans_fit", metrics, "time ratio <= 0.5 at inertia ratio <= 1.02 (vs fairseq's MiniBatchKMeans)")


if __name__ == "__main__":
    main()
