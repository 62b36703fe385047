"""``TrainModule``: the Lightning module base every unitwave model trains through (automatic optimisation).

A model subclasses it and says only what is specific to it:

- :meth:`TrainModule.training_loss` -> ``(loss, extra scalars)`` for one batch;
- :meth:`TrainModule.validation_metrics` -> ``{name: mean over the batch}`` (logged as ``val_<name>``);
- optionally :meth:`batch_weight` (what the means average over: items, frames, tokens),
  :meth:`derived_metrics` (e.g. perplexity from the epoch's mean loss), :meth:`optimizer_groups`
  (per-group learning rates) and :meth:`on_epoch_saved` (e.g. write sample audio).

The layer owns the rest: AdamW + schedule, accumulation and clipping (through the Trainer), logging,
validation means that are exact (weighted sums reduced across DDP ranks), checkpoints and early stopping
(:mod:`unitwave.train.monitor`).
"""

from __future__ import annotations

import math
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch

from unitwave.train.config import TrainConfig
from unitwave.train.schedule import LRSchedule

Scalars = dict[str, torch.Tensor | float]


@dataclass
class ParamGroup:
    """Parameters that share an optimizer setting; ``None`` fields take the TrainConfig's value."""

    name: str
    params: list[torch.nn.Parameter]
    lr: float | None = None
    weight_decay: float | None = None
    betas: tuple[float, float] | None = None


def first_dim(batch: tp.Any) -> int:
    """Items in a batch: the first dimension of its first tensor (in a tensor, tuple, list or dict)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    values = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for v in values:
        n = first_dim(v)
        if n:
            return n
    return 0


class TrainModule(pl.LightningModule):
    """Base of models trained with automatic optimisation (one optimizer, one loss).

    Args:
        train: the run's TrainConfig (learning rate, schedule, accumulation...).
    """

    def __init__(self, train: TrainConfig) -> None:
        super().__init__()
        self.train_config = train
        self._val_sums: dict[str, torch.Tensor] = {}
        self._val_weight = 0.0

    # ------------------------------------------------------------------------------ what models define
    def training_loss(self, batch: tp.Any) -> tuple[torch.Tensor, Scalars]:
        """The loss to minimise for ``batch`` (a scalar) and extra scalars to log as ``train_<name>``."""
        raise NotImplementedError(f"{type(self).__name__} must define training_loss(batch)")

    def validation_metrics(self, batch: tp.Any) -> Scalars:
        """Metrics of ``batch``, each the mean over :meth:`batch_weight` units; ``loss`` becomes ``val_loss``."""
        raise NotImplementedError(f"{type(self).__name__} must define validation_metrics(batch)")

    def batch_weight(self, batch: tp.Any) -> float:
        """What the batch's means average over (default: items); epoch means are weighted by it."""
        return float(first_dim(batch))

    def derived_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """Metrics computed from the epoch's validation means (e.g. ``{"ppl": exp(means["loss"])}``)."""
        return {}

    def optimizer_groups(self) -> list[ParamGroup]:
        """Parameter groups of the optimizer (default: every trainable parameter, one group)."""
        return [ParamGroup("model", [p for p in self.parameters() if p.requires_grad])]

    def on_epoch_saved(self, out_dir: Path, epoch: int, saved: tuple[str, ...]) -> None:
        """Called on the main process after epoch ``epoch`` (1-based) wrote checkpoints ``saved``
        (a subset of ``("latest", "best", "periodic")``): write samples, plots, reports here."""

    # ------------------------------------------------------------------------------ what the layer does
    def training_step(self, batch: tp.Any, batch_idx: int) -> torch.Tensor:
        loss, extra = self.training_loss(batch)
        self.log_train(loss, extra, self.batch_weight(batch))
        return loss

    def log_train(self, loss: torch.Tensor, extra: Scalars, weight: float) -> None:
        """Log the loss (progress bar, TensorBoard steps, weighted epoch mean) and the learning rate."""
        value = loss.detach()
        self.log("loss", value, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        self.log("train_loss", value, on_step=False, on_epoch=True, batch_size=max(1, int(weight)), sync_dist=True)
        self.log("step/train_loss", value, on_step=True, on_epoch=False)
        for name, v in extra.items():
            v = v.detach() if isinstance(v, torch.Tensor) else float(v)
            self.log(f"train_{name}", v, on_step=False, on_epoch=True, batch_size=max(1, int(weight)), sync_dist=True)
        for i, opt in enumerate(self.trainer.optimizers):
            lr = float(opt.param_groups[0]["lr"])
            self.log("lr" if i == 0 else f"lr_{i}", lr, on_step=True, on_epoch=False, prog_bar=i == 0)

    def on_validation_epoch_start(self) -> None:
        self._val_sums, self._val_weight = {}, 0.0

    def validation_step(self, batch: tp.Any, batch_idx: int) -> None:
        metrics = self.validation_metrics(batch)
        weight = self.batch_weight(batch)
        for name, value in metrics.items():
            v = torch.as_tensor(value, dtype=torch.float64, device=self.device).detach() * weight
            self._val_sums[name] = self._val_sums.get(name, torch.zeros((), dtype=torch.float64, device=self.device)) + v
        self._val_weight += weight

    def on_validation_epoch_end(self) -> None:
        if not self._val_sums:
            return
        names = sorted(self._val_sums)
        packed = torch.stack([self._val_sums[n] for n in names] + [torch.tensor(self._val_weight, dtype=torch.float64, device=self.device)])
        packed = self.trainer.strategy.reduce(packed, reduce_op="sum")
        total = float(packed[-1])
        means = {n: float(packed[i]) / max(total, 1e-12) for i, n in enumerate(names)}
        means.update(self.derived_metrics(dict(means)))
        for name, value in means.items():
            # already reduced over ranks (identical everywhere); sync_dist averages identical values
            self.log(f"val_{name}", value, on_epoch=True, prog_bar=name == "loss", sync_dist=True)

    def configure_optimizers(self) -> tp.Any:
        opts, scheds = self.build_optimizers(separate=False)
        return [opts[0]], [{"scheduler": scheds[0], "interval": "step", "frequency": 1}]

    def optimizer_steps_per_epoch(self) -> int:
        """Optimizer steps in one epoch (batches per epoch / grad_accum, rounded up)."""
        trainer = self.trainer
        _ = trainer.estimated_stepping_batches  # makes Lightning set up the train loader (and its length)
        batches = trainer.num_training_batches
        if not math.isfinite(batches):
            raise ValueError("the training DataLoader has no length; unitwave.train needs sized loaders")
        return max(1, math.ceil(int(batches) / self.train_config.grad_accum))

    def build_optimizers(self, separate: bool) -> tuple[list[torch.optim.Optimizer], list[tp.Any]]:
        """AdamW + LambdaLR(:class:`LRSchedule`): one optimizer for all groups, or one per group."""
        cfg = self.train_config
        per_epoch = self.optimizer_steps_per_epoch()
        groups = self.optimizer_groups()
        if not groups or not any(g.params for g in groups):
            raise ValueError(f"{type(self).__name__} has no trainable parameters")

        def as_dict(g: ParamGroup) -> dict[str, tp.Any]:
            return {
                "params": g.params,
                "lr": cfg.lr if g.lr is None else g.lr,
                "weight_decay": cfg.weight_decay if g.weight_decay is None else g.weight_decay,
                "betas": tuple(cfg.betas if g.betas is None else g.betas),
            }

        batches_of_groups = [[g] for g in groups] if separate else [groups]
        opts, scheds = [], []
        for gs in batches_of_groups:
            opt = torch.optim.AdamW([as_dict(g) for g in gs], lr=cfg.lr)
            schedule = LRSchedule(cfg.schedule, per_epoch * cfg.epochs, per_epoch, cfg.warmup_steps, cfg.min_lr_ratio, cfg.lr_decay)
            opts.append(opt)
            scheds.append(torch.optim.lr_scheduler.LambdaLR(opt, schedule))
        return opts, scheds
