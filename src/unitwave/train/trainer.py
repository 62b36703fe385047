"""``fit()``: one way to train any :class:`~unitwave.train.module.TrainModule` into a run folder.

```
<out_dir>/checkpoints/latest.ckpt    every epoch          <out_dir>/training_history.json  one row per epoch
<out_dir>/checkpoints/best.ckpt      best monitored value <out_dir>/train.log              epoch summaries
<out_dir>/checkpoints/epoch_NNNN.ckpt  every save_every   <out_dir>/tensorboard/           TensorBoard scalars
<out_dir>/checkpoints/final.ckpt     when training ends
```
"""

from __future__ import annotations

import contextlib
import logging
import sys
import typing as tp
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from unitwave.train.checkpoint import BEST, CHECKPOINT_DIR, FINAL, LATEST, atomic_copy, resume_path, seed_all
from unitwave.train.config import TrainConfig, launch_rank, resolve_device, resolve_precision

if tp.TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from unitwave.train.module import TrainModule

log = logging.getLogger("unitwave")

#: Lightning messages that say nothing to a unitwave user (tips, "TPU available: False", few workers...)
_QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric")
_QUIET_WARNINGS = (
    r".*does not have many workers.*",
    r".*is smaller than the logging interval.*",
    r".*on_train_epoch_end.*metric.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*torch.nn.utils.weight_norm.*",
    r".*The `srun` command is available.*",
    r".*LeafSpec.*is deprecated.*",
)


@dataclass
class FitResult:
    """What a finished (or resumed-and-finished) run gives back."""

    out_dir: Path
    best_path: Path | None
    latest_path: Path | None
    final_path: Path | None
    monitor: str
    best: float | None
    best_epoch: int
    epochs_done: int
    stopped_early: bool
    history: list[dict[str, tp.Any]] = field(default_factory=list)
    is_main: bool = True
    #: processes that trained it (DDP: devices x nodes)
    world_size: int = 1

    @property
    def best_row(self) -> dict[str, tp.Any]:
        """The history row of the best epoch (empty when no epoch ran)."""
        return next((r for r in self.history if r.get("epoch") == self.best_epoch), {})


@contextlib.contextmanager
def quiet_lightning() -> tp.Iterator[None]:
    """Silence Lightning's info chatter and harmless warnings while training."""
    loggers = [logging.getLogger(n) for n in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _progress_bar() -> tp.Any:
    from lightning.pytorch.callbacks import TQDMProgressBar

    class ProgressBar(TQDMProgressBar):
        def get_metrics(self, trainer: tp.Any, pl_module: tp.Any) -> dict[str, tp.Any]:
            items = super().get_metrics(trainer, pl_module)
            items.pop("v_num", None)
            return items

    return ProgressBar()


def _flatten(data: tp.Any, prefix: str = "") -> dict[str, tp.Any]:
    if isinstance(data, dict):
        out: dict[str, tp.Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: data}


def saved_config(ckpt_path: Path) -> dict[str, tp.Any]:
    """The command config saved in a checkpoint ({} when unreadable: Lightning reports that itself)."""
    import torch

    try:
        return torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True).get("config") or {}
    except Exception:  # noqa: BLE001
        return {}


def config_changes(ckpt_path: Path, new: dict[str, tp.Any]) -> list[str]:
    """``key: old -> new`` for every option that differs from the config saved in ``ckpt_path``."""
    a, b = _flatten(saved_config(ckpt_path)), _flatten(new)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and not k.endswith("resume"))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]


def schedule_note(ckpt_path: Path, cfg: TrainConfig) -> str | None:
    """What happens to the learning rate when a run resumes with more epochs than its saved cosine
    schedule was planned for (the schedule is part of the checkpoint: it is not stretched)."""
    old = _flatten(saved_config(ckpt_path))
    planned = next((v for k, v in old.items() if k.split(".")[-1] == "epochs"), None)
    kind = next((v for k, v in old.items() if k.split(".")[-1] == "schedule"), None)
    if kind != "cosine" or not isinstance(planned, int) or cfg.epochs <= planned:
        return None
    return (f"the saved cosine schedule was planned for {planned} epochs and ends there: epochs {planned + 1}-"
            f"{cfg.epochs} run at its final learning rate (lr x min_lr_ratio = {cfg.lr * cfg.min_lr_ratio:g}). "
            "To train longer under a schedule, start a new run (--resume none) with the epochs you want")


def fit(
    module: TrainModule,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    out_dir: Path,
    *,
    config: tp.Any = None,
    history_name: str = "training_history.json",
    echo: bool = True,
    callbacks: tp.Sequence[tp.Any] = (),
) -> FitResult:
    """Train ``module`` on ``train_loader`` (validating on ``val_loader`` every epoch) into ``out_dir``.

    Args:
        module: a TrainModule or GANModule; its ``train_config`` drives everything.
        train_loader: sized DataLoader; use :func:`unitwave.train.data.make_loader` for resumable order.
        val_loader: validation data; required when ``--monitor`` names a ``val_`` metric.
        out_dir: the run folder (see the module docstring for what goes in it).
        config: the command's resolved config (dataclass or dict), stored in every checkpoint.
        history_name: file name of the per-epoch history.
        echo: print the one-line epoch summaries (they always go to ``train.log``).
        callbacks: extra Lightning callbacks.

    Resuming follows ``train_config.resume``; a run that already finished (max epochs, or stopped early)
    returns at once.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger

    from unitwave.config import to_dict
    from unitwave.train.checkpoint import make_checkpoint_io
    from unitwave.train.monitor import TrainingMonitor

    cfg: TrainConfig = module.train_config.check()
    out_dir = Path(out_dir)
    if val_loader is None and cfg.monitor.startswith("val_"):
        raise ValueError(f"--monitor {cfg.monitor} needs validation data; give a validation set or monitor train_loss")
    accelerator = resolve_device(cfg)
    precision = resolve_precision(cfg, accelerator)
    if precision == "bf16-mixed" and accelerator == "cpu":
        log.warning("bf16 mixed precision on CPU is much slower than fp32 on most CPUs (~170x measured here)")
    ckpt_path = resume_path(cfg.resume, out_dir)
    if ckpt_path is not None and config is not None:
        changed = config_changes(ckpt_path, to_dict(config))
        if changed:
            log.warning("resuming %s with options that differ from the saved run (the checkpoint's optimizer "
                        "and schedule state win): %s", ckpt_path, "; ".join(changed))
        note = schedule_note(ckpt_path, cfg)
        if note:
            log.warning("%s", note)
    manual = not module.automatic_optimization
    strategy: tp.Any = "auto"
    if cfg.world_size > 1:
        strategy = "ddp_find_unused_parameters_true" if manual else "ddp"
    monitor = TrainingMonitor(out_dir, cfg, to_dict(config) if config is not None else None, history_name, echo)
    monitor.train_loader = train_loader
    show_bar = cfg.progress_bar and sys.stderr.isatty()
    seed_all(cfg.seed)  # a fresh run's shuffling and dropout; a resumed run restores its saved RNG states

    out_dir.mkdir(parents=True, exist_ok=True)
    if ckpt_path is None and launch_rank() == 0:
        stale = sorted((out_dir / CHECKPOINT_DIR).glob("*.ckpt")) + [p for p in [out_dir / "train.log"] if p.is_file()]
        if stale:  # a fresh run owns its folder: no checkpoint of an earlier run may pass for one of this run
            log.warning("starting over in %s: removing %d files of the earlier run", out_dir, len(stale))
            for p in stale:
                p.unlink()
    with quiet_lightning():
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            strategy=strategy,
            precision=precision,  # type: ignore[arg-type]
            max_epochs=cfg.epochs,
            accumulate_grad_batches=1 if manual else cfg.grad_accum,
            gradient_clip_val=None if manual or not cfg.grad_clip else cfg.grad_clip,
            gradient_clip_algorithm=None if manual or not cfg.grad_clip else "norm",
            logger=TensorBoardLogger(save_dir=str(out_dir), name="tensorboard", version="", default_hp_metric=False),
            callbacks=[monitor, *([_progress_bar()] if show_bar else []), *callbacks],
            enable_checkpointing=True,
            enable_progress_bar=show_bar,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=cfg.log_every,
            use_distributed_sampler=False,
            plugins=[make_checkpoint_io()],
            default_root_dir=str(out_dir),
        )
        if ckpt_path is not None and trainer.is_global_zero and echo:
            print(f"resuming from {ckpt_path}", flush=True)
        trainer.fit(module, train_loader, val_loader, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)

    ckpt_dir = out_dir / CHECKPOINT_DIR
    latest, best, final = ckpt_dir / LATEST, ckpt_dir / BEST, ckpt_dir / FINAL
    epochs_done = int(monitor.history[-1]["epoch"]) if monitor.history else 0
    finished = monitor.stopped_early or epochs_done >= cfg.epochs
    if trainer.is_global_zero and finished and latest.is_file():
        atomic_copy(latest, final)
    return FitResult(
        out_dir=out_dir,
        best_path=best if best.is_file() else None,
        latest_path=latest if latest.is_file() else None,
        final_path=final if final.is_file() else None,
        monitor=cfg.monitor,
        best=monitor.best,
        best_epoch=monitor.best_epoch,
        epochs_done=epochs_done,
        stopped_early=monitor.stopped_early,
        history=list(monitor.history),
        is_main=bool(trainer.is_global_zero),
        world_size=int(trainer.world_size),
    )
