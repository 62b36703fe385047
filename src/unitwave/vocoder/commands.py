"""``unitwave vocoder train``: a unit-to-speech vocoder from a unit corpus and its audio.

```sh
unitwave vocoder train --units runs/units/all/all_corpus_timestamped.jsonl --audio runs/convert/manifest.jsonl runs/vocoder
unitwave vocoder train --units C --audio M runs/v1 --vocoder.generator simple --batch-size 16 --segment-length 16000
unitwave vocoder train --units C --audio M runs/vocoder --epochs 2000        # rerun: resumes from latest.ckpt
unitwave vocoder train --units C --audio M runs/multi --speakers             # + a speaker lookup table
unitwave vocoder train --units C --audio M runs/vocoder --backend slurm --devices 4 --partition gpu
```

The run folder::

    config.yaml                 the resolved VocoderTrainConfig (feed back with --config)
    checkpoints/latest.ckpt     every epoch (the training layer; resumable bit for bit)
    checkpoints/best.ckpt       lowest validation mel loss (val_mel_loss)
    checkpoints/epoch_NNNN.ckpt every --save-every epochs;  checkpoints/final.ckpt when training ends
    training_log.json           one row per epoch: train_loss (generator), train_d_loss, train_mel_loss,
                                train_adv_loss, train_fm_loss, val_mel_loss, lr (generator), lr_1 (discriminator), ...
    train.log, tensorboard/     one-line epoch summaries, TensorBoard scalars
    samples/reference/<id>.wav  the fixed validation utterances (--num-samples), as the vocoder hears them
    samples/epoch_NNNN/<id>.wav the same utterances resynthesized, at every --save-every checkpoint
    f0_cache/                   F0 tracks of the utterances (WORLD), computed once
    model/                      generator.safetensors + model_card.json of the best epoch: the vocoder
                                (Vocoder.from_dir(<run>/model), or the run folder itself)

``hifigan`` (the users' V2) trains as a GAN (manual optimisation: discriminator step, then generator
step) with AdamW (0.8, 0.99), lr 2e-4 per optimiser (``--lr-g``/``--lr-d``), decayed x0.999 per epoch,
on random ``--segment-length`` windows. ``simple`` (V1) has no discriminator: mel + waveform L1 only
(its default loss weights are mel 45, L1 1; the users' V1 ran --batch-size 16 --segment-length 16000
--patience 50 --save-every 20 --epochs 500). Validation runs on whole utterances, so ``val_mel_loss``
is the same every epoch for the same weights.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import tyro

from unitwave.train.config import TrainConfig
from unitwave.train.launch import LaunchConfig
from unitwave.vocoder.config import VocoderConfig

#: the users' V2 recipe (HiFi-GAN): AdamW (0.8, 0.99), 2e-4, x0.999 per epoch, no gradient clipping
VOCODER_TRAINING = TrainConfig(
    epochs=1000,
    batch_size=12,
    lr=2e-4,
    betas=(0.8, 0.99),
    schedule="exponential",
    lr_decay=0.999,
    grad_clip=0.0,
    monitor="val_mel_loss",
    patience=100,
    save_every=25,
)


@dc.dataclass(frozen=True)
class VocoderTrainConfig:
    """Train a unit vocoder (HiFi-GAN with F0/speaker conditioning, or the simple V1 baseline)."""

    output_dir: tyro.conf.Positional[Path]
    """Run folder: checkpoints/, training_log.json, samples/, model/ (the exported vocoder), config.yaml."""
    units: Path
    """Unit corpus: <name>_corpus_timestamped.jsonl from `unitwave units` (frame-level units + frame_hop_s)."""
    audio: tp.Optional[Path] = None
    """Audio manifest whose ids match the corpus (audio_filepath, offset, speaker); default: the corpus's own audio_filepath."""
    segment_length: int = 32000
    """Training window in samples (random per item and epoch; shorter utterances are zero-padded)."""
    val_ratio: float = 0.05
    """Share of utterances held out for validation, by a hash of the id (at least one)."""
    split_salt: str = ""
    """Change to draw another (still deterministic) validation split."""
    speakers: bool = False
    """Condition the HiFi-GAN on speaker: a lookup table of the 'speaker' names in the data (in model_card.json)."""
    num_samples: int = 3
    """Validation utterances resynthesized into samples/ at every --save-every checkpoint (0: none)."""
    lr_g: tp.Optional[float] = None
    """Peak learning rate of the generator's AdamW (default: --lr)."""
    lr_d: tp.Optional[float] = None
    """Peak learning rate of the discriminators' AdamW (default: --lr)."""
    cache_audio: bool = False
    """Keep every decoded utterance in memory (small corpora: no decoding or resampling after the first epoch)."""
    vocoder: VocoderConfig = VocoderConfig()
    """The model; num_units is set from the corpus's k, num_speakers from its speakers."""
    train: tp.Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = VOCODER_TRAINING
    launch: tp.Annotated[LaunchConfig, tyro.conf.OmitArgPrefixes] = LaunchConfig()

    def check(self) -> VocoderTrainConfig:
        """ConfigError naming the flag for a value that cannot work; FileNotFoundError for missing inputs."""
        from unitwave.config import ConfigError

        self.train.check()
        rules = [
            (self.segment_length >= max(self.vocoder.mel.n_fft, 2 * self.vocoder.hop),
             f"--segment-length must be at least {max(self.vocoder.mel.n_fft, 2 * self.vocoder.hop)} samples (the mel "
             f"loss's FFT size and two frames), got {self.segment_length}"),
            (0.0 <= self.val_ratio < 1.0, f"--val-ratio must be in [0, 1) (got {self.val_ratio})"),
            (self.num_samples >= 0, f"--num-samples must be >= 0 (got {self.num_samples})"),
            (self.lr_g is None or self.lr_g > 0, f"--lr-g must be > 0 (got {self.lr_g})"),
            (self.lr_d is None or self.lr_d > 0, f"--lr-d must be > 0 (got {self.lr_d})"),
            (not self.speakers or self.vocoder.generator == "hifigan",
             "--speakers needs --vocoder.generator hifigan (the simple generator has no speaker input)"),
            (self.vocoder.speaker_mode != "vector",
             "--vocoder.hifigan.speaker vector: training with external speaker vectors is not supported; use lookup"),
            # the dataset feeds F0 as quantised bins and no style ids: these two exist for imported checkpoints
            (self.vocoder.generator != "hifigan" or self.vocoder.hifigan.f0 != "continuous",
             "--vocoder.hifigan.f0 continuous: training with continuous F0 is not supported; use bins or none"),
            (self.vocoder.generator != "hifigan" or self.vocoder.hifigan.num_styles == 0,
             "--vocoder.hifigan.num-styles: training with style conditioning is not supported; leave it at 0"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(message)
        if not Path(self.units).is_file():
            raise FileNotFoundError(f"--units {self.units}: unit corpus not found (the <name>_corpus_timestamped.jsonl "
                                    "that `unitwave units` writes)")
        if self.audio is not None and not Path(self.audio).is_file():
            raise FileNotFoundError(f"--audio {self.audio}: audio manifest not found")
        return self


#: settings that shape the weights: a run folder resumes only with the same ones (k comes from the corpus)
MODEL_KEYS = ("vocoder", "speakers")
#: options that choose the training and validation data
DATA_KEYS = ("units", "audio", "val_ratio", "split_salt")


def train(cfg: VocoderTrainConfig) -> tp.Any:
    """Train here, or (``--backend slurm``) submit the same training as a SLURM job."""
    cfg.check()
    if cfg.launch.backend == "slurm":
        from unitwave.train.checkpoint import refuse_other_model
        from unitwave.train.launch import submit_training

        refuse_other_model(cfg, cfg.output_dir, cfg.train.resume, MODEL_KEYS, DATA_KEYS)  # before config.yaml is replaced
        return submit_training(cfg, cfg.output_dir, cfg.train)
    from unitwave.vocoder.training import train_vocoder

    return train_vocoder(cfg)
