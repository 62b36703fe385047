"""Stage inputs: a folder of audio (recursive) or a manifest, as normalised records.

Normalised = every record has a string ``id`` and an absolute ``audio_filepath``; every other field
passes through. Folder files get the id ``<relative path without extension>`` (the extension is kept
when two files in one folder share a stem, so ids stay unique).
"""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path

from unitwave.data.manifest import AUDIO_FIELD, ReadStats, Record, read_manifest, resolve_audio
from unitwave.data.paths import AUDIO_EXTENSIONS, scan_audio
from unitwave.data.records import ensure_id


def input_root(input_path: Path, relative_to: Path | None = None) -> Path:
    """The folder output paths keep their structure relative to.

    ``relative_to`` when given; a folder input itself; for a manifest, its own folder when every audio
    path lies inside it, else the deepest folder all its audio paths share (a manifest with absolute
    paths often lives apart from its audio, like the one ``unitwave vad`` writes). Reads the manifest
    once, streaming.
    """
    if relative_to is not None:
        return Path(os.path.abspath(relative_to))
    p = Path(os.path.abspath(input_path))
    if p.is_dir():
        return p
    if not p.exists():
        raise FileNotFoundError(f"input not found: {input_path} (expected a folder of audio or a JSONL manifest)")
    root = p.parent
    common: str | None = None
    for rec in iter_manifest_inputs(p, ReadStats(quiet=True)):
        value = rec.get(AUDIO_FIELD)
        if not isinstance(value, str) or not value:
            continue
        folder = os.path.dirname(value)
        common = folder if common is None else os.path.commonpath([common, folder])
    if common is None or os.path.commonpath([str(root), common]) == str(root):
        return root
    return Path(common)


def iter_folder(
    root: Path,
    extensions: tp.Iterable[str] = AUDIO_EXTENSIONS,
    exclude: Path | None = None,
    stats: ReadStats | None = None,
) -> tp.Iterator[Record]:
    """Records of the audio files under ``root`` (see :func:`scan_audio`), ids from their paths.

    A file whose name is not valid UTF-8 (bytes from another encoding) cannot be written into a JSON
    manifest: it is skipped with a warning and counted in ``stats`` like a malformed manifest line.
    """
    root = Path(root).absolute()
    stats = stats if stats is not None else ReadStats()
    folder: Path | None = None
    stems: set[str] = set()  # stems seen in the current folder (the scan goes folder by folder)
    taken: set[str] = set()  # ids given in the current folder
    for path in scan_audio(root, extensions, exclude):
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            stats.skip(ascii(str(path)), "file name is not valid UTF-8; rename it (e.g. with convmv)")
            continue
        rel = path.relative_to(root)
        if rel.parent != folder:
            folder, stems, taken = rel.parent, set(), set()
        rid = rel.with_suffix("").as_posix()
        if rel.stem in stems or rid in taken:  # a.wav beside a.flac (or a.wav.flac): the full name
            rid = rel.as_posix()
        stems.add(rel.stem)
        taken.add(rid)
        yield {"id": rid, AUDIO_FIELD: str(path)}


def iter_manifest_inputs(manifest: Path, stats: ReadStats) -> tp.Iterator[Record]:
    """Normalised records of a manifest; a path that is no manifest fails here, before any is read."""
    return _normalised(read_manifest(manifest, stats), manifest, stats)


def _normalised(records: tp.Iterable[Record], manifest: Path, stats: ReadStats) -> tp.Iterator[Record]:
    base = Path(manifest).absolute().parent
    for rec in records:
        try:
            rec = ensure_id(rec)
        except ValueError as e:
            stats.skip(f"{manifest} (record {stats.records})", str(e))
            continue
        value = rec.get(AUDIO_FIELD)
        if isinstance(value, str) and value:
            rec[AUDIO_FIELD] = str(resolve_audio(value, base))
        yield rec


def iter_inputs(
    input_path: Path, stats: ReadStats | None = None, exclude: Path | None = None
) -> tp.Iterator[Record]:
    """Normalised records from a folder (scanned recursively, leaving out ``exclude``: the stage's
    output folder when it lies inside the input) or a JSONL manifest."""
    p = Path(input_path)
    stats = stats if stats is not None else ReadStats()
    if p.is_dir():
        return iter_folder(p, exclude=exclude, stats=stats)
    if p.is_file():
        return iter_manifest_inputs(p, stats)
    raise FileNotFoundError(f"input not found: {p} (expected a folder of audio or a JSONL manifest)")
