"""Resynthesis metrics of one (original, synthesized) pair, with their conventions spelled out.

- Time alignment: the lag (samples) maximising the cross-correlation of the two waveforms within
  ``+-max_lag_ms`` is removed; SNR and F0 compare the overlapping part frame by frame.
- SNR: ``10 log10(sum orig^2 / sum (orig - synth)^2)`` on the aligned signals (no gain fitted).
- MCD: WORLD mel-cepstra (see :mod:`unitwave.eval.mcep`), c0 excluded, DTW-aligned,
  ``(10 / ln 10) sqrt(2 sum_d (c_d - c'_d)^2)`` per path step, averaged over the steps whose original
  frame is within ``silence_db`` of the original's loudest frame.
- F0 (WORLD DIO + StoneMask on both, same settings): RMSE in Hz and in cents over frames voiced in both;
  voicing decision error = share of frames whose voicing differs; gross pitch error = share of frames
  voiced in both that are off by more than ``gross_error`` (20 %); F0 frame error = (voicing errors +
  gross errors) / frames.
- Length ratio: synthesized / original duration.
"""

from __future__ import annotations

import dataclasses as dc
import math
import typing as tp

import numpy as np

from unitwave.eval.mcep import (
    MCD_CONSTANT,
    dtw_path,
    envelope_to_mcep,
    frame_energy_db,
    mcep_params,
    world_envelope,
)


@dc.dataclass(frozen=True)
class MetricsConfig:
    """How pairs are compared (saved with the results)."""

    sample_rate: int = 16000
    """Both signals are resampled to this rate (Hz) before any metric."""
    max_lag_ms: float = 100.0
    """Largest time offset searched when aligning the synthesized signal to the original."""
    frame_period_ms: float = 5.0
    """Frame shift of the F0 tracks and mel-cepstra."""
    f0_floor_hz: float = 50.0
    """Lowest F0 searched (DIO)."""
    f0_ceil_hz: float = 600.0
    """Highest F0 searched (DIO)."""
    gross_error: float = 0.2
    """Relative deviation that counts as a gross pitch error."""
    mcep_order: int | None = None
    """Mel-cepstrum order M (c1..cM compared); default by sample rate (23 at 16 kHz)."""
    mcep_alpha: float | None = None
    """All-pass warping constant; default by sample rate (0.42 at 16 kHz)."""
    dtw_band_s: float = 1.0
    """DTW may stray this many seconds from the diagonal."""
    silence_db: float = 60.0
    """MCD ignores original frames more than this many dB below the original's loudest frame."""

    def mcep(self) -> tuple[int, float]:
        order, alpha = mcep_params(self.sample_rate)
        return (self.mcep_order or order, self.mcep_alpha if self.mcep_alpha is not None else alpha)


def convention(cfg: MetricsConfig) -> dict[str, tp.Any]:
    """What every number means, written next to the numbers."""
    order, alpha = cfg.mcep()
    from unitwave.vocoder.pitch import import_pyworld

    fft_size = int(import_pyworld().get_cheaptrick_fft_size(cfg.sample_rate, cfg.f0_floor_hz))
    return {
        "sample_rate": cfg.sample_rate,
        "alignment": f"lag maximising the waveform cross-correlation within +-{cfg.max_lag_ms:g} ms, removed "
        "before SNR and F0; MCD uses DTW instead",
        "snr_db": "10*log10(sum(orig^2) / sum((orig - synth)^2)) over the aligned overlap, no gain fitted; "
                  "identical signals: infinite (null per file with snr_infinite, counted apart in the summary)",
        "mcd_db": {
            "formula": "(10/ln 10) * sqrt(2 * sum_{d=1..M} (c_d - c'_d)^2), averaged over DTW path steps",
            "mel_cepstrum": "WORLD CheapTrick power envelope -> real cepstrum (c0 halved) -> SPTK freqt",
            "order": order,
            "alpha": alpha,
            "c0": "excluded",
            "frame_period_ms": cfg.frame_period_ms,
            "fft_size": fft_size,
            "window": "CheapTrick's F0-adaptive Hann window (3 pitch periods; DIO+StoneMask F0)",
            "dtw": f"exact, steps (1,0) (0,1) (1,1), Euclidean over c1..cM, band +-{cfg.dtw_band_s:g} s",
            "frames": f"path steps whose original frame is within {cfg.silence_db:g} dB of its loudest frame",
        },
        "f0": {
            "extractor": f"WORLD DIO + StoneMask, {cfg.f0_floor_hz:g}-{cfg.f0_ceil_hz:g} Hz, "
            f"{cfg.frame_period_ms:g} ms frames, frame by frame after alignment",
            "f0_rmse_hz": "RMSE over frames voiced in both",
            "f0_rmse_cents": "RMSE of 1200*log2(synth/orig) over frames voiced in both",
            "vde": "frames whose voicing decision differs / all frames",
            "gpe": f"frames voiced in both with |synth/orig - 1| > {cfg.gross_error:g}"
            " / frames voiced in both",
            "ffe": "(voicing errors + gross pitch errors) / all frames",
        },
        "length_ratio": "synth duration / original duration",
    }


def best_lag(ref: np.ndarray, test: np.ndarray, max_lag: int) -> int:
    """``k`` in ``[-max_lag, max_lag]`` maximising ``sum_n ref[n] * test[n + k]`` (FFT cross-correlation);
    of tied lags the one nearest 0 (a silent ``test`` is not shifted)."""
    size = 1 << math.ceil(math.log2(max(2, len(ref) + len(test))))
    xc = np.fft.irfft(np.fft.rfft(test, size) * np.conj(np.fft.rfft(ref, size)), size)
    lags = np.arange(-max_lag, max_lag + 1)
    lags = lags[(lags < len(test)) & (-lags < len(ref))]
    score = xc[lags % size]
    tied = lags[score == score.max()]
    return int(tied[np.argmin(np.abs(tied))])


def align(ref: np.ndarray, test: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlapping parts once ``test`` is shifted by ``lag`` samples (``test[n + lag] ~ ref[n]``)."""
    if lag >= 0:
        test = test[lag:]
    else:
        ref = ref[-lag:]
    n = min(len(ref), len(test))
    return ref[:n], test[:n]


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """``10 log10(sum ref^2 / sum (ref - test)^2)``; +inf for identical signals."""
    ref64, test64 = np.asarray(ref, np.float64), np.asarray(test, np.float64)
    noise = float(np.sum((ref64 - test64) ** 2))
    signal = float(np.sum(ref64**2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-20) / noise)


def f0_errors(
    f0_ref: np.ndarray, f0_test: np.ndarray, gross_error: float = 0.2
) -> dict[str, float | int | None]:
    """F0 RMSE (Hz, cents), VDE, GPE and FFE of two tracks on the same frames (0 = unvoiced)."""
    n = min(len(f0_ref), len(f0_test))
    r, t = np.asarray(f0_ref[:n], np.float64), np.asarray(f0_test[:n], np.float64)
    rv, tv = r > 0, t > 0
    both = rv & tv
    nb = int(both.sum())
    voicing_errors = int((rv != tv).sum())
    gross = int((np.abs(t[both] / r[both] - 1.0) > gross_error).sum()) if nb else 0
    out: dict[str, float | int | None] = {
        "f0_rmse_hz": float(np.sqrt(np.mean((t[both] - r[both]) ** 2))) if nb else None,
        "f0_rmse_cents": float(np.sqrt(np.mean((1200.0 * np.log2(t[both] / r[both])) ** 2))) if nb else None,
        "vde": voicing_errors / n if n else None,
        "gpe": gross / nb if nb else None,
        "ffe": (voicing_errors + gross) / n if n else None,
        "voiced_frames_both": nb,
        "f0_frames": n,
    }
    return out


def mcd_db(ref: np.ndarray, test: np.ndarray, cfg: MetricsConfig) -> dict[str, float | int]:
    """DTW mel-cepstral distortion (dB) of two ``(T,)`` signals at ``cfg.sample_rate``; see the module doc."""
    order, alpha = cfg.mcep()
    _, sp_ref, _ = world_envelope(ref, cfg.sample_rate, cfg.frame_period_ms, cfg.f0_floor_hz, cfg.f0_ceil_hz)
    _, sp_test, _ = world_envelope(
        test, cfg.sample_rate, cfg.frame_period_ms, cfg.f0_floor_hz, cfg.f0_ceil_hz
    )
    mc_ref = envelope_to_mcep(sp_ref, order, alpha)[:, 1:]
    mc_test = envelope_to_mcep(sp_test, order, alpha)[:, 1:]
    band = max(1, round(cfg.dtw_band_s * 1000.0 / cfg.frame_period_ms))
    path, dist = dtw_path(mc_ref, mc_test, band)
    energy = frame_energy_db(ref, cfg.sample_rate, cfg.frame_period_ms, len(mc_ref))
    loud = energy[path[:, 0]] >= energy.max() - cfg.silence_db
    steps = dist[loud] if loud.any() else dist
    return {"mcd_db": float(MCD_CONSTANT * steps.mean()), "mcd_frames": len(steps)}


def evaluate_pair(
    orig: np.ndarray, synth: np.ndarray, cfg: MetricsConfig
) -> tuple[dict[str, tp.Any], dict[str, np.ndarray]]:
    """All metrics of ``(T,)`` original and synthesized audio at ``cfg.sample_rate``.

    Returns ``(metrics, tracks)``; tracks are the aligned F0 tracks ``f0_orig``/``f0_synth`` (Hz per frame).
    """
    from unitwave.vocoder.pitch import world_f0

    sr = cfg.sample_rate
    if len(orig) == 0 or len(synth) == 0:
        raise ValueError("empty audio")
    lag = best_lag(orig, synth, round(cfg.max_lag_ms * sr / 1000.0))
    ref_a, test_a = align(orig, synth, lag)
    metrics: dict[str, tp.Any] = {
        "snr_db": snr_db(ref_a, test_a),
        "lag_ms": 1000.0 * lag / sr,
        "length_ratio": len(synth) / len(orig),
        "orig_seconds": len(orig) / sr,
        "synth_seconds": len(synth) / sr,
    }
    metrics.update(mcd_db(orig, synth, cfg))
    f0_ref = world_f0(ref_a, sr, cfg.frame_period_ms, cfg.f0_floor_hz, cfg.f0_ceil_hz)
    f0_test = world_f0(test_a, sr, cfg.frame_period_ms, cfg.f0_floor_hz, cfg.f0_ceil_hz)
    metrics.update(f0_errors(f0_ref, f0_test, cfg.gross_error))
    return metrics, {"f0_orig": f0_ref, "f0_synth": f0_test}


#: metrics summarised over files, with the users' "good values" where they gave one
SUMMARY_METRICS: dict[str, str] = {
    "snr_db": "> 5 dB",
    "mcd_db": "< 8 dB",
    "f0_rmse_hz": "< 20 Hz",
    "f0_rmse_cents": "",
    "vde": "",
    "gpe": "",
    "ffe": "",
    "length_ratio": "0.95 - 1.05",
}


def summarise(rows: tp.Sequence[dict[str, tp.Any]]) -> dict[str, dict[str, float | int | None]]:
    """Mean, median, std, min, max and count of each summary metric over files (missing values skipped)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for key in SUMMARY_METRICS:
        vals = np.array(
            [float(r[key]) for r in rows if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
        )
        if len(vals) == 0:
            out[key] = {"mean": None, "median": None, "std": None, "min": None, "max": None, "n": 0}
            continue
        out[key] = {
            "mean": float(vals.mean()),
            "median": float(np.median(vals)),
            "std": float(vals.std()),
            "min": float(vals.min()),
            "max": float(vals.max()),
            "n": len(vals),
        }
    infinite = sum(1 for r in rows if r.get("snr_infinite"))
    if infinite and "snr_db" in out:  # identical pairs: infinite SNR, left out of the statistics, counted here
        out["snr_db"]["infinite"] = infinite
    return out
