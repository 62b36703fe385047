"""``unitwave segment``: cut recordings at pauses into utterance-sized mono WAV segments.

Defaults follow the practice of teams segmenting long readings: a pause is a silence of at least
0.5 s, the cut goes in its middle, segments are kept between 2 and 30 s, longer ones are split at
their deepest internal pause and shorter ones merged into a neighbour (or dropped, or kept:
``--short``). Any VAD backend drives it (``--vad-backend``; ``energy`` is the classic -40 dBFS rule).

Outputs go to ``OUTPUT_DIR[/LANGUAGE][/NAME]/`` (so several languages or corpora live side by side)::

    audio/<source's relative folder>/<source stem>_<index>.wav   16 kHz mono 16-bit segments
    manifest.jsonl     id (<source id>_<index>), audio_filepath, duration, source, source_offset,
                       source_id, language (+ the source record's other fields, except its text)
    segments.meta.json backend, versions, rules, totals and the length distribution
    config.yaml, run.json, shards/, errors.jsonl, summary.json   (the engine's run folder)

``--no-write-audio`` writes no WAVs: each record then points into its source file with NeMo's
``audio_filepath`` + ``offset`` + ``duration``.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import json
import typing as tp
from pathlib import Path, PurePosixPath

import numpy as np
import tyro

from unitwave.audio.vad.options import VadOptions
from unitwave.audio.vad.segments import SegmentRules, ShortPolicy
from unitwave.data.inputs import input_root, iter_inputs
from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record, iter_jsonl
from unitwave.data.paths import OutputNames
from unitwave.engine.options import EngineConfig
from unitwave.prepare.vad import LoadedAudio, VadDrivenStage, backend_meta, require_input

if tp.TYPE_CHECKING:
    from unitwave.engine.run_dir import RunDir

#: a pause is at least this long unless --min-silence-s says otherwise
DEFAULT_MIN_PAUSE_S = 0.5
#: source fields that do not describe a piece of the source (a file's transcript is not its segment's)
NOT_INHERITED = ("id", AUDIO_FIELD, "duration", "offset", "text")


@dc.dataclass(frozen=True)
class SegmentConfig:
    """Cut audio at pauses into utterance-sized 16 kHz mono WAV segments plus a manifest."""

    input: tyro.conf.Positional[Path]
    """A folder of audio files (searched recursively) or a JSONL manifest."""
    output_dir: tyro.conf.Positional[Path]
    """Output root; the run folder is OUTPUT_DIR[/LANGUAGE][/NAME]."""
    language: tp.Optional[str] = None
    """Language of the recordings: set on every segment and namespaces the outputs (OUTPUT_DIR/LANGUAGE/)."""
    name: tp.Optional[str] = None
    """A further namespace for the outputs (OUTPUT_DIR[/LANGUAGE]/NAME/)."""
    min_segment_s: float = 2.0
    """Shortest segment kept, in seconds (see --short)."""
    max_segment_s: float = 30.0
    """Longest segment, in seconds; longer ones are split at their deepest internal pause."""
    short: ShortPolicy = "merge"
    """Segments under --min-segment-s: merge into a touching neighbour (dropped if none fits), drop, or keep."""
    keep_silence_s: float = 1.0
    """Most silence kept at each side of a segment, in seconds; the middle of longer pauses is dropped."""
    refine_cuts: bool = True
    """Measure each pause on the signal (5 ms frames) for its true length and middle; VADs report speech a little late."""
    sample_rate: int = 16000
    """Sample rate of the segment WAVs in Hz."""
    write_audio: bool = True
    """Write WAV segments (else the manifest points into the source files with offset + duration)."""
    relative_to: tp.Optional[Path] = None
    """Folder that segment paths keep their structure relative to (default: the input folder; for a manifest, its folder, or the folder all its audio shares)."""
    vad: tp.Annotated[VadOptions, tyro.conf.OmitArgPrefixes] = VadOptions(min_silence_s=DEFAULT_MIN_PAUSE_S)
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()

    def rules(self) -> SegmentRules:
        return SegmentRules(
            min_segment_s=self.min_segment_s,
            max_segment_s=self.max_segment_s,
            keep_silence_s=self.keep_silence_s,
            short=self.short,
            refine_cuts=self.refine_cuts,
        )

    def run_dir(self) -> Path:
        """``OUTPUT_DIR[/LANGUAGE][/NAME]``."""
        parts = [p for p in (self.language, self.name) if p]
        for p in parts:
            if "/" in p or "\\" in p or p.startswith(".") or not p.strip():
                raise ValueError(f"--language and --name must be plain folder names, got {p!r}")
        return Path(self.output_dir).joinpath(*parts)


def segment_relpath(source_relpath: PurePosixPath, index: int) -> PurePosixPath:
    """``<source's relative folder>/<source stem>_<index>.wav`` (see convert's output paths)."""
    return source_relpath.with_name(f"{source_relpath.stem}_{index:04d}.wav")


class SegmentStage(VadDrivenStage):
    """One source record in, its segments out (0, 1 or many records)."""

    name = "segment"

    def __init__(self, cfg: SegmentConfig, run_root: Path, meta: dict[str, tp.Any]) -> None:
        super().__init__(cfg.vad)
        self.rules = cfg.rules()
        self.language = cfg.language
        self.sample_rate = cfg.sample_rate
        self.write_audio = cfg.write_audio
        self.audio_dir = Path(run_root).absolute() / "audio"
        self.names = OutputNames(input_root(cfg.input, cfg.relative_to), Path(cfg.input).is_dir())
        self.meta = meta

    def plan(self, inputs: tp.Iterable[Record]) -> None:
        if self.write_audio:
            self.names.plan(inputs)

    def record_key(self, record: Record) -> str:
        return self.names.key(record) if self.write_audio else ""

    def process(self, batch: list[Record]) -> list[list[Record]]:
        from unitwave.audio.vad.segments import plan_segments

        backend, loaded, probs = self.detect(batch)
        out = []
        for record, item, p in zip(batch, loaded, probs):
            plan = plan_segments(
                p,
                backend.frame_s,
                item.duration_s,
                self.rules,
                self.options.rules(),
                audio=item.audio,
                sample_rate=backend.sample_rate,
            )
            out.append(self.emit(record, item, plan.segments))
        return out

    def emit(self, record: Record, item: LoadedAudio, segments: list[tuple[float, float]]) -> list[Record]:
        """Write the segment WAVs of one source and return their records."""
        from unitwave.audio.io import load_audio, write_wav
        from unitwave.data.paths import safe_join

        source = record[AUDIO_FIELD]
        inherited = {k: v for k, v in record.items() if k not in NOT_INHERITED}
        if self.language:
            inherited["language"] = self.language
        audio, rate = item.audio, 16000
        if self.write_audio and self.sample_rate != rate:
            audio, rate = load_audio(
                source,
                self.sample_rate,
                offset=item.offset_s,
                duration=item.duration_s if item.sliced else None,
            )
        records = []
        for index, (start, end) in enumerate(segments):
            first, last = round(start * rate), min(len(audio), round(end * rate))
            rec: Record = {"id": f"{record['id']}_{index:04d}"}
            offset = round(item.offset_s + first / rate, 6)
            if self.write_audio:
                path = safe_join(self.audio_dir, segment_relpath(self.names.relpath(record), index))
                write_wav(path, audio[first:last], rate)
                rec.update({AUDIO_FIELD: str(path), "duration": round((last - first) / rate, 6)})
            else:
                rec.update(
                    {AUDIO_FIELD: source, "offset": offset, "duration": round((last - first) / rate, 6)}
                )
            rec.update({"source": source, "source_id": record["id"], "source_offset": offset, **inherited})
            records.append(rec)
        return records

    def finalize(self, run: RunDir) -> None:
        write_meta(run, self.meta)


def write_meta(run: RunDir, meta: dict[str, tp.Any]) -> dict[str, tp.Any]:
    """``segments.meta.json``: what made the segments and how long they are."""
    from unitwave.data.atomic import atomic_write_text

    lengths = np.array([float(r["duration"]) for r in iter_jsonl(run.manifest)], dtype=np.float64)
    sources = {r.get("source_id") for r in iter_jsonl(run.manifest)}
    failed = sum(1 for _ in iter_jsonl(run.errors)) if run.errors.is_file() else 0
    info = {
        **meta,
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "segments": len(lengths),
        "sources_with_segments": len(sources),
        "failed_sources": failed,
        "hours": round(float(lengths.sum()) / 3600, 4),
        "duration_s": {
            "mean": round(float(lengths.mean()), 3),
            "min": round(float(lengths.min()), 3),
            "p10": round(float(np.percentile(lengths, 10)), 3),
            "median": round(float(np.median(lengths)), 3),
            "p90": round(float(np.percentile(lengths, 90)), 3),
            "max": round(float(lengths.max()), 3),
        }
        if len(lengths)
        else None,
    }
    atomic_write_text(run.root / "segments.meta.json", json.dumps(info, indent=2, ensure_ascii=False) + "\n")
    return info


def run(cfg: SegmentConfig) -> tp.Any:
    """Segment every input file (see the module docstring for what goes where)."""
    from unitwave import __version__
    from unitwave.engine.runner import run_stage

    require_input(cfg.input)
    cfg.rules()  # validates the bounds before anything runs
    run_root = cfg.run_dir()
    backend = cfg.vad.build()
    meta = {
        "input": str(Path(cfg.input).absolute()),
        "language": cfg.language,
        "unitwave": __version__,
        **backend_meta(cfg.vad, backend),
        "segment_rules": dc.asdict(cfg.rules()),
    }
    stats = ReadStats()
    summary = run_stage(
        SegmentStage(cfg, run_root, meta),
        lambda: iter_inputs(cfg.input, stats, exclude=run_root),
        run_root,
        cfg.engine,
        config=cfg,
        malformed_lines=lambda: stats.malformed,
    )
    if summary.complete:
        print(f"segment: {summary.output_records} segments -> {run_root / 'manifest.jsonl'}")
    return summary
