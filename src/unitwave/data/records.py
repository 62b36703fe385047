"""Record ids and stable hashes.

Every record has an ``id``: the one given, or one derived stably from the path as written in the
manifest and the offset, so the same line gives the same id on every machine and every run.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath

from unitwave.data.manifest import AUDIO_FIELD, Record


def stable_hash(text: str, digest_bytes: int = 8) -> int:
    """A hash of ``text`` that is the same in every process (unlike ``hash()``), as an unsigned int."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=digest_bytes).digest(), "big")


def unit_interval(text: str, salt: str = "") -> float:
    """``text`` mapped to [0, 1) by :func:`stable_hash`: uniform, deterministic, independent per salt."""
    return stable_hash(salt + "\x00" + text) / 2.0**64


def shard_of(record_id: str, num_shards: int) -> int:
    """The shard a record belongs to: ``hash(id) % N``."""
    return stable_hash(record_id) % num_shards


def derive_id(audio_filepath: str, offset: float | None = None) -> str:
    """``<stem>_<8 hex>`` from the path as written and the offset (seconds): readable and unique."""
    key = f"{audio_filepath}|{float(offset or 0.0):.6f}"
    stem = PurePath(audio_filepath).stem or "record"
    return f"{stem}_{stable_hash(key, 4):08x}"


def ensure_id(record: Record) -> Record:
    """Return ``record`` with an ``id`` (given ids are kept as strings; others derived)."""
    if "id" in record and record["id"] not in (None, ""):
        if not isinstance(record["id"], str):
            record = {**record, "id": str(record["id"])}
        return record
    path = record.get(AUDIO_FIELD)
    if not isinstance(path, str) or not path:
        raise ValueError(f"record has neither 'id' nor '{AUDIO_FIELD}'")
    return {"id": derive_id(path, record.get("offset")), **record}


def audio_slice(record: Record) -> tuple[float, float | None]:
    """``(offset, duration)`` in seconds of the audio a record stands for.

    A record with an ``offset`` (0.0 included: a segment at the start of its file, as NeMo writes it)
    is the slice ``[offset, offset + duration)``; without one it is the whole file, ``(0.0, None)``: a
    whole file's ``duration`` is a rounded figure, never a length to read.
    """
    offset = record.get("offset")
    if offset is None:
        return 0.0, None
    return float(offset), record.get("duration")


def audio_seconds(record: Record) -> float:
    """The record's ``duration`` in seconds, 0.0 when absent or not a number."""
    d = record.get("duration")
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else 0.0
