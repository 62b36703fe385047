"""Deterministic train/val/test splits by a hash of ``id``.

A record's split depends only on its id, the ratios and the salt, never on order or on the other
records: adding records to a corpus never moves existing ones between splits.
"""

from __future__ import annotations

import logging
import typing as tp
from pathlib import Path

from unitwave.data.manifest import ManifestWriter, ReadStats
from unitwave.data.records import unit_interval

log = logging.getLogger("unitwave")


def normalise_ratios(ratios: tp.Mapping[str, float]) -> dict[str, float]:
    if not ratios:
        raise ValueError("at least one split is needed")
    if any(r < 0 for r in ratios.values()):
        raise ValueError(f"split ratios must be >= 0, got {dict(ratios)}")
    total = sum(ratios.values())
    if total <= 0:
        raise ValueError(f"split ratios must sum to more than 0, got {dict(ratios)}")
    return {k: v / total for k, v in ratios.items()}


def split_of(record_id: str, ratios: tp.Mapping[str, float], salt: str = "") -> str:
    """The split (a key of ``ratios``) that ``record_id`` falls in."""
    u = unit_interval(record_id, salt)
    acc = 0.0
    norm = normalise_ratios(ratios)
    names = list(norm)
    for name in names:
        acc += norm[name]
        if u < acc:
            return name
    return names[-1]


def split_manifest(
    manifest: Path,
    out_dir: Path,
    ratios: tp.Mapping[str, float],
    salt: str = "",
    absolute_paths: bool = False,
    group_by: str | None = None,
) -> dict[str, int]:
    """Stream ``manifest`` into ``out_dir/<split>.jsonl`` files; returns the count per split (and
    ``malformed_lines``, ``ungrouped``: records without the ``group_by`` field, ``segmented``: records with
    a ``source_id``).

    ``group_by``: the field whose value (instead of the id) picks the split, so records sharing it stay
    together; records without it go by their id."""
    from unitwave.data.inputs import iter_manifest_inputs

    norm = normalise_ratios(ratios)
    for name in norm:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"split names must be plain file names, got {name!r}")
    stats = ReadStats()
    records = iter_manifest_inputs(Path(manifest), stats)  # a bad input path fails before any file is made
    writers = {
        name: ManifestWriter(Path(out_dir) / f"{name}.jsonl", absolute_paths=absolute_paths) for name in norm
    }
    ungrouped = segmented = 0
    try:
        for rec in records:  # ids ensured, paths resolved against the manifest's folder
            key = str(rec["id"])
            if group_by is not None:
                value = rec.get(group_by)
                if value is None or value == "":
                    ungrouped += 1
                else:
                    key = f"{group_by}={value}"
            segmented += rec.get("source_id") is not None
            writers[split_of(key, norm, salt)].write(rec)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.close()
    if ungrouped:
        log.warning("%s: %d records have no %r field; they were split by their id", manifest, ungrouped, group_by)
    counts = {name: w.count for name, w in writers.items()} | {"malformed_lines": stats.malformed}
    return counts | ({"ungrouped": ungrouped} if group_by else {}) | {"segmented": segmented}


