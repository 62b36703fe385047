"""Signal features: mel scales and filterbanks, Kaldi log-mel/MFCC against a plain numpy reference,
frame timing, deltas, and the vocoder-style log-mel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unitwave.audio.features import (
    KALDI_EPSILON,
    deltas,
    hz_to_mel,
    kaldi_log_mel,
    kaldi_mfcc,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    mfcc_with_deltas,
    num_frames,
)


def reference_kaldi_mfcc(x: np.ndarray, sr: int = 16000, hop: int = 160) -> np.ndarray:
    """Kaldi's compute-mfcc-feats written out frame by frame in float64 (no shared code)."""
    length, n_fft, n_mels, n_ceps, lifter = 400, 512, 23, 13, 22.0
    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)
    lo, hi = mel(20.0), mel(sr / 2)
    delta = (hi - lo) / (n_mels + 1)
    bins = mel(np.arange(n_fft // 2) * sr / n_fft)
    banks = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = lo + m * delta, lo + (m + 1) * delta, lo + (m + 2) * delta
        for b, v in enumerate(bins):
            if left < v < right:
                banks[m, b] = (v - left) / (centre - left) if v <= centre else (right - v) / (right - centre)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1))) ** 0.85
    out = []
    for t in range(1 + (len(x) - length) // hop):
        frame = x[t * hop : t * hop + length].astype(np.float64)
        frame = frame - frame.mean()
        frame = frame - 0.97 * np.concatenate([[frame[0]], frame[:-1]])
        power = np.abs(np.fft.rfft(frame * window, n_fft)) ** 2
        log_mel = np.log(np.maximum(banks @ power, KALDI_EPSILON))
        ceps = [np.sqrt(1.0 / n_mels) * log_mel.sum()]
        for k in range(1, n_ceps):
            ceps.append(
                np.sqrt(2.0 / n_mels)
                * sum(log_mel[j] * np.cos(np.pi / n_mels * (j + 0.5) * k) for j in range(n_mels))
            )
        out.append(np.array(ceps) * (1 + 0.5 * lifter * np.sin(np.pi * np.arange(n_ceps) / lifter)))
    return np.array(out)


def speechy(seconds: float = 0.5, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(
        t.size
    )
    return x.astype(np.float32)


@pytest.mark.parametrize("style", ["kaldi", "slaney", "htk"])
def test_mel_scale_round_trip(style):
    freqs = np.array([0.0, 100.0, 999.0, 1000.0, 4321.0, 8000.0])
    assert np.allclose(mel_to_hz(hz_to_mel(freqs, style), style), freqs, atol=1e-6)
    assert np.all(np.diff(hz_to_mel(freqs, style)) > 0)


def test_filterbanks_shapes_peaks_and_norms():
    kaldi = mel_filterbank(16000, 512, 23, 20.0, 8000.0, style="kaldi")
    assert kaldi.shape == (23, 257) and kaldi.min() >= 0 and np.all(kaldi[:, -1] == 0)
    assert np.all(np.diff(kaldi.argmax(axis=1)) > 0) and np.isclose(kaldi.max(), 1.0, atol=0.05)
    slaney = mel_filterbank(22050, 1024, 80, 0.0, 8000.0, style="slaney", norm="slaney")
    assert slaney.shape == (80, 513) and np.all(np.diff(slaney.argmax(axis=1)) >= 0)
    # slaney norm: every triangle has area 1 in Hz (sum over bins times the bin width)
    areas = slaney.sum(axis=1) * 22050 / 1024
    assert np.allclose(areas[5:], 1.0, rtol=0.1)
    assert not np.any(mel_filterbank(16000, 512, 40, 0, 4000, style="htk")[:, 129:])  # nothing above fmax
    with pytest.raises(ValueError, match="fmin < fmax"):
        mel_filterbank(16000, 512, 23, 9000.0)


def test_kaldi_mfcc_matches_a_frame_by_frame_reference():
    x = speechy(0.3)
    ours = kaldi_mfcc(x).numpy()
    ref = reference_kaldi_mfcc(x)
    assert ours.shape == ref.shape == (num_frames(x.size, 400, 160), 13)
    assert np.allclose(ours, ref, rtol=1e-3, atol=1e-3)


def test_frames_cover_exactly_their_window():
    """An impulse changes exactly the frames whose 400-sample window holds it (hop 160 or 320)."""
    for hop in (160, 320):
        x = np.zeros(16000, dtype=np.float32)
        s = 5000
        x[s] = 1.0
        energy = kaldi_log_mel(x, frame_shift_s=hop / 16000).numpy().max(axis=1)
        touched = {t for t in range(energy.size) if energy[t] > math.log(KALDI_EPSILON) + 1}
        expected = {t for t in range(energy.size) if t * hop <= s < t * hop + 400}
        assert touched == expected and len(expected) >= 1
        assert energy.size == num_frames(16000, 400, hop) == 1 + (16000 - 400) // hop


def test_short_input_gives_no_frames_and_batches_match_items():
    assert kaldi_log_mel(np.zeros(399, np.float32)).shape == (0, 23)
    batch = np.stack([speechy(0.2, seed=1), speechy(0.2, seed=2)])
    together = kaldi_mfcc(batch)
    assert together.shape == (2, num_frames(3200, 400, 160), 13)
    assert torch.allclose(together[1], kaldi_mfcc(batch[1]), atol=1e-5)


def test_deltas_follow_the_regression_formula():
    ramp = torch.arange(20, dtype=torch.float32)[:, None] * torch.tensor([[1.0, -2.0]])
    d = deltas(ramp)
    assert torch.allclose(d[2:-2], torch.tensor([[1.0, -2.0]]).expand(16, 2))
    # edges replicate: d[0] = (1*(x1 - x0) + 2*(x2 - x0)) / 10
    assert torch.allclose(d[0], (ramp[1] - ramp[0] + 2 * (ramp[2] - ramp[0])) / 10)
    assert deltas(torch.zeros(0, 3)).shape == (0, 3)
    feats = mfcc_with_deltas(speechy(0.5))
    assert feats.shape == (num_frames(8000, 400, 160), 39)
    assert torch.allclose(feats[:, 13:26], deltas(feats[:, :13]))
    with pytest.raises(ValueError, match="one waveform"):
        mfcc_with_deltas(np.zeros((2, 8000), np.float32))


def test_vocoder_log_mel_frames_batches_and_gradients():
    x = torch.from_numpy(speechy(0.512, 22050)).requires_grad_(True)
    mel = log_mel_spectrogram(x, 22050, n_fft=1024, hop_length=256, n_mels=80)
    assert mel.shape == (80, x.shape[0] // 256)
    mel.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    pair = torch.stack([x.detach(), x.detach() * 0.5])
    both = log_mel_spectrogram(pair, 22050, n_fft=1024, hop_length=256)
    assert torch.allclose(both[0], mel.detach(), atol=1e-5)
    assert torch.all(both[1] <= both[0] + 1e-5)  # half the amplitude never has more energy
