"""``unitwave eval resynth ORIG_MANIFEST SYNTH_DIR OUT_DIR``: how close resynthesized speech is to its source.

Matching a synthesized file to each original record, first match wins:

1. ``SYNTH_DIR/manifest.jsonl`` exists (a ``unitwave resynth`` run folder): the record with the same ``id``;
2. the original's path relative to the manifest's audio root (as ``resynth`` picks it), under ``SYNTH_DIR``
   or ``SYNTH_DIR/audio``, with any audio extension and, for a slice (``offset``), the offset suffix
   ``_<ms:08d>`` (what ``resynth`` writes: it keeps the input's relative folders);
3. ``<id>.<ext>`` under ``SYNTH_DIR`` or ``SYNTH_DIR/audio``.

An original without a match is an error record (``errors.jsonl``). Metrics run per record on the engine
(sharded, resumable); the summary, ``test_results.json``, ``test_results.csv`` and ``report.html`` are
written when every shard is done. Each pair is also copied as ``audio/orig_XXXX.wav`` and
``audio/synth_XXXX.wav`` (at the evaluation rate; XXXX = the record's position in ORIG_MANIFEST).
"""

from __future__ import annotations

import csv
import dataclasses as dc
import json
import math
import typing as tp
from pathlib import Path

import tyro

from unitwave.data.atomic import atomic_path
from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record
from unitwave.data.paths import AUDIO_EXTENSIONS, UnsafePathError, files_signature, output_relpath
from unitwave.engine.options import EngineConfig
from unitwave.engine.stage import Stage
from unitwave.eval.metrics import MetricsConfig

if tp.TYPE_CHECKING:
    from unitwave.engine.run_dir import RunDir

#: settings that shape only report.html, not the per-file results: they may change when a folder resumes
REPORT_ONLY = ("training_log", "report_files", "embed_audio", "title")
CSV_COLUMNS = (
    "index",
    "id",
    "snr_db",
    "mcd_db",
    "f0_rmse_hz",
    "f0_rmse_cents",
    "vde",
    "gpe",
    "ffe",
    "length_ratio",
    "lag_ms",
    "orig_seconds",
    "synth_seconds",
    "voiced_frames_both",
    "mcd_frames",
    "audio_filepath",
    "synth_filepath",
)


@dc.dataclass(frozen=True)
class EvalResynthConfig:
    """Compare resynthesized audio with the originals: SNR, MCD (DTW), F0 errors, length; report.html."""

    orig_manifest: tyro.conf.Positional[Path]
    """Manifest of the original audio (what was resynthesized)."""
    synth_dir: tyro.conf.Positional[Path]
    """A resynth run folder, or any folder of synthesized audio (matched by relative path or id)."""
    output_dir: tyro.conf.Positional[Path]
    """Run folder: test_results.json/.csv, report.html, audio/{orig,synth}_XXXX.wav, manifest.jsonl."""
    training_log: Path | None = None
    """A training log JSON whose curves go into the report."""
    report_files: int = 50
    """Files shown with players, spectrograms and F0 in report.html (all are in the CSV)."""
    embed_audio: bool = False
    """Embed the WAVs in report.html (one file, large) instead of linking audio/ next to it."""
    title: str = "Resynthesis evaluation"
    """Heading of report.html."""
    metrics: tp.Annotated[MetricsConfig, tyro.conf.OmitArgPrefixes] = MetricsConfig()
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


def _synth_index(synth_dir: Path) -> dict[str, str]:
    """``{id: absolute audio path}`` from a resynth run folder's manifest, empty when there is none."""
    from unitwave.data.manifest import iter_jsonl, resolve_audio

    manifest = synth_dir / "manifest.jsonl"
    if not manifest.is_file():
        return {}
    base = manifest.absolute().parent
    return {
        str(r["id"]): str(resolve_audio(r[AUDIO_FIELD], base))
        for r in iter_jsonl(manifest)
        if "id" in r and isinstance(r.get(AUDIO_FIELD), str)
    }


def find_synth(
    record: Record, synth_dir: Path, root: Path, by_id: dict[str, str]
) -> tuple[str | None, list[str]]:
    """The synthesized file of ``record`` (see the module doc) and the places looked at."""
    looked: list[str] = []
    rid = str(record["id"])
    if rid in by_id:
        if Path(by_id[rid]).is_file():
            return by_id[rid], looked
        looked.append(by_id[rid])
    stems: list[str] = []
    try:
        # the name resynth gives it: slices of one file differ by their offset suffix
        stems.append(output_relpath(record, root, from_folder=False).with_suffix("").as_posix())
    except (UnsafePathError, KeyError, TypeError):
        pass
    stems.append(rid)
    for stem in stems:
        for folder in (synth_dir, synth_dir / "audio"):
            for ext in AUDIO_EXTENSIONS:
                candidate = folder / f"{stem}{ext}"
                if candidate.is_file():
                    return str(candidate), looked
            looked.append(str(folder / f"{stem}.*"))
    return None, looked


def pair_name(index: int) -> str:
    return f"{index:04d}"


def _finite(value: tp.Any) -> tp.Any:
    """JSON has no infinities: non-finite floats (SNR of identical signals) become None."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


class EvalStage(Stage):
    """Per record: load both signals at the evaluation rate, compute every metric, keep the pair and F0."""

    name = "eval-resynth"
    output_fields = ("orig_copy", "synth_copy")

    def __init__(self, cfg: EvalResynthConfig) -> None:
        self.cfg = cfg
        self.out = Path(cfg.output_dir).absolute()

    def record_key(self, record: Record) -> str:
        """The synthesized file's signature: a file resynthesized again in place is evaluated again."""
        path = record.get("synth_filepath")
        return files_signature([path]) if isinstance(path, str) and Path(path).is_file() else ""

    def process(self, batch: list[Record]) -> list[list[Record]]:
        return [[self.evaluate(r)] for r in batch]

    def evaluate(self, record: Record) -> Record:
        import numpy as np

        from unitwave.audio.io import load_audio, load_record, write_wav
        from unitwave.eval.metrics import evaluate_pair

        synth_path = record.get("synth_filepath")
        if not synth_path:
            looked = ", ".join(record.get("synth_looked", [])[:4])
            raise FileNotFoundError(f"no synthesized file for id {record['id']!r} (looked for {looked})")
        sr = self.cfg.metrics.sample_rate
        orig = load_record(record, sr)
        synth, _ = load_audio(synth_path, sr)
        metrics, tracks = evaluate_pair(orig, synth, self.cfg.metrics)
        name = pair_name(int(record["eval_index"]))
        write_wav(self.out / "audio" / f"orig_{name}.wav", orig, sr)
        write_wav(self.out / "audio" / f"synth_{name}.wav", synth, sr)
        (self.out / "tracks").mkdir(parents=True, exist_ok=True)
        with atomic_path(self.out / "tracks" / f"{name}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                f0_orig=tracks["f0_orig"],
                f0_synth=tracks["f0_synth"],
                frame_period_ms=np.float64(self.cfg.metrics.frame_period_ms),
            )
        out = {k: v for k, v in record.items() if k not in ("synth_looked", "eval_index")}
        out.update(
            {
                "index": int(record["eval_index"]),
                "synth_filepath": synth_path,
                "orig_copy": f"audio/orig_{name}.wav",
                "synth_copy": f"audio/synth_{name}.wav",
            }
        )
        out.update({k: _finite(v) for k, v in metrics.items()})
        if metrics.get("snr_db") == math.inf:  # identical signals: JSON has no infinity, so say it
            out["snr_infinite"] = True
        return out

    def finalize(self, run: RunDir) -> None:
        finalize_outputs(self.cfg, run)


def finalize_outputs(cfg: EvalResynthConfig, run: RunDir) -> dict[str, tp.Any]:
    """Summary + ``test_results.json`` + ``test_results.csv`` + ``report.html`` from the merged manifest."""
    from unitwave.config import to_dict
    from unitwave.data.atomic import atomic_write_text
    from unitwave.data.manifest import iter_jsonl
    from unitwave.eval.metrics import convention, summarise

    rows = (
        sorted(iter_jsonl(run.manifest), key=lambda r: int(r.get("index", 0)))
        if run.manifest.is_file()
        else []
    )
    failed = sum(1 for _ in iter_jsonl(run.errors)) if run.errors.is_file() else 0
    summary = summarise(rows)
    conv = convention(cfg.metrics)
    results = {
        "summary": summary,
        "counts": {"evaluated": len(rows), "failed": failed},
        "convention": conv,
        "config": to_dict(cfg),
        "files": rows,
    }
    out = Path(cfg.output_dir)
    atomic_write_text(out / "test_results.json", json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    _write_csv(out / "test_results.csv", rows)
    from unitwave.eval.report import render_report, training_curves, write_report

    curves = training_curves(cfg.training_log) if cfg.training_log is not None else None
    report_rows = [_report_row(cfg, r) for r in rows[: max(0, cfg.report_files)]]
    page = render_report(cfg.title, summary, conv, report_rows, results["counts"], curves)
    write_report(out / "report.html", page)
    print(f"report: {out / 'report.html'}", flush=True)
    return results


def _write_csv(path: Path, rows: list[Record]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_COLUMNS})


def _report_row(cfg: EvalResynthConfig, record: Record) -> tp.Any:
    import numpy as np

    from unitwave.audio.io import load_audio
    from unitwave.eval.plots import data_uri, f0_overlay_svg, log_spectrogram, spectrogram_png
    from unitwave.eval.report import ReportRow

    out = Path(cfg.output_dir)
    name = pair_name(int(record["index"]))
    orig_path, synth_path = out / record["orig_copy"], out / record["synth_copy"]
    orig, _ = load_audio(orig_path, None)
    synth, _ = load_audio(synth_path, None)
    top = float(log_spectrogram(orig).max())
    tracks = np.load(out / "tracks" / f"{name}.npz")
    if cfg.embed_audio:
        orig_src, synth_src = (
            data_uri(orig_path.read_bytes(), "audio/wav"),
            data_uri(synth_path.read_bytes(), "audio/wav"),
        )
    else:
        orig_src, synth_src = record["orig_copy"], record["synth_copy"]
    return ReportRow(
        index=int(record["index"]),
        id=str(record["id"]),
        metrics=record,
        orig_audio=orig_src,
        synth_audio=synth_src,
        orig_png=data_uri(spectrogram_png(orig, width=320, top_db=top)),
        synth_png=data_uri(spectrogram_png(synth, width=320, top_db=top)),
        f0_svg=f0_overlay_svg(
            tracks["f0_orig"], tracks["f0_synth"], float(tracks["frame_period_ms"]), width=360
        ),
    )


def eval_inputs(cfg: EvalResynthConfig, stats: ReadStats) -> tp.Iterator[Record]:
    """Original records with ``eval_index`` and the matched ``synth_filepath`` (or where it was sought)."""
    from unitwave.data.inputs import input_root, iter_manifest_inputs

    synth_dir = Path(cfg.synth_dir).absolute()
    by_id = _synth_index(synth_dir)
    root = input_root(cfg.orig_manifest)
    for index, record in enumerate(iter_manifest_inputs(cfg.orig_manifest, stats)):
        found, looked = find_synth(record, synth_dir, root, by_id)
        record = {**record, "eval_index": index}
        if found is not None:
            record["synth_filepath"] = found
        else:
            record["synth_looked"] = looked
        yield record


def run(cfg: EvalResynthConfig) -> tp.Any:
    from unitwave.engine.runner import run_stage

    if Path(cfg.orig_manifest).is_dir():
        raise ValueError(f"{cfg.orig_manifest} is a folder; eval resynth compares records of a manifest (their "
                         "offsets and ids): give the manifest of the originals, e.g. the input.jsonl of the resynth run")
    if not Path(cfg.orig_manifest).is_file():
        raise FileNotFoundError(f"original manifest not found: {cfg.orig_manifest}")
    if not Path(cfg.synth_dir).is_dir():
        raise NotADirectoryError(f"synthesized audio folder not found: {cfg.synth_dir}")
    if cfg.training_log is not None:
        if not Path(cfg.training_log).is_file():
            raise FileNotFoundError(f"training log not found: {cfg.training_log}")
        from unitwave.eval.report import training_curves

        training_curves(cfg.training_log)  # an unreadable log fails now, not after every file was evaluated
    stats = ReadStats()
    return run_stage(
        EvalStage(cfg),
        lambda: eval_inputs(cfg, stats),
        cfg.output_dir,
        cfg.engine,
        config=cfg,
        malformed_lines=lambda: stats.malformed,
        resume_ignores=REPORT_ONLY,
    )
