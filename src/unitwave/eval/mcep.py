"""Mel-cepstra (WORLD envelope + SPTK-style frequency warping, no pysptk) and a banded exact DTW.

Mel-cepstrum of a frame: the CheapTrick power envelope ``P(w)`` -> real cepstrum ``c = irfft(log P)``
(``c[0]`` halved: SPTK's convention ``log|H(e^jw)| = sum_m c(m) cos(wm)``) -> its causal half warped onto
the mel-like frequency axis of the all-pass ``z^-1 -> (z^-1 - alpha) / (1 - alpha z^-1)`` by SPTK's
``freqt`` recursion, truncated to order M. ``freqt`` is linear, so it is applied as one
``(M + 1, L)`` matrix built once per (order, alpha, length).
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: (order M, alpha) by sample rate: the SPTK table used by ESPnet's MCD and most TTS papers
MCEP_PARAMS: dict[int, tuple[int, float]] = {
    8000: (13, 0.31),
    16000: (23, 0.42),
    22050: (34, 0.45),
    24000: (34, 0.46),
    32000: (36, 0.50),
    44100: (39, 0.53),
    48000: (39, 0.55),
}
MCD_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mcep_params(sample_rate: int) -> tuple[int, float]:
    """``(order, alpha)`` for a sample rate (the nearest tabulated rate when not in the table)."""
    nearest = min(MCEP_PARAMS, key=lambda sr: abs(sr - sample_rate))
    return MCEP_PARAMS[nearest]


@functools.lru_cache(maxsize=16)
def freqt_matrix(order: int, alpha: float, length: int) -> np.ndarray:
    """``A`` with ``freqt(c, order, alpha) == A @ c`` for ``length``-long cepstra: ``(order + 1, length)``."""
    beta = 1.0 - alpha * alpha
    g = np.zeros((order + 1, length))
    eye = np.eye(length)
    for i in range(length - 1, -1, -1):  # SPTK: from the highest input coefficient down to c[0]
        d = g.copy()
        g[0] = eye[i] + alpha * d[0]
        if order >= 1:
            g[1] = beta * d[0] + alpha * d[1]
        for j in range(2, order + 1):
            g[j] = d[j - 1] + alpha * (d[j] - g[j - 1])
    return g


def freqt(c: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """Frequency-warp cepstra ``(..., L)`` to order ``order``: ``(..., order + 1)``."""
    return c @ freqt_matrix(order, float(alpha), c.shape[-1]).T


def envelope_to_mcep(power_envelope: np.ndarray, order: int, alpha: float) -> np.ndarray:
    """``(frames, fft // 2 + 1)`` power spectra -> ``(frames, order + 1)`` mel-cepstra (c0 first)."""
    log_p = np.log(np.maximum(power_envelope, 1e-20))
    c = np.fft.irfft(log_p, axis=-1)[:, : power_envelope.shape[-1]]
    c[:, 0] /= 2.0
    return freqt(c, order, alpha)


def world_envelope(
    audio: np.ndarray,
    sample_rate: int,
    frame_period_ms: float,
    f0_floor: float = 50.0,
    f0_ceil: float = 600.0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """``(f0 (frames,), CheapTrick power envelope (frames, fft // 2 + 1), fft_size)`` of ``(T,)`` audio."""
    from unitwave.vocoder.pitch import import_pyworld

    pw = import_pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    f0, times = pw.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
    f0 = pw.stonemask(x, f0, times, sample_rate)
    fft_size = pw.get_cheaptrick_fft_size(sample_rate, f0_floor)
    sp = pw.cheaptrick(x, f0, times, sample_rate, f0_floor=f0_floor, fft_size=fft_size)
    return f0, sp, fft_size


def frame_energy_db(audio: np.ndarray, sample_rate: int, frame_period_ms: float, frames: int) -> np.ndarray:
    """Energy in dB of ``frames`` windows of 25 ms centred every ``frame_period_ms``: ``(frames,)``."""
    hop = sample_rate * frame_period_ms / 1000.0
    half = int(0.0125 * sample_rate)
    padded = np.pad(np.asarray(audio, dtype=np.float64), (half, half))
    sq = np.concatenate([[0.0], np.cumsum(padded**2)])
    centers = np.round(np.arange(frames) * hop).astype(np.int64) + half
    lo = np.clip(centers - half, 0, len(padded))
    hi = np.clip(centers + half, 0, len(padded))
    energy = (sq[hi] - sq[lo]) / np.maximum(hi - lo, 1)
    return 10.0 * np.log10(energy + 1e-12)


def dtw_path(x: np.ndarray, y: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact DTW of ``(N, D)`` and ``(M, D)`` under Euclidean distance, steps (1,0), (0,1), (1,1).

    Cells are limited to ``|j - i (M - 1) / (N - 1)| <= band`` (widened so the band stays connected).
    Returns ``(path (P, 2) index pairs from (0, 0) to (N - 1, M - 1), distance of each pair (P,))``.
    """
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise ValueError("DTW needs at least one frame on each side")
    slope = (m - 1) / (n - 1) if n > 1 else 0.0
    radius = max(int(band), math.ceil(slope) + 1, 1)
    centre = np.arange(n) * slope
    lo = np.clip(np.ceil(centre - radius), 0, m - 1).astype(np.int64)
    hi = np.clip(np.floor(centre + radius), 0, m - 1).astype(np.int64)
    lo[0], hi[-1] = 0, m - 1
    width = int((hi - lo).max()) + 1
    acc = np.full((n, width), np.inf)  # accumulated cost, row i holds columns lo[i]..hi[i]
    dist = np.full((n, width), np.inf)
    for i in range(n):
        cols = np.arange(lo[i], hi[i] + 1)
        d = np.sqrt(((y[cols] - x[i]) ** 2).sum(axis=1))
        dist[i, : len(cols)] = d
        if i == 0:
            acc[0, : len(cols)] = np.cumsum(d)
            continue
        prev = np.full(m + 1, np.inf)  # previous row on absolute columns, shifted by one for j - 1
        prev[lo[i - 1] + 1 : hi[i - 1] + 2] = acc[i - 1, : hi[i - 1] - lo[i - 1] + 1]
        best_from_above = np.minimum(prev[cols + 1], prev[cols])  # (i-1, j) and (i-1, j-1)
        a = d + best_from_above
        # row recurrence D[j] = min(A[j], d[j] + D[j-1]) solved with a running minimum
        s = np.cumsum(d)
        acc[i, : len(cols)] = s + np.minimum.accumulate(a - s)
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1

    def cost(r: int, c: int) -> float:
        return acc[r, c - lo[r]] if 0 <= r and lo[r] <= c <= hi[r] else np.inf

    while (i, j) != (0, 0):
        options = [(cost(i - 1, j - 1), i - 1, j - 1), (cost(i - 1, j), i - 1, j), (cost(i, j - 1), i, j - 1)]
        _, i, j = min(options, key=lambda o: o[0])
        path.append((i, j))
    pairs = np.array(path[::-1], dtype=np.int64)
    step_dist = dist[pairs[:, 0], pairs[:, 1] - lo[pairs[:, 0]]]
    return pairs, step_dist
