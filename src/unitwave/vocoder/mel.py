"""Log-mel spectrogram module for the mel L1 loss (HiFi-GAN's recipe).

The same computation as :func:`unitwave.audio.features.log_mel_spectrogram` (whose Slaney filterbank it
uses), held as a module so the filterbank and window are built once and follow the model's device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unitwave.audio.features import mel_filterbank
from unitwave.vocoder.config import MelConfig


class LogMel(torch.nn.Module):
    """``(B, T)`` or ``(B, 1, T)`` samples -> ``(B, n_mels, frames)`` natural-log mel magnitudes.

    Reflect-pads ``(n_fft - hop) / 2`` samples on both sides and frames without centring, so
    ``frames = T // hop`` when ``T`` is a multiple of ``hop`` (HiFi-GAN's convention).
    """

    def __init__(self, cfg: MelConfig, sample_rate: int) -> None:
        super().__init__()
        self.n_fft, self.hop, self.win = cfg.n_fft, cfg.hop_length, cfg.win_length
        fb = mel_filterbank(sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin_hz, cfg.fmax_hz, style="slaney")
        self.register_buffer("filterbank", torch.from_numpy(fb), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 3:
            wave = wave.squeeze(1)
        pad = (self.n_fft - self.hop) // 2
        wave = F.pad(wave.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            wave,
            self.n_fft,
            hop_length=self.hop,
            win_length=self.win,
            window=self.window,
            center=False,
            return_complex=True,
        )
        magnitude = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
        return torch.log(torch.clamp(self.filterbank @ magnitude, min=1e-5))
