"""The users' V1 vocoder: unit embedding -> transposed convolutions -> tanh (no pitch, no speaker).

Kept as a baseline; it is trained with mel + waveform L1 only (no discriminator). Shapes as for
:class:`~unitwave.vocoder.hifigan.HifiganGenerator`: ``(B, N)`` units -> ``(B, 1, N * hop)`` samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unitwave.vocoder.config import SimpleConfig
from unitwave.vocoder.hifigan import LRELU_SLOPE, apply_mask, decoder_context, lengths_mask


class SimpleGenerator(nn.Module):
    """Per stage: lrelu -> transposed conv (x rate) -> lrelu -> conv k=7 (residual)."""

    def __init__(self, cfg: SimpleConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.unit_embed = nn.Embedding(cfg.num_units, cfg.unit_dim)
        self.conv_pre = nn.Conv1d(cfg.unit_dim, cfg.channels, 7, padding=3)
        self.ups = nn.ModuleList()
        self.convs = nn.ModuleList()
        ch = cfg.channels
        self.up_kernels: list[int] = []
        for u in cfg.upsample_rates:
            k = cfg.kernel_size_factor * u
            k += (k - u) % 2  # kernel - rate even: each stage multiplies the length exactly
            self.up_kernels.append(k)
            self.ups.append(nn.ConvTranspose1d(ch, ch // 2, k, u, padding=(k - u) // 2))
            self.convs.append(nn.Conv1d(ch // 2, ch // 2, 7, padding=3))
            ch //= 2
        self.conv_post = nn.Conv1d(ch, 1, 7, padding=3)
        #: decoder runs 2-D channels-last convolutions on (B, C, 1, T) (CPU inference; see vocoder.fast)
        self.channels_last = False

    @property
    def hop(self) -> int:
        return self.cfg.hop

    @property
    def context_frames(self) -> int:
        """Unit frames on each side that an output sample depends on (the receptive field)."""
        return decoder_context(self.cfg.upsample_rates, self.up_kernels, 3, 3, 3)

    def forward(
        self,
        units: torch.Tensor,
        f0: torch.Tensor | None = None,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, N)`` units -> ``(B, 1, N * hop)``; F0/speaker/style are ignored (V1 has none)."""
        x = self.unit_embed(units).transpose(1, 2)
        if self.channels_last:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        mask = lengths_mask(lengths, x.shape[-1], x.dtype, x.dim())
        x = self.conv_pre(apply_mask(x, mask))
        scale = 1
        for up, conv, rate in zip(self.ups, self.convs, self.cfg.upsample_rates):
            x = up(apply_mask(F.leaky_relu(x, LRELU_SLOPE), mask))
            scale *= rate
            mask = None if lengths is None else lengths_mask(lengths * scale, x.shape[-1], x.dtype, x.dim())
            x = x + conv(apply_mask(F.leaky_relu(x, LRELU_SLOPE), mask))
        x = torch.tanh(self.conv_post(apply_mask(F.leaky_relu(x, LRELU_SLOPE), mask)))
        return x.squeeze(2) if self.channels_last else x
