"""The one training layer every unitwave model uses (LM now; vocoder, transcriber, voice encoder next).

Built on Lightning; importing this package is instant (Lightning loads on first use of a name below).

Public API
----------
- :class:`TrainConfig` (``train.config``): epochs, batch size, AdamW lr/betas/weight decay, schedule
  (``cosine`` | ``exponential`` | ``constant``, linear warm-up), grad accumulation and clipping,
  precision (``auto`` | ``32`` | ``bf16`` | ``16``), device (``auto`` | ``cpu`` | ``cuda`` | ``mps``),
  devices/nodes (DDP), seed, early stopping (``monitor``, ``mode``, ``patience``, ``min_delta``),
  ``save_every``, ``resume`` (``auto`` | ``none`` | ``latest`` | ``best`` | ``final`` | path). A command
  composes it as ``train: tp.Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig(...)``.
- :class:`TrainModule` (automatic optimisation): define ``training_loss(batch) -> (loss, scalars)`` and
  ``validation_metrics(batch) -> {name: batch mean}``; optionally ``batch_weight``, ``derived_metrics``,
  ``optimizer_groups``, ``on_epoch_saved(out_dir, epoch, saved)``.
- :class:`GANModule` (manual optimisation, two optimisers): define ``generator_parameters``,
  ``discriminator_parameters``, ``generate(batch)``, ``discriminator_loss(batch, generated_detached)``,
  ``generator_loss(batch, generated)`` and ``validation_metrics``. Discriminator step, then generator step;
  ``GANModule(train, generator_lr=..., discriminator_lr=...)`` gives each optimiser its own peak lr.
- :func:`fit(module, train_loader, val_loader, out_dir, config=...) <fit>` -> :class:`FitResult`: the run
  folder gets ``checkpoints/{latest,best,final,epoch_NNNN}.ckpt`` (atomic; model, optimisers,
  schedulers, scaler, RNG states, epoch/step, history, resolved config; readable with
  ``torch.load(weights_only=True)``), ``training_history.json`` (one row per epoch), ``train.log``
  (one-line epoch summaries) and ``tensorboard/``. Rerunning resumes bit-for-bit from ``latest.ckpt``.
- :func:`make_loader` / :class:`EpochBatchSampler`: batches drawn from ``(seed, epoch)`` (resumable),
  optionally grouped by length, split across DDP ranks.
- :func:`export` / :func:`load_exported` / :func:`load_weights`: ``model.safetensors`` + ``model_card.json``,
  loaded with torch + safetensors only (module ``unitwave.train.portable`` never imports Lightning).
- :func:`load_checkpoint` (``weights_only=True``), :func:`seed_all`.
- :class:`LaunchConfig` / :func:`submit_training` (``train.launch``): ``--backend slurm`` turns any training
  command into a SLURM job (``<out>/train.sbatch``: srun, one process per device, Lightning's SLURM
  environment for ``--num-nodes`` x ``--devices``); a command composes ``launch: LaunchConfig`` next to
  ``train`` and calls ``submit_training(cfg, out_dir, cfg.train)`` when ``cfg.launch.backend == "slurm"``.

Minimal GAN-style model (a vocoder follows the same shape; see ``unitwave.train.toy`` for tested ones)::

    from unitwave.train import GANModule, TrainConfig, fit, make_loader, export

    class MyGAN(GANModule):
        def __init__(self, train: TrainConfig):
            super().__init__(train)
            self.generator, self.discriminator = Generator(), Discriminator()
        def generator_parameters(self): return self.generator.parameters()
        def discriminator_parameters(self): return self.discriminator.parameters()
        def generate(self, batch): return self.generator(batch["units"])            # (B, 1, T) audio
        def discriminator_loss(self, batch, fake):                                  # fake is detached
            return d_adv_loss(self.discriminator(batch["audio"]), self.discriminator(fake)), {}
        def generator_loss(self, batch, fake):
            mel = mel_l1(fake, batch["audio"])
            return g_adv_loss(self.discriminator(fake)) + 45 * mel, {"mel_loss": mel}
        def validation_metrics(self, batch):                                        # -> val_mel_loss
            return {"mel_loss": mel_l1(self.generator(batch["units"]), batch["audio"])}
        def on_epoch_saved(self, out_dir, epoch, saved):                             # main process only
            if "periodic" in saved: write_sample_wavs(out_dir / "samples", epoch)

    cfg = TrainConfig(lr=2e-4, betas=(0.8, 0.99), schedule="exponential", lr_decay=0.999,
                      monitor="val_mel_loss", patience=100, save_every=25)
    model = MyGAN(cfg)
    result = fit(model, make_loader(train_set, cfg.batch_size, shuffle=True, seed=cfg.seed, collate_fn=collate),
                 make_loader(val_set, cfg.batch_size, shuffle=False, collate_fn=collate),
                 out_dir, config=command_config, history_name="training_log.json")
    export(model.generator, out_dir / "model", arch=generator_kwargs, card={"metrics": result.best_row})
"""

from __future__ import annotations

import importlib
import typing as tp

from unitwave.train.config import TrainConfig

_LAZY = {
    "TrainModule": "unitwave.train.module",
    "ParamGroup": "unitwave.train.module",
    "GANModule": "unitwave.train.gan",
    "fit": "unitwave.train.trainer",
    "FitResult": "unitwave.train.trainer",
    "make_loader": "unitwave.train.data",
    "EpochBatchSampler": "unitwave.train.data",
    "export": "unitwave.train.portable",
    "load_exported": "unitwave.train.portable",
    "load_weights": "unitwave.train.portable",
    "load_checkpoint": "unitwave.train.checkpoint",
    "seed_all": "unitwave.train.checkpoint",
    "LRSchedule": "unitwave.train.schedule",
    "LaunchConfig": "unitwave.train.launch",
    "submit_training": "unitwave.train.launch",
}

__all__ = ["TrainConfig", *sorted(_LAZY)]  # noqa: PLE0604 - names of the lazy attributes


def __getattr__(name: str) -> tp.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'unitwave.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
