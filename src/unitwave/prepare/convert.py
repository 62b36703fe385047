"""``unitwave convert``: any audio to 16 kHz (or ``--sample-rate``) mono 16-bit WAV plus a manifest."""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import tyro

from unitwave.data.inputs import input_root, iter_inputs
from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record
from unitwave.data.paths import OutputNames, safe_join
from unitwave.data.records import audio_slice
from unitwave.engine.options import EngineConfig
from unitwave.engine.stage import Stage


@dc.dataclass(frozen=True)
class ConvertConfig:
    """Convert a folder (recursive) or a manifest of audio to mono 16-bit WAV under OUTPUT_DIR/audio/."""

    input: tyro.conf.Positional[Path]
    """A folder of audio files (searched recursively) or a JSONL manifest."""
    output_dir: tyro.conf.Positional[Path]
    """Run folder: audio/, manifest.jsonl, errors.jsonl, config.yaml, run.json."""
    sample_rate: int = 16000
    """Output sample rate in Hz."""
    relative_to: tp.Optional[Path] = None
    """Folder that output paths keep their structure relative to (default: the input folder, or the manifest's folder)."""
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


class ConvertStage(Stage):
    name = "convert"

    def __init__(self, out_dir: Path, root: Path, from_folder: bool, sample_rate: int) -> None:
        self.audio_dir = Path(out_dir).absolute() / "audio"
        self.names = OutputNames(root, from_folder)
        self.sample_rate = sample_rate

    def plan(self, inputs: tp.Iterable[Record]) -> None:
        self.names.plan(inputs)

    def record_key(self, record: Record) -> str:
        return self.names.key(record)

    def process(self, batch: list[Record]) -> list[list[Record]]:
        return [[self.convert_one(r)] for r in batch]

    def convert_one(self, record: Record) -> Record:
        from unitwave.audio.io import load_audio, write_wav

        src = record.get(AUDIO_FIELD)
        if not isinstance(src, str) or not src:
            raise ValueError(f"record has no '{AUDIO_FIELD}' field")
        offset, duration = audio_slice(record)
        dst = safe_join(self.audio_dir, self.names.relpath(record))
        audio, sr = load_audio(src, self.sample_rate, offset=offset, duration=duration)
        write_wav(dst, audio, sr)
        out = {k: v for k, v in record.items() if k != "offset"}
        out.update({AUDIO_FIELD: str(dst), "duration": round(len(audio) / sr, 6), "source": src})
        if record.get("offset") is not None:  # a slice
            out["source_offset"] = offset
        return out


def run(cfg: ConvertConfig) -> tp.Any:
    from unitwave.engine.runner import run_stage

    stats = ReadStats()
    stage = ConvertStage(cfg.output_dir, input_root(cfg.input, cfg.relative_to), Path(cfg.input).is_dir(), cfg.sample_rate)
    return run_stage(
        stage,
        lambda: iter_inputs(cfg.input, stats, exclude=cfg.output_dir),
        cfg.output_dir,
        cfg.engine,
        config=cfg,
        malformed_lines=lambda: stats.malformed,
    )
