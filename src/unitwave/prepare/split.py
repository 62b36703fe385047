"""``unitwave split``: deterministic train/val/test manifests by a hash of ``id``."""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import tyro

from unitwave.data.split import split_manifest


@dc.dataclass(frozen=True)
class SplitConfig:
    """Split a manifest by a hash of each record's id (stable: adding records never moves others)."""

    manifest: tyro.conf.Positional[Path]
    """Input JSONL manifest."""
    output_dir: tyro.conf.Positional[Path]
    """Writes <name>.jsonl per split."""
    names: tuple[str, ...] = ("train", "val", "test")
    """Split names."""
    ratios: tuple[float, ...] = (0.9, 0.05, 0.05)
    """Relative sizes, one per name."""
    salt: str = ""
    """Change to draw a different (still deterministic) split."""
    group_by: tp.Optional[str] = None
    """Split by this field instead of the id, so records sharing its value stay together: source_id
    (segments of one recording), speaker (speaker-disjoint splits). Records without it go by their id."""
    absolute_paths: bool = False
    """Write absolute audio paths (default: relative to the output folder for audio inside it, else
    absolute)."""


def run(cfg: SplitConfig) -> dict[str, int]:
    if len(cfg.names) != len(cfg.ratios):
        raise ValueError(f"--names has {len(cfg.names)} entries but --ratios has {len(cfg.ratios)}")
    if len(set(cfg.names)) != len(cfg.names):
        raise ValueError(f"--names must be distinct, got {' '.join(cfg.names)}")
    targets = {(Path(cfg.output_dir) / f"{name}.jsonl").resolve() for name in cfg.names}
    if Path(cfg.manifest).resolve() in targets:
        raise ValueError(f"{cfg.manifest} would be overwritten by its own split: choose another output folder")
    counts = split_manifest(cfg.manifest, cfg.output_dir, dict(zip(cfg.names, cfg.ratios)), cfg.salt,
                            cfg.absolute_paths, cfg.group_by)
    print(", ".join(f"{k}: {v}" for k, v in counts.items() if k != "segmented") + f" -> {cfg.output_dir}")
    if counts.get("segmented") and cfg.group_by is None:
        print(f"note: {counts['segmented']} records are segments of longer recordings (source_id): segments of "
              "one recording may land in different splits; --group-by source_id keeps them together")
    return counts
