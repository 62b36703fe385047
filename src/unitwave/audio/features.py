"""Signal features that need no learned weights: mel filterbanks, Kaldi-style log-mel and MFCC, deltas.

Two families live here:

- **Kaldi-compatible** features (what HuBERT's first iteration clusters, as computed by
  ``torchaudio.compliance.kaldi`` in fairseq's ``dump_mfcc_feature.py``): frames of ``frame_length``
  samples every ``hop`` samples with no padding ("snip edges"), so frame ``t`` covers samples
  ``[t * hop, t * hop + frame_length)``; per frame DC removal, pre-emphasis 0.97, Povey window, power
  spectrum on a 512-point FFT, triangular mel filters spaced on ``1127 ln(1 + f / 700)``, natural log
  floored at float32 epsilon, and for MFCC an orthonormal DCT-II and cepstral liftering.
- **Vocoder-style** log-mel spectrograms (HiFi-GAN's recipe: centred frames, magnitude spectrum, slaney
  mel filters, ``log(clamp(x, 1e-5))``), which the vocoder's mel loss reuses.

Everything takes a waveform ``(T,)`` or a batch ``(B, T)`` as numpy or torch float, runs in torch (no
gradient is blocked, so the vocoder can back-propagate through :func:`log_mel_spectrogram`) and keeps
torch imports inside functions.
"""

from __future__ import annotations

import math
import typing as tp

import numpy as np

if tp.TYPE_CHECKING:
    import torch

#: float32 machine epsilon: Kaldi's floor for mel energies before the log
KALDI_EPSILON = float(np.finfo(np.float32).eps)
MelStyle = tp.Literal["kaldi", "slaney", "htk"]


# ----------------------------------------------------------------------------------------------------
# mel scales and filterbanks


def hz_to_mel(freq: np.ndarray | float, style: MelStyle = "slaney") -> np.ndarray:
    """Frequency in Hz to mels: ``kaldi`` 1127 ln(1 + f/700), ``htk`` 2595 log10(1 + f/700), ``slaney``
    linear below 1 kHz and logarithmic above (librosa's default)."""
    f = np.asarray(freq, dtype=np.float64)
    if style == "kaldi":
        return 1127.0 * np.log1p(f / 700.0)
    if style == "htk":
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    mels = f / f_sp
    log_region = f >= min_log_hz
    return np.where(log_region, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(mels: np.ndarray | float, style: MelStyle = "slaney") -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mels, dtype=np.float64)
    if style == "kaldi":
        return 700.0 * np.expm1(m / 1127.0)
    if style == "htk":
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    style: MelStyle = "slaney",
    norm: tp.Literal["slaney"] | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters, ``(n_mels, n_fft // 2 + 1)`` float32, applied to a one-sided spectrum.

    ``style="kaldi"`` builds Kaldi's filters: triangles in the *mel* domain evaluated at each FFT bin's
    mel value, no normalisation, and a zero weight on the Nyquist bin (``norm`` is ignored).
    ``"slaney"``/``"htk"`` build librosa's: triangles in Hz between mel-spaced corners, with ``norm="slaney"``
    scaling each filter to unit area (librosa's and HiFi-GAN's default).
    """
    fmax = sample_rate / 2 if fmax is None or fmax <= 0 else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"mel filterbank needs 0 <= fmin < fmax <= {sample_rate / 2} Hz, got {fmin}, {fmax}")
    n_bins = n_fft // 2 + 1
    bin_hz = np.arange(n_bins) * sample_rate / n_fft
    corners = np.linspace(hz_to_mel(fmin, style), hz_to_mel(fmax, style), n_mels + 2)
    if style == "kaldi":
        bin_mel = hz_to_mel(bin_hz, "kaldi")
        left, centre, right = corners[:-2, None], corners[1:-1, None], corners[2:, None]
        up = (bin_mel[None, :] - left) / (centre - left)
        down = (right - bin_mel[None, :]) / (right - centre)
        weights = np.maximum(0.0, np.minimum(up, down))
        weights[:, -1] = 0.0  # Kaldi's FFT bins stop below Nyquist
        return weights.astype(np.float32)
    corners_hz = mel_to_hz(corners, style)
    widths = np.diff(corners_hz)
    ramps = corners_hz[:, None] - bin_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (corners_hz[2:] - corners_hz[:-2]))[:, None]
    return weights.astype(np.float32)


# ----------------------------------------------------------------------------------------------------
# Kaldi-compatible frames, log-mel and MFCC


def num_frames(n_samples: int, frame_length: int, hop: int) -> int:
    """Frames without edge padding: ``1 + (n - frame_length) // hop``, 0 when ``n < frame_length``."""
    return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // hop


def _as_batch(wave: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    import torch

    x = torch.as_tensor(wave)
    if not torch.is_floating_point(x):
        x = x.float()
    if x.dim() == 1:
        return x[None], True
    if x.dim() != 2:
        raise ValueError(f"expected a waveform (T,) or a batch (B, T), got shape {tuple(x.shape)}")
    return x, False


def kaldi_log_mel(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int = 16000,
    n_mels: int = 23,
    frame_shift_s: float = 0.010,
    frame_length_s: float = 0.025,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    preemphasis: float = 0.97,
) -> torch.Tensor:
    """Kaldi ``compute-fbank`` log mel energies, ``(F, n_mels)`` (or ``(B, F, n_mels)`` for a batch).

    ``F = 1 + (T - frame_length) // hop`` frames (see :func:`num_frames`); frame ``t`` covers samples
    ``[t * hop, t * hop + frame_length)``. ``high_freq <= 0`` counts down from Nyquist, as in Kaldi.
    The waveform is used at the scale it has (fairseq passes [-1, 1] floats); no dither.
    """
    import torch

    x, single = _as_batch(wave)
    x = x.to(torch.float32)
    length = round(frame_length_s * sample_rate)
    hop = round(frame_shift_s * sample_rate)
    n_fft = 1 << (length - 1).bit_length()
    frames_count = num_frames(x.shape[-1], length, hop)
    if frames_count == 0:
        out = x.new_zeros((x.shape[0], 0, n_mels))
        return out[0] if single else out
    frames = x.unfold(-1, length, hop)  # (B, F, length)
    frames = frames - frames.mean(dim=-1, keepdim=True)
    previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = frames - preemphasis * previous
    window = torch.hann_window(length, periodic=False, dtype=torch.float64).pow(0.85).to(frames)
    power = torch.fft.rfft(frames * window, n=n_fft).abs().pow(2)  # (B, F, n_fft // 2 + 1)
    top = high_freq if high_freq > 0 else sample_rate / 2 + high_freq
    bank = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels, low_freq, top, style="kaldi")).to(
        power
    )
    out = torch.clamp(power @ bank.T, min=KALDI_EPSILON).log()
    return out[0] if single else out


def dct_matrix(n_mels: int, n_ceps: int) -> np.ndarray:
    """Orthonormal DCT-II basis as Kaldi uses it, ``(n_mels, n_ceps)``: ``log_mel @ dct`` gives cepstra."""
    n = np.arange(n_mels)[:, None]
    k = np.arange(n_ceps)[None, :]
    basis = np.sqrt(2.0 / n_mels) * np.cos(np.pi / n_mels * (n + 0.5) * k)
    basis[:, 0] = np.sqrt(1.0 / n_mels)
    return basis.astype(np.float32)


def kaldi_mfcc(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int = 16000,
    n_ceps: int = 13,
    n_mels: int = 23,
    cepstral_lifter: float = 22.0,
    frame_shift_s: float = 0.010,
    frame_length_s: float = 0.025,
) -> torch.Tensor:
    """Kaldi ``compute-mfcc-feats`` with ``use_energy=false``: ``(F, n_ceps)`` or ``(B, F, n_ceps)``."""
    import torch

    log_mel = kaldi_log_mel(wave, sample_rate, n_mels, frame_shift_s, frame_length_s)
    ceps = log_mel @ torch.from_numpy(dct_matrix(n_mels, n_ceps)).to(log_mel)
    lifter = 1.0 + 0.5 * cepstral_lifter * np.sin(np.pi * np.arange(n_ceps) / cepstral_lifter)
    return ceps * torch.from_numpy(lifter.astype(np.float32)).to(ceps)


def deltas(features: torch.Tensor, win_length: int = 5) -> torch.Tensor:
    """Regression deltas along time (axis -2) of ``(..., F, D)``, edges replicated (torchaudio's
    ``compute_deltas``): ``d[t] = sum_k k * (x[t + k] - x[t - k]) / (2 * sum_k k^2)``, ``k = 1..N``."""
    import torch

    n = (win_length - 1) // 2
    if n < 1:
        raise ValueError(f"win_length must be >= 3, got {win_length}")
    frames = features.shape[-2]
    if frames == 0:
        return features.clone()
    index = torch.arange(frames, device=features.device)
    denom = 2.0 * sum(k * k for k in range(1, n + 1))
    out = torch.zeros_like(features)
    for k in range(1, n + 1):
        ahead = features.index_select(-2, (index + k).clamp(max=frames - 1))
        behind = features.index_select(-2, (index - k).clamp(min=0))
        out = out + k * (ahead - behind)
    return out / denom


def mfcc_with_deltas(
    wave: np.ndarray | torch.Tensor, sample_rate: int = 16000, frame_shift_s: float = 0.010
) -> torch.Tensor:
    """HuBERT iteration-0 features: 13 MFCC + deltas + delta-deltas, ``(F, 39)`` for one waveform ``(T,)``.

    Deltas are computed over the whole utterance (edges replicated), as fairseq does, so this takes one
    waveform at a time.
    """
    import torch

    x, single = _as_batch(wave)
    if not single:
        raise ValueError("mfcc_with_deltas takes one waveform (T,): deltas replicate each utterance's edges")
    mfcc = kaldi_mfcc(x[0], sample_rate, frame_shift_s=frame_shift_s)
    d1 = deltas(mfcc)
    return torch.cat([mfcc, d1, deltas(d1)], dim=-1)


# ----------------------------------------------------------------------------------------------------
# vocoder-style log-mel


def log_mel_spectrogram(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int = 16000,
    n_fft: int = 1024,
    hop_length: int = 256,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = 8000.0,
    center: bool = True,
    clamp: float = 1e-5,
) -> torch.Tensor:
    """HiFi-GAN's log-mel: ``log(clamp(mel @ |STFT|, clamp))``, ``(n_mels, F)`` or ``(B, n_mels, F)``.

    With ``center`` the signal is reflect-padded by ``(n_fft - hop) / 2`` on each side (HiFi-GAN's
    convention), giving ``F = T // hop`` frames for ``T`` divisible by ``hop``; differentiable.
    """
    import torch
    import torch.nn.functional as F

    x, single = _as_batch(wave)
    win = win_length or n_fft
    if center:
        pad = (n_fft - hop_length) // 2
        x = F.pad(x[:, None], (pad, pad), mode="reflect")[:, 0]
    window = torch.hann_window(win, dtype=x.dtype, device=x.device)
    spec = torch.stft(
        x, n_fft, hop_length=hop_length, win_length=win, window=window, center=False, return_complex=True
    )
    magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)  # (B, n_fft // 2 + 1, F)
    bank = torch.from_numpy(mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, style="slaney")).to(
        magnitude
    )
    out = torch.log(torch.clamp(bank @ magnitude, min=clamp))
    return out[0] if single else out
