"""The epoch-end bookkeeping of every run: history, best/latest/periodic checkpoints, early stopping.

One Lightning ``Checkpoint`` callback does it all, in this order, at the end of each training epoch
(after validation and after the module's own ``on_train_epoch_end``):

1. read the epoch's metrics (weighted means), append a row to the history and rewrite
   ``training_history.json`` atomically;
2. update the best value (``best.ckpt``: any improvement) and the early-stopping counter
   (an improvement must exceed ``min_delta``), and decide whether to stop;
3. save ``latest.ckpt`` (atomic); copy it to ``best.ckpt`` / ``epoch_NNNN.ckpt`` when due;
4. call the module's ``on_epoch_saved`` hook and print the one-line epoch summary.

The history, best value, counter and stop decision travel in the checkpoint, the RNG states too
(captured at save time, put back just before the next epoch's first batch), so a resumed run
continues exactly where the saved one was.
"""

from __future__ import annotations

import json
import math
import time
import typing as tp
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint

from unitwave.data.atomic import atomic_write_text
from unitwave.train.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LATEST,
    atomic_copy,
    capture_rng,
    periodic_name,
    restore_rng,
)
from unitwave.train.config import TrainConfig

#: keys never shown as epoch metrics (progress-bar and step-level values)
_STEP_KEYS = ("loss", "lr")


def _plain(value: tp.Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)


def format_value(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    a = abs(value)
    return f"{value:.3e}" if a and (a < 1e-3 or a >= 1e5) else f"{value:.4g}"


class TrainingMonitor(Checkpoint):
    """History, checkpoints and early stopping for one run folder (see the module docstring)."""

    def __init__(self, out_dir: Path, cfg: TrainConfig, config: dict[str, tp.Any] | None = None,
                 history_name: str = "training_history.json", echo: bool = True) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / CHECKPOINT_DIR
        self.cfg = cfg
        self.config = config or {}
        self.history_path = self.out_dir / history_name
        self.echo = echo
        self.history: list[dict[str, tp.Any]] = []
        self.best: float | None = None
        self.best_epoch = 0
        self.es_best: float | None = None
        self.wait = 0
        self.stopped_early = False
        self._pending_rng: dict[str, tp.Any] | None = None
        self._epoch_t0 = time.time()
        #: set by fit(): its sampler must know the resumed epoch before Lightning first iterates it
        self.train_loader: tp.Any = None

    # ------------------------------------------------------------------------------ state in the ckpt
    @property
    def state_key(self) -> str:
        return "unitwave.TrainingMonitor"

    def state_dict(self) -> dict[str, tp.Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "es_best": self.es_best, "wait": self.wait,
                "stopped_early": self.stopped_early, "monitor": self.cfg.monitor, "mode": self.cfg.mode}

    def load_state_dict(self, state: dict[str, tp.Any]) -> None:
        self.best, self.best_epoch = state.get("best"), int(state.get("best_epoch", 0))
        self.es_best, self.wait = state.get("es_best"), int(state.get("wait", 0))
        self.stopped_early = bool(state.get("stopped_early", False))

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, tp.Any]) -> None:
        from unitwave import __version__

        checkpoint["history"] = [dict(row) for row in self.history]
        checkpoint["config"] = self.config
        checkpoint["rng_states"] = capture_rng()
        checkpoint["unitwave_version"] = __version__

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, tp.Any]) -> None:
        self.history = [dict(row) for row in checkpoint.get("history", [])]
        self._pending_rng = checkpoint.get("rng_states")
        if self.train_loader is not None:
            # Lightning creates the first iterator of a resumed run before it calls set_epoch
            from lightning.fabric.utilities.data import _set_sampler_epoch

            _set_sampler_epoch(self.train_loader, len(self.history))

    # ------------------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stopped_early:  # resumed a run that had already stopped: train no further
            trainer.should_stop = True

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_t0 = time.time()
        if self._pending_rng is not None:
            restore_rng(self._pending_rng)
            self._pending_rng = None

    def epoch_metrics(self, trainer: pl.Trainer) -> dict[str, float]:
        """The epoch's logged metrics as floats (step-level and progress-bar values left out)."""
        out = {}
        for name, value in trainer.callback_metrics.items():
            if name in _STEP_KEYS or name.startswith(("step/", "lr_")):
                continue
            out[name] = _plain(value)
        return out

    def improved(self, value: float, reference: float | None, delta: float) -> bool:
        if math.isnan(value):  # NaN never improves
            return False
        if reference is None:
            return True
        return value < reference - delta if self.cfg.mode == "min" else value > reference + delta

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        cfg = self.cfg
        epoch = trainer.current_epoch + 1  # epochs completed
        metrics = self.epoch_metrics(trainer)
        if cfg.monitor not in metrics:
            raise ValueError(
                f"--monitor {cfg.monitor!r} was not logged; logged epoch metrics: {', '.join(sorted(metrics)) or 'none'}. "
                "Pass --monitor with one of them (validation metrics start with val_)"
            )
        value = metrics[cfg.monitor]
        train_loss = metrics.get("train_loss")
        if train_loss is not None and not math.isfinite(train_loss):
            raise FloatingPointError(
                f"train_loss is {train_loss} at epoch {epoch}; lower --lr, set --grad-clip, or use --precision 32"
            )
        new_best = self.improved(value, self.best, 0.0)
        if new_best:
            self.best, self.best_epoch = value, epoch
        if self.improved(value, self.es_best, cfg.min_delta):
            self.es_best, self.wait = value, 0
        else:
            self.wait += 1
        stop = bool(cfg.patience) and self.wait >= cfg.patience
        stop = bool(trainer.strategy.reduce_boolean_decision(stop, all=False))
        self.stopped_early = stop and epoch < cfg.epochs
        lrs = [float(g["lr"]) for opt in trainer.optimizers for g in opt.param_groups[:1]]
        row: dict[str, tp.Any] = {"epoch": epoch, "step": int(trainer.global_step), **metrics}
        row.update({f"lr_{i}" if i else "lr": lr for i, lr in enumerate(lrs)})
        row.update({"best": self.best, "best_epoch": self.best_epoch, "seconds": round(time.time() - self._epoch_t0, 3)})
        self.history.append(row)

        saved = ["latest"] + (["best"] if new_best else []) + (["periodic"] if cfg.save_every and epoch % cfg.save_every == 0 else [])
        latest = self.ckpt_dir / LATEST
        trainer.save_checkpoint(latest, weights_only=False)
        if trainer.is_global_zero:
            if new_best:
                atomic_copy(latest, self.ckpt_dir / BEST)
            if "periodic" in saved:
                atomic_copy(latest, self.ckpt_dir / periodic_name(epoch))
            self.write_history()
            hook = getattr(pl_module, "on_epoch_saved", None)
            if callable(hook):
                rng = capture_rng()  # a hook that draws random numbers must not change training
                hook(self.out_dir, epoch, tuple(saved))
                restore_rng(rng)
            self.report(row, new_best, metrics)
        if stop:
            trainer.should_stop = True

    def write_history(self) -> None:
        atomic_write_text(self.history_path, json.dumps(self.history, indent=1) + "\n")

    def report(self, row: dict[str, tp.Any], new_best: bool, metrics: dict[str, float]) -> None:
        """The one-line epoch summary, printed and appended to ``train.log``."""
        parts = [f"epoch {row['epoch']}/{self.cfg.epochs}"]
        keys = ["train_loss"] + sorted(k for k in metrics if k != "train_loss" and not k.startswith("val_")) + sorted(
            k for k in metrics if k.startswith("val_"))
        parts += [f"{k} {format_value(metrics[k])}" for k in keys if k in metrics]
        best = f"best {self.cfg.monitor} {format_value(self.best if self.best is not None else float('nan'))} @{self.best_epoch}"
        parts.append(best + (" *" if new_best else ""))
        parts.append(f"lr {row['lr']:.2e}" if "lr" in row else "")
        parts.append(f"{row['seconds']:.1f} s")
        if self.stopped_early:
            parts.append(f"early stop: no improvement > {self.cfg.min_delta:g} for {self.wait} epochs")
        line = "  ".join(p for p in parts if p)
        with open(self.out_dir / "train.log", "a", encoding="utf-8") as f:
            f.write(line + "\n")
        if self.echo:
            print(line, flush=True)
