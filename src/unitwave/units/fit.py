"""``unitwave units fit MANIFEST OUT_DIR --encoder mms-300m --layer 14 --k 100``: k-means on encoder frames.

Utterances are drawn by a seeded hash of their id (``--sample-frac``: the same utterances whatever the
manifest order), encoded in length-sorted batches, and their frames kept by seeded reservoir sampling
down to ``--max-frames`` in one preallocated buffer (memory stays bounded however large the corpus). The fitted centroids go to
``kmeans.safetensors``; ``model_card.json`` records the encoder (enough to rebuild it), k, seed, frames
used, inertia, the input's hash and the code version. No pickle anywhere.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import hashlib
import json
import logging
import time
import typing as tp
from pathlib import Path

import numpy as np
import tyro

from unitwave.data.inputs import iter_inputs
from unitwave.data.manifest import ReadStats, Record, dumps
from unitwave.data.records import audio_seconds, unit_interval
from unitwave.units.kmeans import Backend
from unitwave.units.presets import EncoderOptions

log = logging.getLogger("unitwave")


@dc.dataclass(frozen=True)
class KMeansOptions:
    """How k-means is fitted (``units fit`` and the one-go ``units`` command)."""

    k: int = 100
    """Number of clusters (units)."""
    sample_frac: float = 1.0
    """Share of utterances to encode for fitting, drawn by a seeded hash of their id."""
    max_frames: int = 500_000
    """Most frames kept for fitting (seeded uniform reservoir sample of all encoded frames)."""
    seed: int = 0
    """Seed of utterance and frame sampling and of the k-means++ initialisation."""
    kmeans_backend: Backend = "auto"
    """k-means implementation: faiss / torch (k-means++ + Lloyd), sklearn (fairseq's MiniBatchKMeans)."""
    max_iter: int = 100
    """Most Lloyd iterations (faiss / torch backends)."""


@dc.dataclass(frozen=True)
class FitConfig:
    """Fit k-means on SSL or MFCC frames of a manifest; write kmeans.safetensors + model_card.json."""

    input: tyro.conf.Positional[Path]
    """A JSONL manifest or a folder of audio (searched recursively)."""
    output_dir: tyro.conf.Positional[Path]
    """The k-means folder to write."""
    encoder: tp.Annotated[EncoderOptions, tyro.conf.OmitArgPrefixes] = EncoderOptions()
    kmeans: tp.Annotated[KMeansOptions, tyro.conf.OmitArgPrefixes] = KMeansOptions()
    batch_seconds: float = 60.0
    """Audio seconds read per step (the encoder batches them on a GPU, runs them one by one on a CPU)."""


@dc.dataclass
class FrameSample:
    """Seeded uniform reservoir sample (Vitter's algorithm R) of at most ``capacity`` frames.

    Memory is one ``(capacity, D)`` float32 buffer, filled in place: offering frames never copies the
    sample. Frame ``i`` of the stream (0-based) replaces slot ``j ~ U{0..i}`` when ``j < capacity``.
    """

    capacity: int
    seed: int
    seen: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._buffer: np.ndarray | None = None

    @property
    def frames(self) -> np.ndarray | None:
        """The sample ``(min(seen, capacity), D)``, or None before any frame."""
        return None if self._buffer is None else self._buffer[: min(self.seen, self.capacity)]

    def add(self, feats: np.ndarray) -> None:
        """Offer frames ``(T, D)``."""
        n = feats.shape[0]
        if n == 0:
            return
        if self._buffer is None:
            self._buffer = np.empty((self.capacity, feats.shape[1]), dtype=np.float32)
        fill = max(0, min(n, self.capacity - self.seen))
        self._buffer[self.seen : self.seen + fill] = feats[:fill]
        if fill < n:
            index = np.arange(self.seen + fill, self.seen + n)
            slots = self._rng.integers(0, index + 1)  # one draw per frame, in stream order
            keep = slots < self.capacity
            self._buffer[slots[keep]] = feats[fill:][keep]  # a repeated slot keeps the later frame
        self.seen += n


def scan_inputs(cfg: FitConfig) -> tuple[str, int, list[Record], int]:
    """One pass over the input: ``(sha256 of the normalised records as run.json computes it, record count,
    the records drawn by --sample-frac, malformed lines)``; only the drawn records are kept in memory."""
    stats = ReadStats()
    digest = hashlib.sha256()
    total = 0
    chosen = []
    for rec in iter_inputs(cfg.input, stats):
        digest.update((dumps(rec) + "\n").encode("utf-8"))
        total += 1
        if cfg.kmeans.sample_frac >= 1.0 or unit_interval(rec["id"], f"kmeans-{cfg.kmeans.seed}") < cfg.kmeans.sample_frac:
            chosen.append(rec)
    return digest.hexdigest(), total, chosen, stats.malformed


def input_hash(records: tp.Iterable[Record]) -> str:
    """sha256 of normalised input records, as the engine's ``run.json`` computes it."""
    digest = hashlib.sha256()
    for rec in records:
        digest.update((dumps(rec) + "\n").encode("utf-8"))
    return digest.hexdigest()


def sample_frames(
    cfg: FitConfig, encoder: tp.Any, chosen: list[Record]
) -> tuple[np.ndarray, dict[str, tp.Any]]:
    """Encode the drawn utterances (length-sorted batches) and return ``(frames (N, D), statistics)``."""
    from unitwave.audio.io import AudioError, load_record
    from unitwave.engine.batching import plan_batches
    from unitwave.units.extractor import default_batch_seconds

    reservoir = FrameSample(cfg.kmeans.max_frames, cfg.kmeans.seed)
    stats = {
        "utterances_used": 0,
        "utterances_failed": 0,
        "audio_seconds": 0.0,
    }
    sr = encoder.spec.sample_rate
    t0 = time.time()
    for batch in plan_batches(chosen, lambda r: audio_seconds(r) or 1.0, cfg.batch_seconds, 64):
        waves = []
        for rec in batch:
            try:
                waves.append(load_record(rec, sr))
            except (AudioError, ValueError) as e:
                stats["utterances_failed"] += 1
                log.warning("units fit: skipping %s: %s", rec.get("id"), e)
        for feats in encoder.features(waves, default_batch_seconds(str(encoder.device))):
            reservoir.add(feats.cpu().numpy())
        stats["utterances_used"] += len(waves)
        stats["audio_seconds"] += sum(w.size for w in waves) / sr
        log.debug("units fit: %d utterances encoded (%.1f s)", stats["utterances_used"], time.time() - t0)
    if reservoir.frames is None:
        raise ValueError("no frames: every sampled utterance failed to load or was shorter than one frame")
    stats["frames_seen"] = reservoir.seen
    stats["audio_seconds"] = round(stats["audio_seconds"], 3)
    return reservoir.frames, stats


def fit(cfg: FitConfig) -> dict[str, tp.Any]:
    """Sample frames, fit, and write the k-means folder; returns the model card."""
    from unitwave import __version__
    from unitwave.config import save_config, to_dict
    from unitwave.units.encoders import build_encoder, resolve_device
    from unitwave.units.extractor import CARD_FILE
    from unitwave.units.kmeans import KMeansModel, fit_kmeans
    from unitwave.units.presets import resolve_spec

    if cfg.kmeans.k < 2:
        raise ValueError(f"--k must be at least 2, got {cfg.kmeans.k}")
    if not 0 < cfg.kmeans.sample_frac <= 1:
        raise ValueError(f"--sample-frac must be in (0, 1], got {cfg.kmeans.sample_frac}")
    digest, total, chosen, malformed = scan_inputs(cfg)
    if not total:
        raise ValueError(f"{cfg.input}: no records to fit on")
    if not chosen:
        raise ValueError(f"--sample-frac {cfg.kmeans.sample_frac} drew none of the {total} utterances")
    device = resolve_device(cfg.encoder.device)
    encoder = build_encoder(resolve_spec(cfg.encoder), device, cfg.encoder.precision)
    frames, stats = sample_frames(cfg, encoder, chosen)
    log.info(
        "units fit: %d frames of %d utterances; fitting k=%d",
        frames.shape[0],
        stats["utterances_used"],
        cfg.kmeans.k,
    )
    result = fit_kmeans(frames, cfg.kmeans.k, cfg.kmeans.seed, cfg.kmeans.kmeans_backend, cfg.kmeans.max_iter, device=device)
    out = Path(cfg.output_dir)
    KMeansModel(result.centroids).save(out)
    spec = encoder.spec
    card = {
        "kind": "kmeans",
        "k": cfg.kmeans.k,
        "dim": int(result.centroids.shape[1]),
        "encoder": spec.to_dict(),
        "layer": spec.layer or None,
        "sample_rate": spec.sample_rate,
        "frame_hop_s": spec.frame_hop_s,
        "frame_offset_s": spec.frame_offset_s,
        "seed": cfg.kmeans.seed,
        "backend": result.backend,
        "iterations": result.iterations,
        "fit_seconds": result.seconds,
        "frames_used": int(frames.shape[0]),
        "utterances_total": total,
        **stats,
        "sample_frac": cfg.kmeans.sample_frac,
        "max_frames": cfg.kmeans.max_frames,
        "inertia": result.inertia,
        "inertia_per_frame": result.inertia_per_frame,
        "input": str(Path(cfg.input).absolute()),
        "input_manifest_hash": digest,
        "input_malformed_lines": malformed,
        "code_version": __version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "files": {"centroids": "kmeans.safetensors"},
        "config": to_dict(cfg),
    }
    tmp = out / f".{CARD_FILE}.tmp"
    tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out / CARD_FILE)
    save_config(cfg, out)
    print(
        f"units fit: k={cfg.kmeans.k} on {frames.shape[0]} frames of {stats['utterances_used']} utterances "
        f"({spec.label}{f' layer {spec.layer}' if spec.layer else ''}), inertia/frame "
        f"{result.inertia_per_frame:.4g}, {result.backend} {result.iterations} it in {result.seconds:.1f} s "
        f"-> {out}",
        flush=True,
    )
    return card


def run(cfg: FitConfig) -> dict[str, tp.Any]:
    return fit(cfg)
