"""``unitwave lm train|score|sample|grid``: configs and thin wrappers over the library functions.

```sh
unitwave lm train runs/units/demo_units.txt runs/lm --epochs 20 --hidden-size 512
unitwave lm score runs/lm runs/units/test_units.txt runs/lm/test_scores.jsonl
unitwave lm sample runs/lm --prompt "12 12 40 40 7" --length 200 --num-samples 4
unitwave lm grid grid.yaml runs/units/demo_units.txt runs/lm_grid --workers 4
unitwave lm train runs/units/demo_units.txt runs/lm --backend slurm --num-nodes 2 --devices 4 --partition gpu
```
Torch and Lightning are imported only inside the functions, so ``--help`` is instant.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import tyro

from unitwave.engine.options import EngineConfig
from unitwave.train.config import Device, TrainConfig
from unitwave.train.launch import LaunchConfig


@dc.dataclass(frozen=True)
class LMTrainConfig:
    """Train a unit language model (LSTM or small causal transformer) on <name>_units.txt."""

    units: tyro.conf.Positional[Path]
    """<name>_units.txt (one utterance per line); the training set when --val-units is given."""
    output_dir: tyro.conf.Positional[Path]
    """Run folder: checkpoints/, model/ (safetensors + model_card.json), metrics.json, training_history.json."""
    val_units: tp.Optional[Path] = None
    """Validation utterances (default: --val-ratio of UNITS, chosen by a hash of each line)."""
    val_ratio: float = 0.05
    """Share of UNITS held out for validation when --val-units is not given."""
    split_salt: str = ""
    """Change to draw a different (still deterministic) validation split."""
    k: int = 0
    """Units in the inventory (0: the timestamped corpus's k, else the largest id + 1)."""
    arch: tp.Literal["lstm", "transformer"] = "lstm"
    """LSTM, or a small causal transformer (embedding-dim = width, hidden-size = feed-forward width)."""
    embedding_dim: int = 256
    """Unit embedding size (transformer: model width)."""
    hidden_size: int = 512
    """LSTM hidden size (transformer: feed-forward width)."""
    num_layers: int = 2
    """Stacked layers."""
    dropout: float = 0.1
    """Dropout on embeddings, between layers and on outputs."""
    num_heads: int = 4
    """Transformer attention heads."""
    max_len: int = 2048
    """Truncation length in units (frames): longer utterances keep their first max_len units (0: no limit, LSTM only)."""
    load_on_the_fly: bool = False
    """Read each utterance from the file when needed instead of holding the corpus in RAM."""
    train: tp.Annotated[TrainConfig, tyro.conf.OmitArgPrefixes] = TrainConfig()
    launch: tp.Annotated[LaunchConfig, tyro.conf.OmitArgPrefixes] = LaunchConfig()

    def check(self) -> LMTrainConfig:
        from unitwave.config import ConfigError

        self.train.check()
        rules = [
            (0.0 <= self.val_ratio < 1.0, f"--val-ratio must be in [0, 1) (got {self.val_ratio})"),
            (self.k >= 0, f"--k must be >= 0 (got {self.k}); 0 reads it from the corpus"),
            (min(self.embedding_dim, self.hidden_size, self.num_layers, self.num_heads) >= 1,
             "--embedding-dim, --hidden-size, --num-layers and --num-heads must be >= 1"),
            (0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1) (got {self.dropout})"),
            (self.max_len >= 0, f"--max-len must be >= 0 (got {self.max_len})"),
            (self.arch == "lstm" or self.max_len > 0, "--arch transformer needs --max-len > 0 (its context length)"),
            (self.arch == "lstm" or self.embedding_dim % self.num_heads == 0,
             f"--embedding-dim {self.embedding_dim} must be a multiple of --num-heads {self.num_heads}"),
        ]
        for ok, message in rules:
            if not ok:
                raise ConfigError(message)
        return self


@dc.dataclass(frozen=True)
class LMScoreConfig:
    """Log-probability of each utterance under a trained unit LM (e.g. sWUGGY-style lexical comparisons)."""

    model: tyro.conf.Positional[Path]
    """An exported model folder (model_card.json) or a run folder of unitwave lm train."""
    units: tyro.conf.Positional[Path]
    """Utterances to score: <name>_units.txt, or a timestamped corpus .jsonl (ids kept)."""
    output: tyro.conf.Positional[Path]
    """JSONL, one line per utterance: index, id, logprob (nats), num_units, logprob_per_unit, bits_per_unit."""
    batch_size: int = 64
    """Utterances per batch."""
    device: Device = "auto"
    """auto: cuda if present, else cpu."""


@dc.dataclass(frozen=True)
class LMSampleConfig:
    """Continue unit prompts with a trained unit LM."""

    model: tyro.conf.Positional[Path]
    """An exported model folder (model_card.json) or a run folder of unitwave lm train."""
    prompt: str = ""
    """Space-separated unit ids to continue (empty: sample from SOS)."""
    prompts_file: tp.Optional[Path] = None
    """One prompt per line (overrides --prompt); each gets --num-samples continuations."""
    num_samples: int = 1
    """Continuations per prompt."""
    length: int = 100
    """Units to generate after the prompt."""
    temperature: float = 1.0
    """Softmax temperature (lower: more conservative)."""
    top_k: int = 0
    """Sample among the k most likely units only (0: all)."""
    seed: int = 0
    """Sampling seed."""
    device: Device = "auto"
    """auto: cuda if present, else cpu."""
    output: tp.Optional[Path] = None
    """Write the samples here (prompt + continuation, one per line) instead of printing them."""


@dc.dataclass(frozen=True)
class LMGridConfig:
    """Grid search of unit LMs: every combination of the YAML grid is one run, in parallel on the engine."""

    grid: tyro.conf.Positional[Path]
    """YAML: 'grid' (option -> list of values) and optional 'base' (options shared by all runs)."""
    units: tyro.conf.Positional[Path]
    """<name>_units.txt, as for unitwave lm train."""
    output_dir: tyro.conf.Positional[Path]
    """Run folder: runs/<run>/ per grid point, leaderboard.csv, manifest.jsonl (one record per run)."""
    val_units: tp.Optional[Path] = None
    """Validation utterances (default: the deterministic --val-ratio split of every run)."""
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


def train(cfg: LMTrainConfig) -> tp.Any:
    """Train here, or (``--backend slurm``) submit the same training as a SLURM job."""
    if cfg.launch.backend == "slurm":
        from unitwave.lm.training import check_same_model
        from unitwave.train.launch import submit_training

        if not Path(cfg.units).is_file():
            raise FileNotFoundError(f"units file not found: {cfg.units}")
        check_same_model(cfg.check(), Path(cfg.output_dir))  # before config.yaml is replaced
        return submit_training(cfg, cfg.output_dir, cfg.train)
    from unitwave.lm.training import train_lm

    return train_lm(cfg)


def score(cfg: LMScoreConfig) -> dict[str, tp.Any]:
    from unitwave.lm.inference import score_command

    return score_command(cfg)


def sample(cfg: LMSampleConfig) -> list[list[int]]:
    from unitwave.lm.inference import sample_command

    return sample_command(cfg)


def grid(cfg: LMGridConfig) -> tp.Any:
    from unitwave.lm.grid import run_grid

    return run_grid(cfg)
