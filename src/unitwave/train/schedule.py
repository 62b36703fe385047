"""Learning-rate schedules as step -> multiplier functions (for ``torch.optim.lr_scheduler.LambdaLR``).

Every schedule counts *optimizer steps* (after gradient accumulation), so it is exact under resume:
the scheduler's step count is part of the checkpoint, and no schedule steps at epoch boundaries, where
Lightning does not save the scheduler's post-epoch state. The exponential schedule is still per epoch
(``lr_decay ** epoch``, HiFi-GAN's ExponentialLR), computed as ``step // steps_per_epoch``.
"""

from __future__ import annotations

import math
import typing as tp


class LRSchedule:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based).

    Only plain numbers live in ``__dict__``: LambdaLR stores it in the checkpoint, which then loads with
    ``torch.load(weights_only=True)``.
    """

    def __init__(
        self,
        kind: tp.Literal["cosine", "exponential", "constant"],
        total_steps: int,
        steps_per_epoch: int,
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        lr_decay: float = 1.0,
    ) -> None:
        if kind not in ("cosine", "exponential", "constant"):
            raise ValueError(f"unknown learning-rate schedule {kind!r}: use cosine, exponential or constant")
        self.kind = str(kind)
        self.total_steps = max(1, int(total_steps))
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.warmup_steps = max(0, int(warmup_steps))
        self.min_lr_ratio = float(min_lr_ratio)
        self.lr_decay = float(lr_decay)

    def __call__(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        if self.kind == "constant":
            return warm
        if self.kind == "exponential":
            return warm * self.lr_decay ** (step // self.steps_per_epoch)
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, max(0, step - self.warmup_steps) / decay_steps)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return warm * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)

    def __repr__(self) -> str:
        return f"LRSchedule({self.kind}, total_steps={self.total_steps}, warmup_steps={self.warmup_steps})"
