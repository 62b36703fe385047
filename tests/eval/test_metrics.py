"""Resynthesis metrics on cases with known answers; the MCD cross-checked against mel-cepstral-distance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unitwave.eval.mcep import MCD_CONSTANT, dtw_path, envelope_to_mcep, freqt, world_envelope
from unitwave.eval.metrics import (
    MetricsConfig,
    align,
    best_lag,
    convention,
    evaluate_pair,
    f0_errors,
    mcd_db,
    snr_db,
    summarise,
)

SR = 16000


def voice(seconds: float = 1.0, f0: float = 140.0, vibrato: float = 30.0, seed: int = 0) -> np.ndarray:
    """A speech-like harmonic signal: 39 harmonics of a gliding F0, amplitude-modulated, light noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 + vibrato * np.sin(2 * np.pi * 2 * t)) / SR
    x = sum((0.3 / k) * np.sin(k * phase) for k in range(1, 40)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (x + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def lowpass_noisy(x: np.ndarray, cutoff: float = 2500.0, noise: float = 0.01, delay: int = 400) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    y = sosfilt(butter(6, cutoff, fs=SR, output="sos"), x) + noise * np.random.default_rng(1).standard_normal(
        len(x)
    )
    return np.concatenate([np.zeros(delay), y])[: len(x)].astype(np.float32)


def test_identical_signals_have_zero_mcd_and_f0_error():
    x = voice()
    metrics, tracks = evaluate_pair(x, x.copy(), MetricsConfig())
    assert metrics["mcd_db"] == 0.0 and metrics["f0_rmse_hz"] == 0.0 and metrics["f0_rmse_cents"] == 0.0
    assert metrics["vde"] == metrics["gpe"] == metrics["ffe"] == 0.0
    assert metrics["snr_db"] == math.inf and metrics["lag_ms"] == 0.0 and metrics["length_ratio"] == 1.0
    assert metrics["voiced_frames_both"] > 150 and np.array_equal(tracks["f0_orig"], tracks["f0_synth"])


def test_a_copy_a_semitone_up_is_100_cents_off():
    cfg = MetricsConfig()
    base, shifted = voice(f0=150.0, vibrato=0.0), voice(f0=150.0 * 2 ** (100 / 1200), vibrato=0.0)
    metrics, _ = evaluate_pair(base, shifted, cfg)
    assert metrics["f0_rmse_cents"] == pytest.approx(100.0, abs=3.0)
    assert metrics["f0_rmse_hz"] == pytest.approx(150.0 * (2 ** (1 / 12) - 1), rel=0.05)
    assert metrics["gpe"] == 0.0  # 6 % off: under the 20 % gross error threshold
    down, _ = evaluate_pair(base, voice(f0=150.0 / 1.5, vibrato=0.0), cfg)
    assert down["gpe"] > 0.95 and down["f0_rmse_cents"] == pytest.approx(1200 * math.log2(1.5), abs=5.0)


def test_snr_of_known_noise_and_lag_recovery():
    x = voice()
    noise = 0.05 * np.random.default_rng(3).standard_normal(len(x))
    expected = 10 * math.log10(np.sum(x.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr_db(x, x + noise) == pytest.approx(expected, abs=1e-6)
    delayed = np.concatenate([np.zeros(160, np.float32), x])
    lag = best_lag(x, delayed, 1600)
    assert lag == 160
    ref, test = align(x, delayed, lag)
    assert snr_db(ref, test) == math.inf
    metrics, _ = evaluate_pair(
        x, np.concatenate([np.zeros(160, np.float32), x + noise.astype(np.float32)]), MetricsConfig()
    )
    assert metrics["lag_ms"] == pytest.approx(10.0) and metrics["snr_db"] == pytest.approx(expected, abs=0.05)
    assert metrics["length_ratio"] == pytest.approx((len(x) + 160) / len(x))
    silent, _ = evaluate_pair(x, np.zeros_like(x), MetricsConfig())  # nothing to align with: no shift
    assert best_lag(x, np.zeros_like(x), 1600) == 0 and silent["lag_ms"] == 0.0 and silent["snr_db"] == 0.0


def test_voicing_and_gross_errors_on_hand_made_tracks():
    ref = np.array([0, 0, 100, 100, 100, 100, 200, 200, 0, 0], dtype=float)
    test = np.array([0, 120, 100, 110, 130, 0, 200, 150, 0, 0], dtype=float)
    e = f0_errors(ref, test, 0.2)
    # voicing differs at frames 1 and 5; voiced in both: 2,3,4,6,7; gross (>20 %): 4 (30 %) and 7 (25 %)
    assert (
        e["vde"] == pytest.approx(2 / 10)
        and e["gpe"] == pytest.approx(2 / 5)
        and e["ffe"] == pytest.approx(4 / 10)
    )
    assert e["voiced_frames_both"] == 5
    assert e["f0_rmse_hz"] == pytest.approx(math.sqrt((0 + 100 + 900 + 0 + 2500) / 5))
    assert f0_errors(np.zeros(5), np.zeros(5))["f0_rmse_hz"] is None


def test_dtw_matches_brute_force_and_respects_the_band():
    rng = np.random.default_rng(0)

    def brute(a: np.ndarray, b: np.ndarray) -> float:
        acc = np.full((len(a) + 1, len(b) + 1), np.inf)
        acc[0, 0] = 0.0
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                d = np.linalg.norm(a[i - 1] - b[j - 1])
                acc[i, j] = d + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
        return float(acc[-1, -1])

    for n, m in [(25, 25), (18, 33), (40, 11)]:
        a, b = rng.standard_normal((n, 3)), rng.standard_normal((m, 3))
        path, dist = dtw_path(a, b, band=1000)
        assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
        assert np.all(np.diff(path, axis=0) >= 0) and np.all(np.diff(path, axis=0).sum(axis=1) >= 1)
        assert dist.sum() == pytest.approx(brute(a, b), rel=1e-12)
    path, _ = dtw_path(rng.standard_normal((200, 2)), rng.standard_normal((200, 2)), band=5)
    assert np.abs(path[:, 0] - path[:, 1]).max() <= 5


def test_mel_cepstrum_matches_direct_integration_on_the_warped_axis():
    """freqt (SPTK's recursion, as a matrix) against a numerical integral of log|H| over warped frequency."""
    order, alpha = 23, 0.42
    _, sp, _ = world_envelope(voice(), SR, 5.0)
    mc = envelope_to_mcep(sp, order, alpha)
    w = np.linspace(0, np.pi, sp.shape[1])
    warped = np.linspace(0, np.pi, 20001)
    unwarped = warped - 2 * np.arctan(alpha * np.sin(warped) / (1 + alpha * np.cos(warped)))
    for frame in (40, 100, 160):
        log_h = np.interp(unwarped, w, 0.5 * np.log(sp[frame]))
        direct = [
            np.trapezoid(log_h * np.cos(m * warped), warped) / np.pi * (1 if m == 0 else 2)
            for m in range(order + 1)
        ]
        np.testing.assert_allclose(mc[frame], direct, atol=2e-3)
    c = np.random.default_rng(0).standard_normal(40)
    np.testing.assert_allclose(freqt(c, 12, 0.0), c[:13], atol=1e-15)  # alpha 0: plain truncation


def test_mcd_cross_checked_against_mel_cepstral_distance():
    """Same mel-cepstra, same pair: our DTW MCD equals the package's DTW mean distance times 10/ln10*sqrt(2).

    Stated tolerance: 0.5 % relative (the package uses fastdtw; with an unbounded radius it is exact DTW).
    The package's own default features (log10 mel energies + DCT, no dB constant) are a different
    convention, so the comparison feeds both the same WORLD mel-cepstra.
    """
    mel_cepstral_distance = pytest.importorskip("mel_cepstral_distance")
    cfg = MetricsConfig(silence_db=1e9)  # every frame, as the package does
    order, alpha = cfg.mcep()
    x, y = voice(), lowpass_noisy(voice())
    mx = envelope_to_mcep(world_envelope(x, SR, cfg.frame_period_ms)[1], order, alpha)
    my = envelope_to_mcep(world_envelope(y, SR, cfg.frame_period_ms)[1], order, alpha)
    theirs, _ = mel_cepstral_distance.compare_mfccs(
        mx.T, my.T, s=1, D=order + 1, aligning="dtw", dtw_radius=None
    )
    ours = mcd_db(x, y, cfg)["mcd_db"]
    assert ours == pytest.approx(MCD_CONSTANT * theirs, rel=5e-3)
    assert 2.0 < ours < 20.0
    assert mcd_db(x, 0.3 * x, MetricsConfig())["mcd_db"] < 0.01  # c0 (level) excluded


def test_summary_and_convention_are_explicit():
    rows = [{"snr_db": 3.0, "mcd_db": 5.0}, {"snr_db": 5.0, "mcd_db": None}, {"snr_db": math.inf}]
    s = summarise(rows)
    assert s["snr_db"]["mean"] == 4.0 and s["snr_db"]["n"] == 2 and s["mcd_db"]["n"] == 1
    assert s["f0_rmse_hz"]["n"] == 0 and s["f0_rmse_hz"]["mean"] is None
    conv = convention(MetricsConfig())
    assert (
        conv["mcd_db"]["order"] == 23
        and conv["mcd_db"]["alpha"] == 0.42
        and conv["mcd_db"]["c0"] == "excluded"
    )
    assert conv["mcd_db"]["frame_period_ms"] == 5.0 and conv["mcd_db"]["fft_size"] == 1024
    assert convention(MetricsConfig(sample_rate=22050))["mcd_db"]["alpha"] == 0.45
