"""k-means for discrete units: fitting, nearest-centroid assignment, and the safetensors model file.

Fitting (``backend="faiss"`` or ``"torch"``): seeded greedy k-means++ initialisation on a sample of
the frames, then full-batch Lloyd iterations on all frames,
assignment by faiss' exact L2 search or a torch matmul (on a GPU when one is there), centroid updates
by ``index_add``, empty clusters re-seeded at the worst-fit frames, stopping when the inertia improves
by less than ``tol`` (relative). ``backend="sklearn"`` is fairseq ``simple_kmeans``' recipe as is:
``MiniBatchKMeans(init="k-means++", max_iter=100, batch_size=10000, tol=0.0, max_no_improvement=100,
n_init=20, reassignment_ratio=0.0)``. Inertia is always reported the same way: the sum over all
frames of the squared distance to the nearest final centroid.
"""

from __future__ import annotations

import dataclasses as dc
import logging
import time
import typing as tp
from pathlib import Path

import numpy as np

if tp.TYPE_CHECKING:
    import torch

log = logging.getLogger("unitwave")
Backend = tp.Literal["auto", "faiss", "torch", "sklearn"]
CENTROIDS_FILE = "kmeans.safetensors"


@dc.dataclass(frozen=True)
class KMeansFit:
    """A fitted k-means: ``centroids (k, D)`` float32 and how it was found."""

    centroids: np.ndarray
    inertia: float  # sum of squared distances of the fit frames to their nearest centroid
    frames: int
    iterations: int
    backend: str
    seconds: float

    @property
    def inertia_per_frame(self) -> float:
        return self.inertia / max(1, self.frames)


def nearest(x: torch.Tensor, centroids: torch.Tensor, rows: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (N,) int64, squared distances (N,))`` of ``x (N, D)`` to ``centroids (k, D)``, same device.

    ``|x - c|^2 = |x|^2 - 2 x.c + |c|^2`` as one matmul per block of ``rows`` frames.
    """
    import torch

    c_norm = (centroids * centroids).sum(1)
    ids = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    dist = torch.empty(x.shape[0], dtype=centroids.dtype, device=x.device)
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows].to(centroids.dtype)
        d = (block * block).sum(1, keepdim=True) - 2.0 * block @ centroids.T + c_norm[None, :]
        best = d.min(dim=1)
        ids[start : start + rows] = best.indices
        dist[start : start + rows] = best.values.clamp(min=0)
    return ids, dist


def _assigner(
    backend: str, device: str
) -> tp.Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``assign(x, centroids) -> (ids, squared distances)`` with faiss or torch."""
    if backend == "faiss":
        import faiss

        def by_faiss(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            index = faiss.IndexFlatL2(c.shape[1])
            index.add(np.ascontiguousarray(c, dtype=np.float32))
            dist, ids = index.search(x, 1)
            return ids[:, 0].astype(np.int64), np.maximum(dist[:, 0], 0.0)

        return by_faiss
    import torch

    def by_torch(x: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.from_numpy(x).to(device)
        ids, dist = nearest(xt, torch.from_numpy(c).to(device))
        return ids.cpu().numpy(), dist.cpu().numpy()

    return by_torch


def resolve_backend(backend: Backend, device: str = "cpu") -> str:
    """``auto``: torch on a GPU, else faiss when installed, else scikit-learn."""
    if backend != "auto":
        return backend
    if device.startswith("cuda"):
        return "torch"
    try:
        import faiss  # noqa: F401

        return "faiss"
    except ImportError:
        return "sklearn"


def kmeans_plusplus(x: np.ndarray, k: int, seed: int, sample: int) -> np.ndarray:
    """Seeded greedy k-means++ centroids ``(k, D)`` from at most ``sample`` random frames of ``x``.

    Greedy k-means++ (Arthur & Vassilvitskii; scikit-learn's variant): each new centre is the best of
    ``2 + ln k`` candidates drawn with probability proportional to the squared distance to the nearest
    centre so far. Distances are matmuls, in float64 for the running potential.
    """
    import torch

    rng = np.random.default_rng(seed)
    pick = x if x.shape[0] <= sample else x[np.sort(rng.choice(x.shape[0], sample, replace=False))]
    points = torch.from_numpy(np.ascontiguousarray(pick, dtype=np.float32))
    sq = (points * points).sum(1)
    trials = 2 + int(np.log(k))

    def sqdist(rows: torch.Tensor) -> torch.Tensor:  # (m,) indices -> (m, n) squared distances
        c = points[rows]
        return (sq[rows][:, None] - 2.0 * c @ points.T + sq[None, :]).clamp(min=0).double()

    chosen = [int(rng.integers(points.shape[0]))]
    closest = sqdist(torch.tensor(chosen))[0]
    for _ in range(1, k):
        cumulative = torch.cumsum(closest, 0).numpy()
        draws = rng.random(trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, draws), points.shape[0] - 1)
        options = torch.minimum(closest[None, :], sqdist(torch.from_numpy(candidates)))
        best = int(torch.argmin(options.sum(1)))
        chosen.append(int(candidates[best]))
        closest = options[best]
    return points[chosen].numpy().copy()


def fit_kmeans(
    x: np.ndarray,
    k: int,
    seed: int = 0,
    backend: Backend = "auto",
    max_iter: int = 100,
    tol: float = 1e-4,
    init_sample: int | None = None,
    device: str = "cpu",
) -> KMeansFit:
    """Fit ``k`` centroids to frames ``x (N, D)`` (see module doc); deterministic for a seed and backend."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"k-means needs frames (N, D), got shape {x.shape}")
    if x.shape[0] < k:
        raise ValueError(
            f"k-means with k={k} needs at least {k} frames, got {x.shape[0]}; "
            f"lower --k or give more audio (--sample-frac, --max-frames)"
        )
    name = resolve_backend(backend, device)
    t0 = time.perf_counter()
    if name == "sklearn":
        centroids, iterations = _fit_sklearn(x, k, seed)
    else:
        sample = init_sample or min(x.shape[0], max(40 * k, 20000))
        centroids = kmeans_plusplus(x, k, seed, sample)
        centroids, iterations = _lloyd(x, centroids, max_iter, tol, _assigner(name, device), seed)
    _, dist = _assigner("faiss" if name == "faiss" else "torch", device)(x, centroids)
    return KMeansFit(
        centroids,
        float(dist.astype(np.float64).sum()),
        x.shape[0],
        iterations,
        name,
        round(time.perf_counter() - t0, 3),
    )


def _lloyd(
    x: np.ndarray,
    centroids: np.ndarray,
    max_iter: int,
    tol: float,
    assign: tp.Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    seed: int,
) -> tuple[np.ndarray, int]:
    import torch

    xt = torch.from_numpy(x)
    k = centroids.shape[0]
    previous = np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):
        ids, dist = assign(x, centroids)
        inertia = float(dist.astype(np.float64).sum())
        counts = np.bincount(ids, minlength=k)
        sums = torch.zeros((k, x.shape[1])).index_add_(0, torch.from_numpy(ids), xt)
        fresh = (sums / torch.from_numpy(np.maximum(counts, 1)).float()[:, None]).numpy()
        empty = np.flatnonzero(counts == 0)
        if empty.size:  # re-seed empty clusters at the frames farthest from their centroid
            far = np.argsort(-dist, kind="stable")[: empty.size]
            fresh[empty] = x[far]
        centroids = fresh
        log.debug("k-means iteration %d: inertia %.6g", iterations, inertia)
        if empty.size == 0 and np.isfinite(previous) and previous - inertia <= tol * abs(previous):
            break
        previous = inertia
    return centroids, iterations


def _fit_sklearn(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, int]:
    """fairseq simple_kmeans' MiniBatchKMeans, seeded."""
    from sklearn.cluster import MiniBatchKMeans

    km = MiniBatchKMeans(
        n_clusters=k,
        init="k-means++",
        max_iter=100,
        batch_size=10000,
        tol=0.0,
        max_no_improvement=100,
        n_init=20,
        reassignment_ratio=0.0,
        compute_labels=False,
        random_state=seed,
    )
    km.fit(x)
    return km.cluster_centers_.astype(np.float32), int(km.n_steps_)


class KMeansModel:
    """Centroids ``(k, D)`` and nearest-centroid assignment (a matmul, on the GPU when given one)."""

    def __init__(self, centroids: np.ndarray, device: str = "cpu") -> None:
        import torch

        c = np.asarray(centroids, dtype=np.float32)
        if c.ndim != 2 or c.shape[0] < 1:
            raise ValueError(f"centroids must be (k, D), got shape {c.shape}")
        self.centroids = c
        self.device = torch.device(device)
        self._c = torch.from_numpy(c).to(self.device)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    def assign(self, features: torch.Tensor | np.ndarray) -> np.ndarray:
        """Unit ids ``(T,)`` int64 of features ``(T, D)``."""
        import torch

        x = torch.as_tensor(features).to(self.device, torch.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"features of shape {tuple(x.shape)} do not match centroids of dimension {self.dim}"
            )
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return nearest(x, self._c)[0].cpu().numpy()

    def save(self, folder: Path) -> Path:
        """Write ``kmeans.safetensors`` (``centroids`` float32 ``[k, D]``) atomically."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{CENTROIDS_FILE}.tmp"
        save_file({"centroids": self.centroids}, str(tmp))
        tmp.replace(folder / CENTROIDS_FILE)
        return folder / CENTROIDS_FILE

    @classmethod
    def load(cls, folder: Path, device: str = "cpu") -> KMeansModel:
        """From ``kmeans.safetensors`` (or ``kmeans.npz`` with a ``centroids`` array)."""
        folder = Path(folder)
        st, npz = folder / CENTROIDS_FILE, folder / "kmeans.npz"
        if st.is_file():
            from safetensors.numpy import load_file

            data = load_file(str(st))
        elif npz.is_file():
            with np.load(npz, allow_pickle=False) as z:
                data = {name: z[name] for name in z.files}
        else:
            raise FileNotFoundError(
                f"{folder}: no {CENTROIDS_FILE} (or kmeans.npz); is this a k-means folder?"
            )
        if "centroids" not in data:
            raise ValueError(f"{folder}: the centroids file has no 'centroids' tensor (has {sorted(data)})")
        return cls(data["centroids"], device)
