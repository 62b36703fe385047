"""CPU inference layout: the decoder's 1-D convolutions as channels-last 2-D ones.

oneDNN has fast direct kernels for NHWC 2-D convolutions but runs NCW 1-D convolutions with few
channels (the late, long stages of HiFi-GAN) through slower paths: the same convolution on a
``(B, C, 1, T)`` channels-last tensor takes 1.1-2.6x less CPU time here (measured per layer; see
benchmarks/vocoder_rtf.py for the whole model). Weights are copied unchanged, so outputs agree with the
1-D modules to float rounding (~1e-6).
"""

from __future__ import annotations

import torch
from torch import nn

from unitwave.vocoder.hifigan import has_weight_norm

#: sub-modules of a generator that run inside ``decode`` (the conditioning stays 1-D)
DECODER_PARTS = ("conv_pre", "ups", "resblocks", "convs", "conv_post")


def conv2d_from(conv: nn.Conv1d | nn.ConvTranspose1d) -> nn.Conv2d | nn.ConvTranspose2d:
    """A ``(1, k)`` (transposed) 2-D convolution computing the same as ``conv`` on ``(B, C, 1, T)``."""
    if isinstance(conv.padding, str):
        raise TypeError(f"string padding {conv.padding!r} is not supported here")
    transposed = isinstance(conv, nn.ConvTranspose1d)
    extra = {"output_padding": (0, conv.output_padding[0])} if transposed else {}
    out = (nn.ConvTranspose2d if transposed else nn.Conv2d)(
        conv.in_channels,
        conv.out_channels,
        (1, conv.kernel_size[0]),
        (1, conv.stride[0]),
        padding=(0, int(conv.padding[0])),
        dilation=(1, conv.dilation[0]),
        groups=conv.groups,
        bias=conv.bias is not None,
        **extra,
    )
    with torch.no_grad():
        out.weight.copy_(conv.weight.unsqueeze(2))
        if conv.bias is not None:
            out.bias.copy_(conv.bias)
    return out.to(conv.weight.device).to(memory_format=torch.channels_last)


def to_channels_last(generator: nn.Module) -> nn.Module:
    """Switch a generator (weight norm removed) to the channels-last 2-D decoder; returns it."""
    if not hasattr(generator, "channels_last"):
        raise TypeError(f"{type(generator).__name__} has no channels-last decoder")
    if has_weight_norm(generator):
        raise ValueError("remove weight norm first (unitwave.vocoder.hifigan.remove_weight_norm)")
    if generator.channels_last:
        return generator
    for prefix in DECODER_PARTS:
        root = getattr(generator, prefix, None)
        if root is None:
            continue
        for name, module in list(root.named_modules()):
            if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
                parent = root.get_submodule(name.rsplit(".", 1)[0]) if "." in name else root
                new = conv2d_from(module)
                if name == "":
                    setattr(generator, prefix, new)
                else:
                    setattr(parent, name.rsplit(".", 1)[-1], new)
    generator.channels_last = True
    return generator
