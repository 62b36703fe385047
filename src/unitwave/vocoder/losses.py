"""Vocoder objectives: least-squares GAN, feature matching, mel L1 (HiFi-GAN) and waveform L1 (V1).

:class:`VocoderObjective` holds the parts with state (the log-mel module and the discriminators) and
computes one optimisation step's losses; the training layer owns the optimisers and calls, per batch::

    fake = generator(units, f0, speaker)                 # (B, 1, T)
    d_loss, d_logs = objective.discriminator_step(real, fake)   # None when there is no discriminator
    (step the discriminator's optimiser on d_loss)
    g_loss, g_logs = objective.generator_step(real, fake)
    (step the generator's optimiser on g_loss)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unitwave.vocoder.config import VocoderConfig
from unitwave.vocoder.discriminators import Discriminators, Output
from unitwave.vocoder.mel import LogMel


def discriminator_adversarial_loss(real: list[Output], fake: list[Output]) -> torch.Tensor:
    """LSGAN: sum over sub-discriminators of ``mean((1 - D(real))^2) + mean(D(fake)^2)``."""
    loss = real[0][0].new_zeros(())
    for (r, _), (g, _) in zip(real, fake):
        loss = loss + torch.mean((1 - r) ** 2) + torch.mean(g**2)
    return loss


def generator_adversarial_loss(fake: list[Output]) -> torch.Tensor:
    """LSGAN: sum over sub-discriminators of ``mean((1 - D(fake))^2)``."""
    loss = fake[0][0].new_zeros(())
    for g, _ in fake:
        loss = loss + torch.mean((1 - g) ** 2)
    return loss


def feature_matching_loss(real: list[Output], fake: list[Output]) -> torch.Tensor:
    """Sum over sub-discriminators and layers of ``mean(|features(real) - features(fake)|)``."""
    loss = fake[0][0].new_zeros(())
    for (_, real_feats), (_, fake_feats) in zip(real, fake):
        for r, g in zip(real_feats, fake_feats):
            loss = loss + torch.mean(torch.abs(r.detach() - g))
    return loss


def match_length(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both ``(B, 1, T)`` cut to the shorter length."""
    t = min(real.shape[-1], fake.shape[-1])
    return real[..., :t], fake[..., :t]


class VocoderObjective(nn.Module):
    """Losses of one vocoder config; ``discriminator`` is None when the config has no adversarial terms."""

    def __init__(self, cfg: VocoderConfig) -> None:
        super().__init__()
        self.weights = cfg.loss
        self.mel = LogMel(cfg.mel, cfg.sample_rate)
        adversarial = cfg.loss.adversarial > 0 or cfg.loss.feature_matching > 0
        self.discriminator = (
            Discriminators(cfg.mpd_periods, cfg.msd_scales, cfg.discriminator_divisor)
            if adversarial
            else None
        )

    def mel_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """L1 between log-mel spectrograms of ``(B, 1, T)`` waveforms (the validation criterion)."""
        real, fake = match_length(real, fake)
        return F.l1_loss(self.mel(fake), self.mel(real))

    def discriminator_step(
        self, real: torch.Tensor, fake: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]] | None:
        """The discriminator's loss on ``(B, 1, T)`` real and generated audio (``fake`` is detached)."""
        if self.discriminator is None:
            return None
        real, fake = match_length(real, fake)
        loss = discriminator_adversarial_loss(self.discriminator(real), self.discriminator(fake.detach()))
        return loss, {"d_loss": float(loss.detach())}

    def generator_step(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The generator's loss: ``w_mel * mel + w_l1 * L1 + w_adv * adv + w_fm * fm``, with its parts."""
        w = self.weights
        real, fake = match_length(real, fake)
        mel = self.mel_loss(real, fake)
        total = w.mel * mel
        logs = {"mel_loss": float(mel.detach())}
        if w.waveform_l1 > 0:
            l1 = F.l1_loss(fake, real)
            total = total + w.waveform_l1 * l1
            logs["l1_loss"] = float(l1.detach())
        if self.discriminator is not None:
            with torch.no_grad():  # real activations are targets only
                real_out = self.discriminator(real)
            fake_out = self.discriminator(fake)
            adv = generator_adversarial_loss(fake_out)
            fm = feature_matching_loss(real_out, fake_out)
            total = total + w.adversarial * adv + w.feature_matching * fm
            logs.update(adv_loss=float(adv.detach()), fm_loss=float(fm.detach()))
        logs["g_loss"] = float(total.detach())
        return total, logs
