"""``GANModule``: manual optimisation with a generator and a discriminator, the loop owned by the layer.

Each training batch runs::

    generated = generate(batch)                                  # once, shared by both steps
    discriminator_loss(batch, detached(generated)) -> backward -> [clip, step D, schedule D]
    generator_loss(batch, generated)               -> backward -> [clip, step G, schedule G]

with each optimizer toggled (the other network's parameters frozen) during its step, each with its own
peak learning rate (``generator_lr`` / ``discriminator_lr``, default ``--lr``), gradients
accumulated over ``grad_accum`` batches (the last batch of an epoch always steps), clipping after
unscaling (so it is right under fp16 loss scaling) and both schedulers stepped per optimizer step.
A model defines the four methods below plus ``validation_metrics``; checkpoints, resume, logs and
early stopping are the same as for :class:`~unitwave.train.module.TrainModule`.
"""

from __future__ import annotations

import typing as tp

import torch

from unitwave.train.config import TrainConfig
from unitwave.train.module import ParamGroup, Scalars, TrainModule


def detach_tree(value: tp.Any) -> tp.Any:
    """``value`` with every tensor (inside tuples, lists, dicts) detached from the graph."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return {k: detach_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [detach_tree(v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


class GANModule(TrainModule):
    """Base of adversarial models: two AdamW optimisers, discriminator step then generator step.

    The monitored validation metric (e.g. ``val_mel_loss``) comes from :meth:`validation_metrics`;
    ``train_loss`` is the generator loss, ``train_d_loss`` the discriminator loss.
    """

    def __init__(
        self, train: TrainConfig, generator_lr: float | None = None, discriminator_lr: float | None = None
    ) -> None:
        """``generator_lr`` / ``discriminator_lr``: each optimiser's peak learning rate (None: ``train.lr``);
        the schedule scales both alike."""
        super().__init__(train)
        self.automatic_optimization = False
        for name, lr in (("generator_lr", generator_lr), ("discriminator_lr", discriminator_lr)):
            if lr is not None and not lr > 0:
                raise ValueError(f"{type(self).__name__}: {name} must be > 0 (got {lr})")
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr

    # ------------------------------------------------------------------------------ what models define
    def generator_parameters(self) -> tp.Iterable[torch.nn.Parameter]:
        raise NotImplementedError(f"{type(self).__name__} must define generator_parameters()")

    def discriminator_parameters(self) -> tp.Iterable[torch.nn.Parameter]:
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_parameters()")

    def generate(self, batch: tp.Any) -> tp.Any:
        """The generator's forward pass for ``batch`` (any tensors/tuples/dicts), shared by both steps."""
        raise NotImplementedError(f"{type(self).__name__} must define generate(batch)")

    def discriminator_loss(self, batch: tp.Any, generated: tp.Any) -> tuple[torch.Tensor, Scalars]:
        """Discriminator loss on real data and ``generated`` (already detached); extra scalars to log."""
        raise NotImplementedError(f"{type(self).__name__} must define discriminator_loss(batch, generated)")

    def generator_loss(self, batch: tp.Any, generated: tp.Any) -> tuple[torch.Tensor, Scalars]:
        """Generator loss (adversarial + reconstruction terms...) and extra scalars to log."""
        raise NotImplementedError(f"{type(self).__name__} must define generator_loss(batch, generated)")

    def optimizer_groups(self) -> list[ParamGroup]:
        """Generator first, discriminator second, with their own learning rates; override for other
        per-optimiser settings (betas, weight decay)."""
        return [
            ParamGroup("generator", [p for p in self.generator_parameters() if p.requires_grad], lr=self.generator_lr),
            ParamGroup(
                "discriminator", [p for p in self.discriminator_parameters() if p.requires_grad], lr=self.discriminator_lr
            ),
        ]

    # ------------------------------------------------------------------------------ the loop
    def configure_optimizers(self) -> tp.Any:
        opts, scheds = self.build_optimizers(separate=True)
        if len(opts) != 2:
            raise ValueError(f"{type(self).__name__}.optimizer_groups() must return 2 groups (generator, discriminator)")
        return opts, [{"scheduler": s, "interval": "step"} for s in scheds]

    def training_step(self, batch: tp.Any, batch_idx: int) -> None:
        cfg = self.train_config
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        sched_g, sched_d = self.lr_schedulers()  # type: ignore[misc]
        last = batch_idx + 1 >= int(self.trainer.num_training_batches)
        step_now = (batch_idx + 1) % cfg.grad_accum == 0 or last

        generated = self.generate(batch)

        self.toggle_optimizer(opt_d)
        d_loss, d_extra = self.discriminator_loss(batch, detach_tree(generated))
        self.manual_backward(d_loss / cfg.grad_accum)
        if step_now:
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
            sched_d.step()
        self.untoggle_optimizer(opt_d)

        self.toggle_optimizer(opt_g)
        g_loss, g_extra = self.generator_loss(batch, generated)
        self.manual_backward(g_loss / cfg.grad_accum)
        if step_now:
            opt_g.step()
            opt_g.zero_grad(set_to_none=True)
            sched_g.step()
        self.untoggle_optimizer(opt_g)

        weight = self.batch_weight(batch)
        extra = {"d_loss": d_loss.detach(), **d_extra, **g_extra}
        self.log_train(g_loss, extra, weight)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # called inside opt.step(), after the precision plugin unscaled the gradients
        if self.train_config.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.train_config.grad_clip, gradient_clip_algorithm="norm")
