"""HiFi-GAN generator conditioned on units (+ F0, speaker, style): the users' V2 and fairseq's CodeHiFiGAN.

Shapes: units ``(B, N)`` int64 unit frames; F0 ``(B, N * r)`` (bins int64 or continuous float, ``r >= 1``
frames per unit frame, usually 1); speaker ``(B,)`` int64 ids or ``(B, D)`` float vectors. The conditioning
``(B, C_in, T')`` runs at the faster of the unit and F0 rates (the slower stream is repeated, as fairseq
does) and the decoder turns each frame into ``hop = prod(upsample_rates)`` samples: ``(B, 1, T' * hop)``.

``lengths`` (unit frames per item) makes a padded batch give exactly what each item gives alone: every
convolution input past an item's end is zeroed, which is what the convolution's own zero padding does.
"""

from __future__ import annotations

import math
import typing as tp

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from unitwave.vocoder.config import HifiganConfig

LRELU_SLOPE = 0.1


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a dilated convolution with an odd kernel."""
    return (kernel_size * dilation - dilation) // 2


def _init(module: nn.Module) -> nn.Module:
    """HiFi-GAN's initialisation: weights ~ N(0, 0.01) (before weight norm, so g = |v| starts consistent)."""
    nn.init.normal_(module.weight, 0.0, 0.01)
    return module


def wn_conv(cin: int, cout: int, kernel: int, dilation: int = 1, padding: int | None = None) -> nn.Module:
    pad = get_padding(kernel, dilation) if padding is None else padding
    return weight_norm(_init(nn.Conv1d(cin, cout, kernel, 1, dilation=dilation, padding=pad)))


def decoder_context(
    rates: tp.Sequence[int], up_kernels: tp.Sequence[int], stage_reach: int, pre_reach: int, post_reach: int
) -> int:
    """One-sided receptive field, in input frames (rounded up), of a decoder made of a convolution
    reaching ``pre_reach`` frames, then per stage a transposed convolution (rate, kernel) followed by
    convolutions reaching ``stage_reach`` samples of that stage, then one reaching ``post_reach`` samples.

    An output sample depends on no input frame further away than this, which is what lets long inputs be
    synthesized in chunks with this much context on each side (see ``Vocoder.synthesize``).
    """
    reach, scale = float(pre_reach), 1
    for rate, kernel in zip(rates, up_kernels):
        reach += -(-kernel // rate) / scale  # a transposed conv output sees ceil(k / rate) input samples
        scale *= rate
        reach += stage_reach / scale
    return math.ceil(reach + post_reach / scale)


def lengths_mask(
    lengths: torch.Tensor | None, frames: int, dtype: torch.dtype, ndim: int = 3
) -> torch.Tensor | None:
    """``(B, 1, frames)`` (or ``(B, 1, 1, frames)`` for ``ndim=4``) 1.0 inside each item, 0.0 past its
    length; None when ``lengths`` is None."""
    if lengths is None:
        return None
    steps = torch.arange(frames, device=lengths.device)
    mask = (steps[None, :] < lengths[:, None]).to(dtype)
    return mask.view(mask.shape[0], *([1] * (ndim - 2)), frames)


def apply_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class ResBlock1(nn.Module):
    """Per dilation: lrelu -> dilated conv -> lrelu -> conv, added to the input: ``(B, C, T) -> same``."""

    def __init__(self, channels: int, kernel_size: int, dilations: tp.Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList([wn_conv(channels, channels, kernel_size, d) for d in dilations])
        self.convs2 = nn.ModuleList([wn_conv(channels, channels, kernel_size, 1) for _ in dilations])
        #: samples on each side an output sample depends on
        self.reach = sum((kernel_size - 1) // 2 * (d + 1) for d in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(apply_mask(F.leaky_relu(x, LRELU_SLOPE), mask))
            xt = c2(apply_mask(F.leaky_relu(xt, LRELU_SLOPE), mask))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """Per dilation: lrelu -> dilated conv, added to the input. ``(B, C, T) -> (B, C, T)``."""

    def __init__(self, channels: int, kernel_size: int, dilations: tp.Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList([wn_conv(channels, channels, kernel_size, d) for d in dilations])
        #: samples on each side an output sample depends on
        self.reach = sum((kernel_size - 1) // 2 * d for d in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for conv in self.convs:
            x = conv(apply_mask(F.leaky_relu(x, LRELU_SLOPE), mask)) + x
        return x


class DurationPredictor(nn.Module):
    """Log-duration of each (deduplicated) unit, fairseq's VariancePredictor: ``(B, N, C) -> (B, N)``."""

    def __init__(self, in_dim: int, hidden_dim: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv1d(in_dim, hidden_dim, kernel_size, padding=(kernel_size - 1) // 2), nn.ReLU()
        )
        self.ln1 = nn.LayerNorm(hidden_dim)
        self.conv2 = nn.Sequential(nn.Conv1d(hidden_dim, hidden_dim, kernel_size, padding=1), nn.ReLU())
        self.ln2 = nn.LayerNorm(hidden_dim)
        self.dropout = dropout
        self.proj = nn.Linear(hidden_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x.transpose(1, 2)).transpose(1, 2)
        x = F.dropout(self.ln1(x), p=self.dropout, training=self.training)
        x = self.conv2(x.transpose(1, 2)).transpose(1, 2)
        x = F.dropout(self.ln2(x), p=self.dropout, training=self.training)
        return self.proj(x).squeeze(2)


def repeat_frames(x: torch.Tensor, frames: int, what: str) -> torch.Tensor:
    """``(B, C, T) -> (B, C, frames)`` repeating each frame ``frames / T`` times (must be an integer)."""
    t = x.shape[-1]
    if frames == t:
        return x
    if t == 0 or frames % t:
        raise ValueError(
            f"{what}: {t} frames cannot be repeated to {frames}; rates must be integer multiples"
        )
    return x.repeat_interleave(frames // t, dim=2)


class HifiganGenerator(nn.Module):
    """Units (+ F0, speaker, style) -> waveform in [-1, 1]. See the module docstring for shapes."""

    def __init__(self, cfg: HifiganConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.unit_embed = nn.Embedding(cfg.num_units, cfg.unit_dim)
        self.f0_embed = nn.Embedding(cfg.f0_bins, cfg.f0_dim) if cfg.f0 == "bins" else None
        self.speaker_embed = (
            nn.Embedding(cfg.num_speakers, cfg.speaker_dim) if cfg.speaker == "lookup" else None
        )
        self.speaker_proj = (
            nn.Linear(cfg.speaker_vector_dim, cfg.speaker_dim) if cfg.speaker == "vector" else None
        )
        self.style_embed = nn.Embedding(cfg.num_styles, cfg.style_dim) if cfg.num_styles > 0 else None
        self.dur_predictor = (
            DurationPredictor(
                cfg.unit_dim, cfg.duration_hidden_dim, cfg.duration_kernel_size, cfg.duration_dropout
            )
            if cfg.duration_hidden_dim > 0
            else None
        )
        #: decoder runs 2-D channels-last convolutions on (B, C, 1, T) (CPU inference; see vocoder.fast)
        self.channels_last = False
        ch = cfg.upsample_initial_channel
        self.conv_pre = wn_conv(cfg.in_channels, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = ResBlock1 if cfg.resblock == "1" else ResBlock2
        for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes)):
            cin, cout = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(weight_norm(_init(nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2))))
            for rk, rd in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes):
                self.resblocks.append(block(cout, rk, rd))
        self.conv_post = wn_conv(ch // 2 ** len(cfg.upsample_rates), 1, 7, padding=3)
        self.num_kernels = len(cfg.resblock_kernel_sizes)

    @property
    def hop(self) -> int:
        """Samples per conditioning frame."""
        return self.cfg.hop

    @property
    def context_frames(self) -> int:
        """Conditioning frames on each side that an output sample depends on (the decoder's receptive
        field; the conditioning itself is per frame)."""
        reach = max(block.reach for block in self.resblocks)
        return decoder_context(self.cfg.upsample_rates, self.cfg.upsample_kernel_sizes, reach, 3, 3)

    def condition(
        self,
        units: torch.Tensor,
        f0: torch.Tensor | None = None,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
        predict_durations: bool = False,
    ) -> torch.Tensor:
        """The decoder input ``(B, C_in, T')``; ``T'`` is N, or F0's length when F0 runs faster."""
        cfg = self.cfg
        x = self.unit_embed(units).transpose(1, 2)
        if predict_durations:
            if self.dur_predictor is None:
                raise ValueError("this vocoder has no duration predictor; pass frame-level units")
            if x.shape[0] != 1:
                raise ValueError("duration prediction works on one utterance at a time")
            log_dur = self.dur_predictor(x.transpose(1, 2))
            durations = torch.clamp(torch.round(torch.exp(log_dur) - 1).long(), min=1)
            x = torch.repeat_interleave(x, durations.view(-1), dim=2)
        if cfg.f0 != "none":
            if f0 is None:
                raise ValueError(
                    "this vocoder is pitch-conditioned: pass an F0 track (one value per unit frame)"
                )
            feat = (
                self.f0_embed(f0.long()).transpose(1, 2)
                if self.f0_embed is not None
                else f0.float().unsqueeze(1)
            )
            frames = max(x.shape[-1], feat.shape[-1])
            x = torch.cat([repeat_frames(x, frames, "units"), repeat_frames(feat, frames, "F0")], dim=1)
        if cfg.speaker != "none":
            if speaker is None:
                raise ValueError(f"this vocoder needs a speaker ({cfg.speaker}): pass speaker ids or vectors")
            if self.speaker_embed is not None:
                spk = self.speaker_embed(speaker.long().view(-1))
            else:
                spk = self.speaker_proj(speaker.float().view(speaker.shape[0], -1))
            x = torch.cat([x, spk.unsqueeze(2).expand(-1, -1, x.shape[-1])], dim=1)
        if self.style_embed is not None:
            if style is None:
                raise ValueError("this vocoder needs a style id per utterance")
            sty = self.style_embed(style.long().view(-1))
            x = torch.cat([x, sty.unsqueeze(2).expand(-1, -1, x.shape[-1])], dim=1)
        return x

    def decode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C_in, T')`` conditioning -> ``(B, 1, T' * hop)`` samples; ``lengths`` in input frames."""
        if self.channels_last:
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        mask = lengths_mask(lengths, x.shape[-1], x.dtype, x.dim())
        x = self.conv_pre(apply_mask(x, mask))
        scale = 1
        for i, (up, rate) in enumerate(zip(self.ups, self.cfg.upsample_rates)):
            x = up(apply_mask(F.leaky_relu(x, LRELU_SLOPE), mask))
            scale *= rate
            mask = None if lengths is None else lengths_mask(lengths * scale, x.shape[-1], x.dtype, x.dim())
            xs = self.resblocks[i * self.num_kernels](x, mask)
            for j in range(1, self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x, mask)
            x = xs / self.num_kernels
        x = self.conv_post(apply_mask(F.leaky_relu(x), mask))  # default slope 0.01 here, as in HiFi-GAN
        x = torch.tanh(x)
        return x.squeeze(2) if self.channels_last else x

    def forward(
        self,
        units: torch.Tensor,
        f0: torch.Tensor | None = None,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, N)`` units [+ conditioning] -> ``(B, 1, N * r * hop)``; ``lengths`` in unit frames."""
        x = self.condition(units, f0, speaker, style)
        if lengths is not None:
            lengths = lengths * (x.shape[-1] // units.shape[-1])
        return self.decode(x, lengths)


def _is_weight_normed(m: nn.Module) -> bool:
    if not parametrize.is_parametrized(m, "weight"):
        return False
    return any(type(p).__name__ == "_WeightNorm" for p in m.parametrizations["weight"])


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold every weight-norm parametrisation into a plain weight (for inference); returns ``module``.

    Spectral norm (discriminators) is left alone.
    """
    for m in module.modules():
        if _is_weight_normed(m):
            # torch deletes the weight property from the module's parametrized class, which deep copies
            # share: give this module a class of its own first so copies keep working
            cls = m.__class__
            m.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


def has_weight_norm(module: nn.Module) -> bool:
    """Whether any sub-module still carries a weight-norm parametrisation."""
    return any(_is_weight_normed(m) for m in module.modules())
