"""HiFi-GAN's discriminators: multi-period (periods 2, 3, 5, 7, 11) and multi-scale (raw, /2, /4).

Every sub-discriminator maps ``(B, 1, T)`` samples to a score map (flattened to ``(B, S)``) and returns
the activations of its layers for the feature-matching loss. :class:`Discriminators` runs both kinds and
returns flat lists over all sub-discriminators.
"""

from __future__ import annotations

import math
import typing as tp

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from unitwave.vocoder.hifigan import LRELU_SLOPE, get_padding

#: (score (B, S), [activation of each layer]) of one sub-discriminator
Output = tuple[torch.Tensor, list[torch.Tensor]]


def conv_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> Output:
    """``(flattened score, [each layer's activation])``: lrelu after every conv but the last."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return torch.flatten(x, 1, -1), features


class PeriodDiscriminator(nn.Module):
    """Folds ``(B, 1, T)`` into ``(B, 1, T / p, p)`` and applies 2-D convolutions along time only."""

    def __init__(
        self,
        period: int,
        kernel_size: int = 5,
        stride: int = 3,
        channels: tp.Sequence[int] = (32, 128, 512, 1024, 1024),
    ) -> None:
        super().__init__()
        self.period = period
        layers = []
        cin = 1
        for i, cout in enumerate(channels):
            s = stride if i < len(channels) - 1 else 1
            pad = (get_padding(kernel_size, 1), 0)
            layers.append(weight_norm(nn.Conv2d(cin, cout, (kernel_size, 1), (s, 1), padding=pad)))
            cin = cout
        self.convs = nn.ModuleList(layers)
        self.conv_post = weight_norm(nn.Conv2d(cin, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> Output:
        b, c, t = x.shape
        if t % self.period:
            pad = self.period - t % self.period
            x = F.pad(x, (0, pad), "reflect" if pad < t else "constant")
            t += pad
        x = x.view(b, c, t // self.period, self.period)
        return conv_stack(self.convs, self.conv_post, x)


class ScaleDiscriminator(nn.Module):
    """Grouped 1-D convolutions over the raw (or average-pooled) waveform; spectral norm on scale 1."""

    def __init__(self, use_spectral_norm: bool = False, divisor: int = 1) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        specs = [  # (in, out, kernel, stride, groups, padding)
            (1, 128, 15, 1, 1, 7),
            (128, 128, 41, 2, 4, 20),
            (128, 256, 41, 2, 16, 20),
            (256, 512, 41, 4, 16, 20),
            (512, 1024, 41, 4, 16, 20),
            (1024, 1024, 41, 1, 16, 20),
            (1024, 1024, 5, 1, 1, 2),
        ]
        convs = []
        for i, o, k, s, g, p in specs:
            i, o = max(1, i // divisor) if i > 1 else 1, max(1, o // divisor)
            convs.append(norm(nn.Conv1d(i, o, k, s, groups=math.gcd(g, math.gcd(i, o)), padding=p)))
        self.convs = nn.ModuleList(convs)
        self.conv_post = norm(nn.Conv1d(max(1, 1024 // divisor), 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> Output:
        return conv_stack(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: tp.Sequence[int] = (2, 3, 5, 7, 11), divisor: int = 1) -> None:
        super().__init__()
        channels = [max(1, c // divisor) for c in (32, 128, 512, 1024, 1024)]
        self.discriminators = nn.ModuleList([PeriodDiscriminator(p, channels=channels) for p in periods])

    def forward(self, x: torch.Tensor) -> list[Output]:
        return [d(x) for d in self.discriminators]


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, scales: int = 3, divisor: int = 1) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(use_spectral_norm=i == 0, divisor=divisor) for i in range(scales)]
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: torch.Tensor) -> list[Output]:
        outputs = []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.pool(x)
            outputs.append(d(x))
        return outputs


class Discriminators(nn.Module):
    """MPD + MSD: ``(B, 1, T)`` -> one :data:`Output` per sub-discriminator (periods first, then scales).

    ``divisor`` divides every channel count (1 = HiFi-GAN's sizes; 4 or 8 for quick CPU runs).
    """

    def __init__(
        self, periods: tp.Sequence[int] = (2, 3, 5, 7, 11), scales: int = 3, divisor: int = 1
    ) -> None:
        super().__init__()
        self.mpd = MultiPeriodDiscriminator(periods, divisor)
        self.msd = MultiScaleDiscriminator(scales, divisor)

    def forward(self, x: torch.Tensor) -> list[Output]:
        return self.mpd(x) + self.msd(x)
