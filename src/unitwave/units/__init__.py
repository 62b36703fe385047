"""Discrete units: speech SSL (or MFCC / log-mel) frames, k-means, timestamped unit corpora, quality.

Library entry point: :class:`~unitwave.units.extractor.UnitExtractor` (``from_dir(km_dir)`` then
``encode(waveforms)``). Commands: ``unitwave units`` (fit + encode), ``units fit``, ``units encode``,
``units quality``, ``units import-kmeans``. Heavy libraries (torch, transformers, faiss, scikit-learn)
are imported only by the functions that use them.
"""

from __future__ import annotations

import typing as tp

if tp.TYPE_CHECKING:
    from unitwave.units.extractor import UnitExtractor
    from unitwave.units.presets import PRESETS, EncoderSpec

__all__ = ["PRESETS", "EncoderSpec", "UnitExtractor"]


def __getattr__(name: str) -> tp.Any:
    if name == "UnitExtractor":
        from unitwave.units.extractor import UnitExtractor

        return UnitExtractor
    if name in ("PRESETS", "EncoderSpec"):
        from unitwave.units import presets

        return getattr(presets, name)
    raise AttributeError(f"module 'unitwave.units' has no attribute {name!r}")
