"""``unitwave vad``: speech statistics of every file, a clean manifest and the speech intervals.

Outputs, for ``--name NAME`` (default ``<input folder name>_<YYYY-MM-DD>``)::

    OUTPUT_DIR/NAME.csv              one row per file (or slice: offset_s): duration, rate, channels, speech/silence figures
    OUTPUT_DIR/NAME.meta.json        the CSV's sidecar: backend, versions, model hash, every parameter, totals
    OUTPUT_DIR/NAME.json             JSONL manifest: audio_filepath (absolute), duration, id (+ input fields)
    OUTPUT_DIR/NAME.segments.jsonl   speech and pause intervals per file, in seconds (from a slice's offset)
    OUTPUT_DIR/NAME/                 the run folder (config.yaml, run.json, shards, errors.jsonl, ...)

Rerunning the same command (same name) resumes; ``unitwave status OUTPUT_DIR/NAME`` shows progress.
"""

from __future__ import annotations

import csv
import dataclasses as dc
import datetime as _dt
import json
import os
import typing as tp
from pathlib import Path

import numpy as np
import tyro

from unitwave.audio.vad.options import VadOptions
from unitwave.audio.vad.stats import STAT_FIELDS
from unitwave.data.atomic import temp_path
from unitwave.data.inputs import iter_inputs
from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record, iter_jsonl
from unitwave.engine.options import EngineConfig
from unitwave.engine.stage import Stage

if tp.TYPE_CHECKING:
    from unitwave.audio.io import AudioInfo
    from unitwave.audio.vad.backends import VadBackend
    from unitwave.engine.run_dir import RunDir

#: CSV columns, in order (``error`` is filled only for files that could not be analysed)
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "path",
    "offset_s",
    "duration_s",
    "sample_rate",
    "channels",
    *(f for f in STAT_FIELDS if f != "duration_s"),
    "error",
)


@dc.dataclass(frozen=True)
class VadConfig:
    """Speech statistics per file (CSV + sidecar JSON), a JSONL manifest and speech intervals."""

    input: tyro.conf.Positional[Path]
    """A folder of audio files (searched recursively, any format the audio layer reads) or a JSONL manifest."""
    output_dir: tyro.conf.Positional[Path]
    """Where NAME.csv, NAME.meta.json, NAME.json, NAME.segments.jsonl and the run folder NAME/ go."""
    name: tp.Optional[str] = None
    """Output name (default: <input folder or manifest name>_<YYYY-MM-DD>); rerun with the same name to resume."""
    vad: tp.Annotated[VadOptions, tyro.conf.OmitArgPrefixes] = VadOptions()
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


def default_name(input_path: Path, today: _dt.date | None = None) -> str:
    """``<folder name>_<YYYY-MM-DD>`` (a manifest gives its file stem)."""
    p = Path(input_path).absolute()
    base = p.name if p.is_dir() else p.stem
    return f"{base or 'audio'}_{(today or _dt.date.today()).isoformat()}"


@dc.dataclass
class LoadedAudio:
    """A record's audio, ready for a VAD: mono float32 at 16 kHz."""

    audio: np.ndarray  # (T,) float32
    info: AudioInfo  # header of the source file (its own rate and channels)
    duration_s: float  # of the record: the whole file, or the slice for records with an offset
    offset_s: float
    sliced: bool = False  # the record has an offset: a slice of its file, not the whole of it


def load_record_audio(record: Record, sample_rate: int = 16000) -> LoadedAudio:
    """Read a manifest record's audio (its ``offset``/``duration`` slice when it has an offset).

    Raises AudioError (path + reason) for unreadable audio, ValueError for a record without a path.
    """
    from unitwave.audio.io import audio_info, load_audio
    from unitwave.data.records import audio_slice

    path = record.get(AUDIO_FIELD)
    if not isinstance(path, str) or not path:
        raise ValueError(f"record {record.get('id')!r} has no '{AUDIO_FIELD}' field")
    info = audio_info(path)
    offset, duration = audio_slice(record)
    sliced = record.get("offset") is not None
    audio, _ = load_audio(path, sample_rate, offset=offset, duration=duration)
    seconds = len(audio) / sample_rate if sliced else info.duration
    return LoadedAudio(audio, info, round(seconds, 6), offset, sliced)


class CostCache:
    """Audio seconds of a record for batching: its ``duration`` field, else the file's header."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def __call__(self, record: Record) -> float:
        d = record.get("duration")
        if isinstance(d, (int, float)) and not isinstance(d, bool) and d > 0:
            return float(d)
        rid = str(record.get("id"))
        if rid not in self._seen:
            from unitwave.audio.io import AudioError, duration_of

            try:
                self._seen[rid] = duration_of(record.get(AUDIO_FIELD) or "")
            except (AudioError, OSError):
                self._seen[rid] = 1.0  # fails properly in process(); cost only orders batches
        return self._seen[rid]


class VadDrivenStage(Stage):
    """What ``vad`` and ``segment`` share: a VAD backend built once per worker, batches of files run
    in lockstep, batch cost in audio seconds."""

    #: padded audio seconds per batch (8 files of 10 minutes; longer files go alone)
    batch_seconds = 4800.0
    #: files run in lockstep by the silero backend (its per-window speed levels off beyond 8)
    max_batch_items = 8

    def __init__(self, options: VadOptions) -> None:
        self.options = options
        self.backend: VadBackend | None = None
        self._seconds = CostCache()

    def setup(self) -> None:
        self.backend = self.options.build()

    def cost(self, record: Record) -> float:
        return self._seconds(record)

    def detect(self, batch: list[Record]) -> tuple[VadBackend, list[LoadedAudio], list[np.ndarray]]:
        """Load each record's audio and run the backend: ``(backend, audio, frame probabilities)``."""
        if self.backend is None:
            self.setup()
        backend = tp.cast("VadBackend", self.backend)
        loaded = [load_record_audio(r) for r in batch]
        return backend, loaded, backend.probabilities_batch([x.audio for x in loaded])


class VadStage(VadDrivenStage):
    """Speech intervals and statistics of one record: input fields + ``duration`` + ``vad``."""

    name = "vad"

    def __init__(self, options: VadOptions, outputs: dict[str, str], meta: dict[str, tp.Any]) -> None:
        super().__init__(options)
        self.outputs = outputs
        self.meta = meta

    def process(self, batch: list[Record]) -> list[list[Record]]:
        from unitwave.audio.vad.intervals import speech_intervals
        from unitwave.audio.vad.stats import pauses_between, speech_stats

        backend, loaded, probs = self.detect(batch)
        rules = self.options.rules()
        out = []
        for record, item, p in zip(batch, loaded, probs):
            intervals = speech_intervals(p, backend.frame_s, item.duration_s, rules)
            stats = speech_stats(intervals, item.duration_s).as_dict()
            del stats["duration_s"]
            vad = {
                "sample_rate": item.info.sample_rate,
                "channels": item.info.channels,
                **stats,
                "speech": np.round(intervals, 4).tolist(),
                "pauses": np.round(pauses_between(intervals), 4).tolist(),
            }
            out.append([{**record, "duration": item.duration_s, "vad": vad}])
        return out

    def finalize(self, run: RunDir) -> None:
        write_outputs(run, self.outputs, self.meta)


class AtomicCsv:
    """A CSV written to a temporary file and renamed into place on a clean close (None -> empty cell)."""

    def __init__(self, path: Path, columns: tp.Sequence[str]) -> None:
        self.path = Path(path)
        self._tmp = temp_path(self.path)
        self._f = open(self._tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self._writer = csv.DictWriter(
            self._f, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
        )
        self._writer.writeheader()

    def write(self, row: dict[str, tp.Any]) -> None:
        self._writer.writerow({k: "" if v is None else v for k, v in row.items()})

    def __enter__(self) -> tp.Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def write_outputs(run: RunDir, outputs: dict[str, str], meta: dict[str, tp.Any]) -> dict[str, tp.Any]:
    """From the run's merged records (streamed): the CSV, the manifest, the intervals, the sidecar JSON."""
    from unitwave.data.atomic import atomic_write_text
    from unitwave.data.manifest import ManifestWriter, resolve_audio

    files = failed = 0
    audio_s = speech_s = 0.0
    with (
        AtomicCsv(Path(outputs["csv"]), CSV_COLUMNS) as table,
        ManifestWriter(Path(outputs["manifest"])) as manifest,
        ManifestWriter(Path(outputs["segments"])) as intervals,
    ):
        for rec in iter_jsonl(run.manifest):
            vad, rid, duration = rec["vad"], rec["id"], rec["duration"]
            path = str(resolve_audio(rec[AUDIO_FIELD], run.root))
            offset = rec.get("offset")  # slices: statistics and intervals are of the slice, times from its start
            table.write({"id": rid, "path": path, "offset_s": offset, "duration_s": duration, **vad})
            rest = {k: v for k, v in rec.items() if k not in ("vad", AUDIO_FIELD, "duration", "id")}
            manifest.write({AUDIO_FIELD: path, "duration": duration, "id": rid, **rest})
            intervals.write(
                {
                    "id": rid,
                    AUDIO_FIELD: path,
                    **({"offset": offset} if offset is not None else {}),
                    "duration": duration,
                    "speech": vad["speech"],
                    "pauses": vad["pauses"],
                }
            )
            files += 1
            audio_s += float(duration)
            speech_s += float(vad["speech_s"])
        for error in iter_jsonl(run.errors) if run.errors.is_file() else ():
            table.write({"id": error.get("id"), "path": error.get("path"), "error": error.get("reason")})
            failed += 1
    summary = {
        **meta,
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "files": files,
        "failed": failed,
        "audio_hours": round(audio_s / 3600, 4),
        "speech_hours": round(speech_s / 3600, 4),
        "speech_ratio": round(speech_s / audio_s, 4) if audio_s else 0.0,
        "csv_columns": list(CSV_COLUMNS),
        "outputs": outputs,
    }
    atomic_write_text(Path(outputs["meta"]), json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def backend_meta(options: VadOptions, backend: VadBackend) -> dict[str, tp.Any]:
    """The backend description for a sidecar; warns when it is not the release unitwave was tested with."""
    import logging

    info = options.describe(backend)
    pinned = info["backend"]
    if not pinned.get("as_tested", True):
        logging.getLogger("unitwave").warning(
            "VAD backend %s is %s (model sha256 %s); unitwave's accuracy figures were measured with %s: "
            "results may differ (both are recorded in the sidecar JSON)",
            pinned["name"],
            pinned["version"],
            pinned.get("model_sha256", "-"),
            pinned.get("tested_version"),
        )
    return info


def require_input(path: Path) -> None:
    """FileNotFoundError before anything is written when the input does not exist."""
    if not Path(path).exists():
        raise FileNotFoundError(f"input not found: {path} (expected a folder of audio or a JSONL manifest)")


def run(cfg: VadConfig) -> tp.Any:
    """Run the VAD over every input file and write the four outputs (see the module docstring)."""
    from unitwave import __version__
    from unitwave.engine.runner import run_stage

    require_input(cfg.input)
    cfg = dc.replace(cfg, name=cfg.name or default_name(cfg.input))
    name = tp.cast(str, cfg.name)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"--name must be a plain file name, got {name!r}")
    out = Path(cfg.output_dir)
    run_root = out / name
    backend = cfg.vad.build()  # fails here, once, when a backend cannot load
    suffixes = {"csv": ".csv", "meta": ".meta.json", "manifest": ".json", "segments": ".segments.jsonl"}
    outputs = {key: str((out / f"{name}{suffix}").absolute()) for key, suffix in suffixes.items()}
    outputs["run_dir"] = str(run_root.absolute())
    meta = {
        "name": name,
        "input": str(Path(cfg.input).absolute()),
        "unitwave": __version__,
        **backend_meta(cfg.vad, backend),
    }
    stats = ReadStats()
    summary = run_stage(
        VadStage(cfg.vad, outputs, meta),
        lambda: iter_inputs(cfg.input, stats),
        run_root,
        cfg.engine,
        config=cfg,
        malformed_lines=lambda: stats.malformed,
        absolute_paths=True,
    )
    if summary.complete:
        others = ", ".join(Path(outputs[k]).name for k in ("manifest", "segments", "meta"))
        print(f"vad: {outputs['csv']} ({summary.output_records} files, {summary.failed} failed), {others}")
    return summary
