"""The command table: plain data, importable from any layer (the CLI reads it; the SLURM backend uses it
to write ``unitwave <command> --config ... --shard k/N`` for a stage's config)."""

from __future__ import annotations

import typing as tp
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    module: str
    config: str
    help: str
    function: str = "run"


#: name -> command, or a group of sub-commands ("" is the group's own command, when it has one)
COMMANDS: dict[str, Command | dict[str, Command]] = {
    # prepare: audio in, manifests out
    "convert": Command("unitwave.prepare.convert", "ConvertConfig", "Convert audio to mono 16-bit WAV + manifest"),
    "vad": Command("unitwave.prepare.vad", "VadConfig", "Speech statistics per file (CSV), manifest, intervals"),
    "segment": Command("unitwave.prepare.segment", "SegmentConfig", "Cut audio at pauses into utterance WAVs"),
    "split": Command("unitwave.prepare.split", "SplitConfig", "Deterministic train/val/test split by id hash"),
    # discrete units
    "units": {
        "": Command("unitwave.units.pipeline", "UnitsConfig", "Fit k-means and encode a corpus in one go"),
        "fit": Command("unitwave.units.fit", "FitConfig", "Fit k-means on SSL/MFCC frames of a manifest"),
        "encode": Command("unitwave.units.encode", "EncodeConfig", "Encode a manifest into timestamped units"),
        "quality": Command("unitwave.units.quality", "QualityConfig", "Phone purity, cluster purity, PNMI"),
        "import-kmeans": Command(
            "unitwave.units.legacy", "ImportKmeansConfig", "Convert a fairseq/textlesslib km.bin (pickle)"
        ),
    },
    "motifs": Command("unitwave.motifs.bpe", "MotifsConfig", "SentencePiece BPE motifs over unit sequences"),
    "lm": {
        "train": Command("unitwave.lm.commands", "LMTrainConfig", "Train a unit language model", "train"),
        "score": Command("unitwave.lm.commands", "LMScoreConfig", "Log-probability of each utterance", "score"),
        "sample": Command("unitwave.lm.commands", "LMSampleConfig", "Continue a unit prompt", "sample"),
        "grid": Command("unitwave.lm.commands", "LMGridConfig", "Grid search of LMs in parallel", "grid"),
    },
    # speech from units
    "vocoder": {
        "train": Command("unitwave.vocoder.commands", "VocoderTrainConfig", "Train a unit-to-speech vocoder", "train"),
    },
    "resynth": Command("unitwave.vocoder.resynth", "ResynthConfig", "Speech to speech through units and a vocoder"),
    "eval": {
        "resynth": Command("unitwave.eval.resynth", "EvalResynthConfig", "SNR, MCD, F0 metrics and report.html"),
    },
    # runs
    "status": Command("unitwave.engine.status", "StatusConfig", "Show shard states, records, errors of a run"),
    "resubmit": Command("unitwave.engine.resubmit", "ResubmitConfig", "Resubmit failed or missing shards"),
    # synthetic data and the demo
    "demo-corpus": Command(
        "unitwave.testing.corpus", "CorpusConfig", "Build the synthetic speech corpus with ground truth"
    ),
    "demo": Command("unitwave.demo", "DemoConfig", "Run the whole pipeline on a synthetic corpus"),
}


def iter_commands() -> tp.Iterator[tuple[str, Command]]:
    """``("units encode", Command)`` for every command, groups flattened."""
    for name, entry in COMMANDS.items():
        if isinstance(entry, Command):
            yield name, entry
        else:
            for sub, cmd in entry.items():
                yield f"{name} {sub}".strip(), cmd


def command_for_config(config_cls: type) -> str:
    """The command whose config dataclass is ``config_cls`` (e.g. ``"units encode"``)."""
    for name, cmd in iter_commands():
        if cmd.module == config_cls.__module__ and cmd.config == config_cls.__qualname__:
            return name
    raise KeyError(f"no command takes {config_cls.__module__}.{config_cls.__qualname__}")
