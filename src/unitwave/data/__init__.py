"""Manifests: streaming JSONL records, ids, safe paths and splits."""

from unitwave.data.manifest import (
    AUDIO_FIELD,
    ManifestWriter,
    ReadStats,
    Record,
    format_audio_path,
    iter_jsonl,
    read_manifest,
    resolve_audio,
    write_manifest,
)
from unitwave.data.records import audio_seconds, derive_id, ensure_id, shard_of, stable_hash

__all__ = [
    "AUDIO_FIELD",
    "ManifestWriter",
    "ReadStats",
    "Record",
    "audio_seconds",
    "derive_id",
    "ensure_id",
    "format_audio_path",
    "iter_jsonl",
    "read_manifest",
    "resolve_audio",
    "shard_of",
    "stable_hash",
    "write_manifest",
]
