"""``unitwave split``: deterministic train/val/test manifests by a hash of ``id``."""

from __future__ import annotations

import dataclasses as dc
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
    absolute_paths: bool = False
    """Write absolute audio paths."""


def run(cfg: SplitConfig) -> dict[str, int]:
    if len(cfg.names) != len(cfg.ratios):
        raise ValueError(f"--names has {len(cfg.names)} entries but --ratios has {len(cfg.ratios)}")
    counts = split_manifest(cfg.manifest, cfg.output_dir, dict(zip(cfg.names, cfg.ratios)), cfg.salt, cfg.absolute_paths)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()) + f" -> {cfg.output_dir}")
    return counts
