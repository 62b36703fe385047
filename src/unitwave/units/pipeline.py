"""``unitwave units MANIFEST OUT_DIR``: fit k-means and encode the corpus in one go (the common case).

Writes ``OUT_DIR/<name>/`` (``--name`` namespaces a language): the k-means folder ``kmeans/`` and the
encode run folder itself (``manifest.jsonl``, ``<name>_corpus_timestamped.jsonl``, ``<name>_units.txt``,
and ``quality.json`` given ``--alignments``). Rerunning resumes: a finished k-means with the same
settings and input is reused, encoding resumes per record; other settings are refused rather than
silently mixed with the old ones.
"""

from __future__ import annotations

import dataclasses as dc
import json
import typing as tp
from pathlib import Path

import tyro

from unitwave.engine.options import EngineConfig
from unitwave.units.fit import KMeansOptions
from unitwave.units.presets import EncoderOptions


@dc.dataclass(frozen=True)
class UnitsConfig:
    """Fit k-means on a corpus and encode it into timestamped units (plus quality, given alignments)."""

    input: tyro.conf.Positional[Path]
    """A JSONL manifest or a folder of audio (searched recursively)."""
    output_dir: tyro.conf.Positional[Path]
    """Outputs go to OUTPUT_DIR/<name>/ (k-means in kmeans/)."""
    encoder: tp.Annotated[EncoderOptions, tyro.conf.OmitArgPrefixes] = EncoderOptions()
    name: str = "all"
    """Namespace of this corpus (e.g. a language): folder and file prefix."""
    kmeans: tp.Annotated[KMeansOptions, tyro.conf.OmitArgPrefixes] = KMeansOptions()
    alignments: tp.Optional[Path] = None
    """Phone alignments (alignments.jsonl, CTM-like JSONL, .ctm, TextGrids): write quality.json."""
    batch_seconds: tp.Optional[float] = None
    """Padded audio seconds per batch (default: from free GPU memory; on CPU one utterance at a time)."""
    engine: tp.Annotated[EngineConfig, tyro.conf.OmitArgPrefixes] = EngineConfig()


def fit_config(cfg: UnitsConfig) -> tp.Any:
    from unitwave.units.fit import FitConfig

    return FitConfig(
        input=cfg.input,
        output_dir=Path(cfg.output_dir) / cfg.name / "kmeans",
        encoder=cfg.encoder,
        kmeans=cfg.kmeans,
        batch_seconds=cfg.batch_seconds or 60.0,
    )


def _same_fit(card: dict[str, tp.Any], wanted: tp.Any) -> list[str]:
    """Settings of a finished k-means that differ from ``wanted`` (a FitConfig); where the outputs go, the
    batch size and the device do not count."""
    from unitwave.config import diff_settings, to_dict

    ignore = ("input", "output_dir", "batch_seconds", "encoder.device", "encoder.precision")
    return diff_settings(dict(card.get("config") or {}), to_dict(wanted), ignore)


def ensure_kmeans(cfg: UnitsConfig) -> Path:
    """Fit unless ``kmeans/`` already holds a fit with the same settings and input; returns its folder."""
    from unitwave.data.inputs import iter_inputs
    from unitwave.units.extractor import CARD_FILE
    from unitwave.units.fit import fit, input_hash

    fcfg = fit_config(cfg)
    folder = Path(fcfg.output_dir)
    card_path = folder / CARD_FILE
    if card_path.is_file():
        card = json.loads(card_path.read_text(encoding="utf-8"))
        diffs = _same_fit(card, fcfg)
        if not diffs and card.get("input_manifest_hash") == input_hash(iter_inputs(cfg.input)):
            print(f"units: reusing the k-means in {folder} (same settings and input)", flush=True)
            return folder
        why = "; ".join(diffs) or "the input changed"
        raise ValueError(
            f"{folder} holds a k-means fitted with other settings ({why}); use another "
            f"OUTPUT_DIR or --name, or delete {folder} to refit"
        )
    if cfg.engine.shard is not None:
        raise ValueError(
            f"--shard {cfg.engine.shard}: {card_path} does not exist yet; run the fit first "
            f"(the same command without --shard)"
        )
    fit(fcfg)
    return folder


def run(cfg: UnitsConfig) -> tp.Any:
    from unitwave.units.encode import EncodeConfig, encode_corpus

    km_dir = ensure_kmeans(cfg)
    ecfg = EncodeConfig(
        input=cfg.input,
        output_dir=Path(cfg.output_dir) / cfg.name,
        kmeans=km_dir,
        name=cfg.name,
        alignments=cfg.alignments,
        model_path=None,
        device=cfg.encoder.device,
        precision=cfg.encoder.precision,
        batch_seconds=cfg.batch_seconds,
        engine=cfg.engine,
    )
    return encode_corpus(ecfg, config=cfg)
