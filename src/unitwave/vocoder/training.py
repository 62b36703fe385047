"""``train_vocoder``: unit corpus + audio -> split -> model -> :func:`unitwave.train.fit` -> exported vocoder.

Two Lightning modules share the vocoder-specific parts (:class:`VocoderSteps`): :class:`VocoderGAN`
(HiFi-GAN's adversarial recipe on the training layer's :class:`~unitwave.train.gan.GANModule`) and
:class:`VocoderMel` (no discriminator: mel + waveform L1, automatic optimisation; the ``simple`` V1
generator, or any generator whose loss weights turn the adversarial terms off). The run folder is
described in :mod:`unitwave.vocoder.commands`.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from unitwave.train.gan import GANModule
from unitwave.train.module import Scalars, TrainModule
from unitwave.vocoder.config import LossWeights, VocoderConfig, default_simple_config
from unitwave.vocoder.dataset import UnitAudioDataset, UnitUtterance
from unitwave.vocoder.losses import VocoderObjective

if tp.TYPE_CHECKING:
    from unitwave.train.config import TrainConfig
    from unitwave.vocoder.commands import VocoderTrainConfig

Batch = dict[str, tp.Any]  # collate(): units/f0 (B, N), audio (B, 1, N * hop), speaker/length (B,), id


def sample_relpath(record_id: str) -> PurePosixPath:
    """``<id>.wav`` inside a samples folder: the id's folders kept, but an absolute id or one with ``..``
    parts (any string may be an id) stays inside, e.g. ``/data/a/../b`` -> ``data/a/__/b.wav``."""
    parts = ["__" if part == ".." else part for part in record_id.split("/") if part not in ("", ".")] or ["_"]
    return PurePosixPath(*parts[:-1], parts[-1] + ".wav")


class SampleWriter:
    """Resynthesizes fixed validation utterances: ``samples/epoch_NNNN/<id>.wav`` (+ ``reference/`` once)."""

    def __init__(self, dataset: UnitAudioDataset, indices: tp.Sequence[int], speakers: list[str] | None) -> None:
        self.dataset = dataset  # whole utterances (segment_samples=None)
        self.indices = list(indices)
        self.speakers = speakers
        self._items: list[dict[str, tp.Any]] | None = None

    def write(self, out_dir: Path, epoch: int, generator: nn.Module) -> None:
        from unitwave.audio.io import write_wav
        from unitwave.data.paths import safe_join
        from unitwave.vocoder.inference import Vocoder

        if not self.indices:
            return
        cfg = self.dataset.cfg
        if self._items is None:
            self._items = [self.dataset[i] for i in self.indices]
            for it in self._items:
                write_wav(safe_join(out_dir / "samples" / "reference", sample_relpath(it["id"])),
                          it["audio"][0].numpy(), cfg.sample_rate)
        card = {"frame_hop_s": self.dataset.utterances[0].frame_hop_s, "speakers": self.speakers}
        voc = Vocoder.from_generator(generator, cfg, card)
        units = [it["units"].numpy() for it in self._items]
        f0 = [it["f0"].numpy() for it in self._items] if cfg.uses_f0 else None
        speaker = [int(it["speaker"]) for it in self._items] if cfg.speaker_mode == "lookup" else None
        waves = voc.synthesize(units, f0=f0, speaker=speaker)
        folder = out_dir / "samples" / f"epoch_{epoch:04d}"
        for it, wave in zip(self._items, tp.cast(list, waves)):
            write_wav(safe_join(folder, sample_relpath(it["id"])), wave, cfg.sample_rate)


class VocoderSteps:
    """What both vocoder modules do the same way: conditioning, validation mel loss, samples.

    Expects ``self.generator``, ``self.objective``, ``self.vocoder_config`` and ``self.samples``.
    """

    generator: nn.Module
    objective: VocoderObjective
    vocoder_config: VocoderConfig
    samples: SampleWriter | None

    def synthesize(self, batch: Batch, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1, N * hop)`` audio of a batch's units (+ F0 bins, speaker ids when the model uses them)."""
        cfg = self.vocoder_config
        f0 = batch["f0"] if cfg.uses_f0 else None
        speaker = batch["speaker"] if cfg.speaker_mode != "none" else None
        return self.generator(batch["units"], f0, speaker, lengths=lengths)

    def batch_weight(self, batch: Batch) -> float:
        return float(len(batch["id"]))

    def validation_metrics(self, batch: Batch) -> Scalars:
        """Mean over items of the mel L1 of each whole utterance (padding excluded): ``val_mel_loss``."""
        lengths = batch["length"]
        fake = self.synthesize(batch, lengths if len(lengths) > 1 else None)
        hop = self.vocoder_config.hop
        losses = [
            self.objective.mel_loss(batch["audio"][i : i + 1, :, : int(n) * hop], fake[i : i + 1, :, : int(n) * hop])
            for i, n in enumerate(lengths.tolist())
        ]
        return {"mel_loss": torch.stack(losses).mean()}

    def on_epoch_saved(self, out_dir: Path, epoch: int, saved: tuple[str, ...]) -> None:
        if self.samples is not None and "periodic" in saved:
            self.samples.write(Path(out_dir), epoch, self.generator)


class VocoderGAN(VocoderSteps, GANModule):
    """HiFi-GAN training: LSGAN + feature matching + mel L1 against multi-period/multi-scale discriminators."""

    def __init__(self, generator: nn.Module, cfg: VocoderConfig, train: TrainConfig, lr_g: float | None = None,
                 lr_d: float | None = None, samples: SampleWriter | None = None) -> None:
        super().__init__(train, generator_lr=lr_g, discriminator_lr=lr_d)
        self.generator = generator
        self.objective = VocoderObjective(cfg)
        if self.objective.discriminator is None:
            raise ValueError("VocoderGAN needs adversarial loss terms; use VocoderMel without them")
        self.vocoder_config = cfg
        self.samples = samples

    def generator_parameters(self) -> tp.Iterable[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> tp.Iterable[nn.Parameter]:
        return tp.cast(nn.Module, self.objective.discriminator).parameters()

    def generate(self, batch: Batch) -> torch.Tensor:
        return self.synthesize(batch)

    def discriminator_loss(self, batch: Batch, generated: torch.Tensor) -> tuple[torch.Tensor, Scalars]:
        step = self.objective.discriminator_step(batch["audio"], generated)
        assert step is not None  # the constructor checked there is a discriminator
        return step

    def generator_loss(self, batch: Batch, generated: torch.Tensor) -> tuple[torch.Tensor, Scalars]:
        return tp.cast(tuple[torch.Tensor, Scalars], self.objective.generator_step(batch["audio"], generated))


class VocoderMel(VocoderSteps, TrainModule):
    """Reconstruction-only training (mel L1 + waveform L1, by the config's loss weights)."""

    def __init__(self, generator: nn.Module, cfg: VocoderConfig, train: TrainConfig,
                 samples: SampleWriter | None = None) -> None:
        super().__init__(train)
        self.generator = generator
        self.objective = VocoderObjective(cfg)
        if self.objective.discriminator is not None:
            raise ValueError("VocoderMel trains without discriminators; set the adversarial loss weights to 0")
        self.vocoder_config = cfg
        self.samples = samples

    def training_loss(self, batch: Batch) -> tuple[torch.Tensor, Scalars]:
        return tp.cast(tuple[torch.Tensor, Scalars], self.objective.generator_step(batch["audio"], self.synthesize(batch)))


# ---------------------------------------------------------------------------------------------- data
def split_utterances(utts: list[UnitUtterance], val_ratio: float, salt: str) -> tuple[list[UnitUtterance], list[UnitUtterance]]:
    """Train and validation utterances by a hash of the id; at least one of each (ValueError otherwise)."""
    from unitwave.data.records import unit_interval

    if len(utts) < 2:
        raise ValueError(f"the corpus has {len(utts)} utterance with audio; training needs at least 2 (train + validation)")
    u = {x.id: unit_interval(x.id, f"vocoder-val{salt}") for x in utts}
    val = [x for x in utts if u[x.id] < val_ratio] or [min(utts, key=lambda x: u[x.id])]
    ids = {x.id for x in val}
    train = [x for x in utts if x.id not in ids]
    if not train:
        raise ValueError(f"--val-ratio {val_ratio} leaves no training utterances")
    return train, val


def corpus_k(corpus: Path, utts: tp.Sequence[UnitUtterance]) -> int:
    """Units in the inventory: the corpus's ``k`` field, or the largest unit id + 1 (when larger)."""
    from unitwave.data.manifest import iter_jsonl

    first = next(iter(iter_jsonl(Path(corpus))), {})
    k = first.get("k") if isinstance(first.get("k"), int) else 0
    return max(int(k), max(int(x.units.max()) for x in utts) + 1)


def model_config(cfg: VocoderTrainConfig, k: int, speakers: list[str]) -> VocoderConfig:
    """The vocoder to train: ``cfg.vocoder`` with k units, with ``--speakers`` a lookup table of the data's
    speakers, and for ``simple`` left at HiFi-GAN's loss weights, the V1 weights (mel + waveform L1)."""
    vc = cfg.vocoder.with_units(k)
    if vc.generator == "simple" and vc.loss == LossWeights():
        vc = dc.replace(vc, loss=default_simple_config().loss)
    if cfg.speakers or vc.speaker_mode == "lookup":
        if not speakers:
            raise ValueError(f"--speakers: no utterance of {cfg.audio or cfg.units} has a 'speaker' field; add "
                             "speakers to the manifest or train without --speakers")
        vc = dc.replace(vc, hifigan=dc.replace(vc.hifigan, speaker="lookup", num_speakers=len(speakers)))
    return vc


def check_audio_exists(utts: tp.Sequence[UnitUtterance], source: Path) -> None:
    missing = [u for u in utts if not Path(u.audio_filepath).is_file()]
    if missing:
        shown = ", ".join(f"{u.id} ({u.audio_filepath})" for u in missing[:3])
        raise FileNotFoundError(f"{len(missing)} audio file(s) named by {source} do not exist: {shown}")


# ---------------------------------------------------------------------------------------------- the run
def train_vocoder(cfg: VocoderTrainConfig, echo: bool = True) -> dict[str, tp.Any]:
    """Train into ``cfg.output_dir``, export the best epoch to ``<out>/model``; returns its metrics."""
    from unitwave.config import save_config, to_dict
    from unitwave.train import fit, make_loader, seed_all
    from unitwave.train.checkpoint import refuse_other_model
    from unitwave.train.config import launch_rank
    from unitwave.vocoder.commands import DATA_KEYS, MODEL_KEYS
    from unitwave.vocoder.dataset import check_hop, collate, read_unit_corpus, speaker_table
    from unitwave.vocoder.models import build_generator

    cfg.check()
    t = cfg.train
    out = Path(cfg.output_dir)
    refuse_other_model(cfg, out, t.resume, MODEL_KEYS, DATA_KEYS)
    utts = read_unit_corpus(cfg.units, cfg.audio)
    check_audio_exists(utts, Path(cfg.audio or cfg.units))
    speakers = speaker_table(utts)
    vc = model_config(cfg, corpus_k(cfg.units, utts), speakers)
    hop_s = utts[0].frame_hop_s
    check_hop(vc, hop_s)
    table = speakers if vc.speaker_mode == "lookup" else None
    train_utts, val_utts = split_utterances(utts, cfg.val_ratio, cfg.split_salt)

    f0_cache = out / "f0_cache"
    train_set = UnitAudioDataset(train_utts, vc, cfg.segment_length, f0_cache, table, cfg.cache_audio)
    val_set = UnitAudioDataset(val_utts, vc, None, f0_cache, table, cfg.cache_audio)
    sample_ids = sorted(range(len(val_utts)), key=lambda i: val_utts[i].id)[: cfg.num_samples]
    samples = SampleWriter(val_set, sample_ids, table) if sample_ids else None

    seed_all(t.seed)
    generator = build_generator(vc)
    adversarial = vc.loss.adversarial > 0 or vc.loss.feature_matching > 0
    module: TrainModule = (VocoderGAN(generator, vc, t, cfg.lr_g, cfg.lr_d, samples) if adversarial
                           else VocoderMel(generator, vc, t, samples))
    train_loader = make_loader(train_set, t.batch_size, shuffle=True, seed=t.seed, collate_fn=collate,
                               num_workers=t.num_workers)
    val_loader = make_loader(val_set, t.batch_size, shuffle=False, seed=t.seed, collate_fn=collate,
                             num_workers=t.num_workers, lengths=[len(u.units) for u in val_utts])
    main_process = launch_rank() == 0
    echo = echo and main_process
    if main_process:
        save_config(cfg, out)
    data = {
        "units_corpus": str(Path(cfg.units).absolute()),
        "audio_manifest": str(Path(cfg.audio).absolute()) if cfg.audio else None,
        "frame_hop_s": hop_s, "k": vc.hifigan.num_units, "kmeans_id": corpus_kmeans_id(Path(cfg.units)),
        "train_utterances": len(train_utts), "val_utterances": len(val_utts),
        "train_seconds": round(sum(len(u.units) for u in train_utts) * hop_s, 3),
        "val_seconds": round(sum(len(u.units) for u in val_utts) * hop_s, 3),
        "val_ids": [u.id for u in val_utts][:100],
        "split": {"val_ratio": cfg.val_ratio, "salt": cfg.split_salt, "by": "hash of id"},
        "segment_samples": cfg.segment_length,
    }
    if echo:
        params = sum(p.numel() for p in generator.parameters())
        print(f"vocoder: {vc.generator} ({'GAN' if adversarial else 'mel + L1'}), {params / 1e6:.2f} M parameters, "
              f"k={data['k']}, hop {vc.hop} samples; train {len(train_utts)} utterances ({data['train_seconds']:.0f} s), "
              f"val {len(val_utts)} ({data['val_seconds']:.0f} s)", flush=True)
    result = fit(module, train_loader, val_loader, out, config=cfg, history_name="training_log.json", echo=echo)
    if not result.is_main:
        return {}
    if result.best_path is None:
        raise RuntimeError(f"{out}: training produced no best.ckpt")
    metrics = {
        "val_mel_loss": result.best_row.get("val_mel_loss"), "best_epoch": result.best_epoch,
        "epochs": result.epochs_done, "stopped_early": result.stopped_early, "world_size": result.world_size,
        "train_mel_loss": result.best_row.get("train_mel_loss"),
    }
    export_best(result.best_path, out / "model", vc, table, hop_s, card={
        "task": "unit-vocoder", "data": data, "seed": t.seed, "metrics": metrics, "training_config": to_dict(cfg),
        "f0_per_frame": 1 if vc.uses_f0 else None,  # trained on one F0 value per unit frame
        "checkpoint": str(result.best_path), "torch_threads": torch.get_num_threads(),
    })
    if echo:
        print(f"vocoder: best val_mel_loss {metrics['val_mel_loss']:.4f} at epoch {result.best_epoch} "
              f"-> {out / 'model'}", flush=True)
    return metrics


def corpus_kmeans_id(corpus: Path) -> str | None:
    """The ``kmeans_id`` of a unit corpus (its first record's; None for corpora written without one)."""
    from unitwave.data.manifest import ReadStats, iter_jsonl

    for rec in iter_jsonl(corpus, ReadStats(quiet=True)):
        value = rec.get("kmeans_id")
        return value if isinstance(value, str) else None
    return None


def export_best(checkpoint: Path, folder: Path, vc: VocoderConfig, speakers: list[str] | None, hop_s: float,
                card: dict[str, tp.Any]) -> Path:
    """The generator of ``checkpoint`` as a vocoder folder (``generator.safetensors`` + ``model_card.json``)."""
    from unitwave.train import load_checkpoint
    from unitwave.vocoder.models import build_generator, save_vocoder

    state = load_checkpoint(checkpoint)["state_dict"]
    prefix = "generator."
    generator = build_generator(vc)
    generator.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return save_vocoder(folder, generator, vc, speakers=speakers, frame_hop_s=hop_s, extra=card)
