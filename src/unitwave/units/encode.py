"""``unitwave units encode MANIFEST OUT_DIR --kmeans KM_DIR``: a corpus into timestamped unit sequences.

Runs on the engine (shards, resume, OOM back-off, per-record errors, progress): each worker rebuilds
the :class:`~unitwave.units.extractor.UnitExtractor` of the k-means folder once, then encodes
length-sorted batches. Each output record is the input record plus ``units`` (one id per frame) and
the frame geometry; when every shard is done, the merged manifest is streamed into
``<name>_corpus_timestamped.jsonl`` and ``<name>_units.txt``, and, given ``--alignments``, the unit
quality report ``quality.json``.
"""

from __future__ import annotations

import dataclasses as dc
import logging
import typing as tp
from pathlib import Path

import tyro

from unitwave.data.inputs import iter_inputs
from unitwave.data.manifest import ReadStats, Record
from unitwave.engine.options import EngineConfig
from unitwave.engine.stage import Stage

if tp.TYPE_CHECKING:
    from unitwave.engine.run_dir import RunDir

log = logging.getLogger("unitwave")


@dc.dataclass(frozen=True)
class EncodeConfig:
    """Encode a manifest (or a folder of audio) into timestamped units with a fitted k-means folder."""

    input: tyro.conf.Positional[Path]
    """A JSONL manifest or a folder of audio (searched recursively)."""
    output_dir: tyro.conf.Positional[Path]
    """Run folder: manifest.jsonl, <name>_corpus_timestamped.jsonl, <name>_units.txt, errors.jsonl..."""
    kmeans: Path
    """k-means folder from `unitwave units fit` (kmeans.safetensors + model_card.json)."""
    name: str = "all"
    """Prefix of the corpus files (e.g. a language: pt -> pt_units.txt)."""
    alignments: tp.Optional[Path] = None
    """Phone alignments (alignments.jsonl, CTM-like JSONL, .ctm, TextGrids): write quality.json."""
    model_path: tp.Optional[Path] = None
    """Where the encoder's weights are on this machine, if not where the k-means card says."""
    device: str = "auto"
    """cpu, cuda, cuda:1, ... (auto: cuda when available)."""
    precision: tp.Literal["fp32", "fp16", "bf16"] = "fp32"
    """SSL model precision on a GPU."""
    batch_seconds: tp.Optional[float] = None
    """Padded audio seconds per batch (default: from free GPU memory; on CPU one utterance at a time)."""
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


class EncodeStage(Stage):
    """Audio records -> the same records with ``units`` and frame geometry."""

    name = "units-encode"

    def __init__(
        self,
        km_dir: Path,
        device: str,
        precision: str,
        model_path: Path | None,
        batch_seconds: float | None,
        corpus_name: str,
        alignments: Path | None = None,
    ) -> None:
        from unitwave.units.extractor import kmeans_id

        self.km_dir = Path(km_dir).absolute()
        self.kmeans_id = kmeans_id(self.km_dir)
        self.device = device
        self.precision = precision
        self.model_path = model_path
        self.batch_seconds = batch_seconds
        self.corpus_name = corpus_name
        self.alignments = alignments
        self.extractor: tp.Any = None

    def setup(self) -> None:
        from unitwave.units.extractor import UnitExtractor

        self.extractor = UnitExtractor.from_dir(
            self.km_dir,
            self.device,
            self.model_path,
            self.precision,
            max_batch_seconds=self.batch_seconds or 0.0,
        )

    def process(self, batch: list[Record]) -> list[list[Record]]:
        from unitwave.audio.io import load_record

        ex = self.extractor
        waves = []
        for record in batch:  # all audio first: a bad file fails the batch before any encoding
            wave = load_record(record, ex.sample_rate)
            if ex.num_frames(wave.size) == 0:
                field_ms = 1000 * ex.spec.receptive_field / ex.sample_rate
                raise ValueError(
                    f"{wave.size / ex.sample_rate * 1000:.1f} ms of audio is shorter than one "
                    f"frame of the encoder ({field_ms:.0f} ms)"
                )
            waves.append(wave)
        units = ex.encode(waves)
        spec = ex.spec
        out = []
        for record, wave, ids in zip(batch, waves, units):
            out.append(
                [
                    {
                        **record,
                        "duration": round(wave.size / ex.sample_rate, 6),
                        "encoder": spec.label,
                        "layer": spec.layer or None,
                        "k": ex.k,
                        "kmeans_id": self.kmeans_id,
                        "frame_hop_s": spec.frame_hop_s,
                        "frame_offset_s": spec.frame_offset_s,
                        "units": [int(u) for u in ids],
                    }
                ]
            )
        return out

    def finalize(self, run: RunDir) -> None:
        from unitwave.units.corpus import write_corpus

        corpus, units_txt, count = write_corpus(run.manifest, run.root, self.corpus_name)
        print(f"units: {count} utterances -> {corpus.name}, {units_txt.name} in {run.root}", flush=True)
        if self.alignments is not None:
            from unitwave.units.quality import report_quality

            report_quality(corpus, self.alignments, run.root / "quality.json")


def stage_batch_seconds(requested: float | None, device: str) -> float | None:
    """The engine's batch cap: as requested, else from free GPU memory; None (one record per call) on CPU."""
    from unitwave.units.extractor import default_batch_seconds

    if requested is not None:
        return requested
    return default_batch_seconds(device) or None


def encode_corpus(cfg: EncodeConfig, config: tp.Any = None) -> tp.Any:
    """Run the encode stage of ``cfg``; ``config`` is what ``config.yaml`` records (default: ``cfg``)."""
    from unitwave.engine.runner import run_stage
    from unitwave.units.encoders import resolve_device
    from unitwave.units.extractor import read_model_card
    from unitwave.units.presets import SSL_KINDS

    card = read_model_card(cfg.kmeans)  # fail early, naming the folder
    if cfg.alignments is not None and not Path(cfg.alignments).exists():
        raise FileNotFoundError(f"alignments not found: {cfg.alignments}")
    device = resolve_device(cfg.device)
    stage = EncodeStage(
        cfg.kmeans,
        device,
        cfg.precision,
        cfg.model_path,
        stage_batch_seconds(cfg.batch_seconds, device),
        cfg.name,
        cfg.alignments,
    )
    stats = ReadStats()
    model = dict(card["encoder"]).get("kind") in SSL_KINDS
    if not model:  # a feature encoder costs nothing to build: a folder that cannot work fails here, once
        from unitwave.units.extractor import UnitExtractor

        UnitExtractor.from_dir(cfg.kmeans, device="cpu", model_path=cfg.model_path)
    return run_stage(
        stage,
        lambda: iter_inputs(cfg.input, stats),
        cfg.output_dir,
        cfg.engine.for_model(device) if model else cfg.engine,
        config=config if config is not None else cfg,
        malformed_lines=lambda: stats.malformed,
    )


def run(cfg: EncodeConfig) -> tp.Any:
    return encode_corpus(cfg)
