"""``unitwave convert``: any audio to 16 kHz (or ``--sample-rate``) mono 16-bit WAV plus a manifest."""

from __future__ import annotations

import dataclasses as dc
import logging
import typing as tp
from pathlib import Path

import numpy as np
import tyro

from unitwave.data.inputs import input_root, iter_inputs
from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record
from unitwave.data.paths import OutputNames, safe_join
from unitwave.data.records import audio_slice
from unitwave.engine.options import EngineConfig
from unitwave.engine.stage import Stage

log = logging.getLogger("unitwave")


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
        clipped = int(np.count_nonzero(np.abs(audio) > 1.0))
        if clipped:  # float sources can exceed full scale; 16-bit output cannot hold it
            out["clipped_samples"] = clipped
            log.warning("%s: %d samples (%.2f%%) beyond full scale were clipped in %s", src, clipped,
                        100 * clipped / max(1, audio.size), dst.name)
        if record.get("offset") is not None:  # a slice
            out["source_offset"] = offset
        return out


def run(cfg: ConvertConfig) -> tp.Any:
    if not 1000 <= cfg.sample_rate <= 384000:
        raise ValueError(f"--sample-rate must be a rate in Hz between 1000 and 384000, got {cfg.sample_rate}")
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
