"""``TrainConfig``: how any unitwave model trains, composed into each training command as flat flags.

A command composes it like the engine options::

    train: tp.Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig()

so ``--lr``, ``--epochs``, ``--precision``... appear directly on ``unitwave <model> train``. In YAML the
options sit under a ``train:`` mapping. Nothing here imports torch or Lightning: device and precision are
resolved by :func:`resolve_device` / :func:`resolve_precision`, which import torch only when called.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp

from unitwave.config import ConfigError

Precision = tp.Literal["auto", "32", "bf16", "16"]
Device = tp.Literal["auto", "cpu", "cuda", "mps"]
RESUME_NAMES = ("auto", "none", "latest", "best", "final")


@dc.dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, precision, devices, checkpoints and early stopping of one training run."""

    epochs: int = 100
    """Maximum number of epochs (passes over the training data)."""
    batch_size: int = 32
    """Items per batch on each device."""
    lr: float = 1e-3
    """Peak learning rate of AdamW (reached after the warm-up)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas (HiFi-GAN uses 0.8 0.99)."""
    schedule: tp.Literal["cosine", "exponential", "constant"] = "cosine"
    """Learning-rate schedule after the warm-up: cosine decay to lr * min_lr_ratio over all steps, lr * lr_decay^epoch (GANs), or constant."""
    warmup_steps: int = 0
    """Optimizer steps of linear warm-up from lr / warmup_steps to lr."""
    min_lr_ratio: float = 0.0
    """Cosine schedule: the final learning rate as a fraction of lr."""
    lr_decay: float = 0.999
    """Exponential schedule: factor applied to the learning rate after every epoch."""
    grad_accum: int = 1
    """Batches whose gradients add up to one optimizer step."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this value before each optimizer step (0: off)."""
    precision: Precision = "auto"
    """auto: bf16 mixed precision on GPUs that support it (else 16), 32 on CPU and MPS. bf16 on CPU is ~170x slower here."""
    device: Device = "auto"
    """auto: cuda if present, else mps, else cpu."""
    devices: int = 1
    """Devices (GPUs or CPU processes) per node; more than one trains with DDP."""
    num_nodes: int = 1
    """Nodes for multi-node DDP (e.g. under SLURM)."""
    seed: int = 0
    """Seeds model initialisation, shuffling (per epoch: seed and epoch) and dropout."""
    monitor: str = "val_loss"
    """Validation metric for best.ckpt and early stopping."""
    mode: tp.Literal["min", "max"] = "min"
    """Whether a lower (min) or higher (max) monitored value is better."""
    patience: int = 10
    """Stop after this many epochs without an improvement of at least min_delta (0: never stop early)."""
    min_delta: float = 0.0
    """Smallest change of the monitored metric that counts as an improvement for early stopping."""
    save_every: int = 10
    """Also keep checkpoints/epoch_NNNN.ckpt every this many epochs (0: never)."""
    resume: str = "auto"
    """auto (latest.ckpt when the output folder has one), none (start over: the folder's old checkpoints are removed), latest, best, final, or a .ckpt path."""
    num_workers: int = 0
    """DataLoader worker processes per device."""
    log_every: int = 50
    """Log step-level scalars to TensorBoard every this many steps."""
    progress_bar: bool = True
    """Show a progress bar with loss and lr (only when stderr is a terminal)."""

    def check(self) -> TrainConfig:
        """Raise :class:`ConfigError` naming the flag and what to do for any value that cannot work."""
        rules: list[tuple[bool, str]] = [
            (self.epochs >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (self.batch_size >= 1, f"--batch-size must be >= 1 (got {self.batch_size})"),
            (self.lr > 0, f"--lr must be > 0 (got {self.lr})"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0 (got {self.weight_decay})"),
            (all(0 <= b < 1 for b in self.betas), f"--betas must both be in [0, 1) (got {self.betas})"),
            (self.warmup_steps >= 0, f"--warmup-steps must be >= 0 (got {self.warmup_steps})"),
            (0 <= self.min_lr_ratio <= 1, f"--min-lr-ratio must be in [0, 1] (got {self.min_lr_ratio})"),
            (0 < self.lr_decay <= 1, f"--lr-decay must be in (0, 1] (got {self.lr_decay})"),
            (self.grad_accum >= 1, f"--grad-accum must be >= 1 (got {self.grad_accum}); 1 steps every batch"),
            (self.grad_clip >= 0, f"--grad-clip must be >= 0 (got {self.grad_clip}); 0 turns clipping off"),
            (self.devices >= 1, f"--devices must be >= 1 (got {self.devices})"),
            (self.num_nodes >= 1, f"--num-nodes must be >= 1 (got {self.num_nodes})"),
            (self.patience >= 0, f"--patience must be >= 0 (got {self.patience}); 0 turns early stopping off"),
            (self.min_delta >= 0, f"--min-delta must be >= 0 (got {self.min_delta})"),
            (self.save_every >= 0, f"--save-every must be >= 0 (got {self.save_every}); 0 keeps no epoch_NNNN.ckpt"),
            (self.num_workers >= 0, f"--num-workers must be >= 0 (got {self.num_workers})"),
            (self.log_every >= 1, f"--log-every must be >= 1 (got {self.log_every})"),
            (bool(self.monitor.strip()), "--monitor must name a logged metric, e.g. val_loss"),
            (bool(self.resume.strip()), f"--resume must be one of {', '.join(RESUME_NAMES)} or a .ckpt path"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(message)
        return self

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes


def launch_rank() -> int:
    """This process's global rank as the launcher set it (RANK, LOCAL_RANK or SLURM_PROCID; 0 if none).

    Lightning re-runs the whole command in every DDP process: work before :func:`~unitwave.train.fit`
    that writes files (saving the config, printing) should happen where this is 0.
    """
    import os

    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID"):
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def resolve_device(cfg: TrainConfig) -> str:
    """The Lightning accelerator for ``cfg.device`` ("cpu", "cuda" or "mps"); ConfigError if it is absent."""
    import torch

    has_mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is False); use --device auto or cpu")
    if cfg.device == "cuda" and cfg.devices > torch.cuda.device_count():
        raise ConfigError(f"--devices {cfg.devices}: only {torch.cuda.device_count()} CUDA devices are visible")
    if cfg.device == "mps" and not has_mps:
        raise ConfigError("--device mps: MPS is not available on this machine; use --device auto or cpu")
    return cfg.device


def resolve_precision(cfg: TrainConfig, accelerator: str) -> str:
    """Lightning's precision string: mixed precision where it helps (GPU), full precision elsewhere."""
    import torch

    if cfg.precision == "auto":
        if accelerator == "cuda":
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        return "32-true"
    if cfg.precision == "16" and accelerator != "cuda":
        raise ConfigError(f"--precision 16 needs a CUDA GPU (device is {accelerator}); use --precision 32 or bf16")
    return {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}[cfg.precision]
