"""Output paths that can never leave their output folder, folder scans for audio, and content signatures
of files (what identifies a model or an output across machines and reruns)."""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path, PurePosixPath

#: Extensions the audio layer reads through libsndfile (mp3 and opus included since 1.1).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64", ".caf")


class UnsafePathError(ValueError):
    """An output path that would land outside its output folder."""


def relative_output_path(source: Path, root: Path) -> PurePosixPath:
    """``source``'s path relative to ``root``, refusing anything that would escape an output folder.

    Raises UnsafePathError for sources outside ``root`` (``..``) so that ``out_dir / rel`` always stays
    under ``out_dir``.
    """
    src = Path(os.path.abspath(source))
    base = Path(os.path.abspath(root))
    try:
        rel = src.relative_to(base)
    except ValueError:
        raise UnsafePathError(
            f"{source} is outside {root}, so its output would land outside the output folder; "
            f"pass --relative-to with a folder that contains it"
        ) from None
    rel_posix = PurePosixPath(rel.as_posix())
    if not rel_posix.parts or any(p in ("..", "") for p in rel_posix.parts):
        raise UnsafePathError(f"{source}: refusing output path {rel_posix!s}")
    return rel_posix


def safe_join(out_dir: Path, rel: PurePosixPath | str) -> Path:
    """``out_dir / rel``, checked to stay inside ``out_dir`` (no absolute parts, no ``..``)."""
    rel = PurePosixPath(rel)
    if rel.is_absolute() or ".." in rel.parts:
        raise UnsafePathError(f"refusing to write {rel}: it would land outside {out_dir}")
    target = Path(os.path.abspath(out_dir / rel))
    if os.path.commonpath([target, os.path.abspath(out_dir)]) != os.path.abspath(out_dir):
        raise UnsafePathError(f"refusing to write {rel}: it would land outside {out_dir}")
    return target


def output_relpath(record: tp.Mapping[str, tp.Any], root: Path, from_folder: bool) -> PurePosixPath:
    """Where a record's WAV goes under ``audio/``, keeping the source's relative folders.

    Folder inputs use the id (unique by construction); manifest records use their path relative to
    ``root`` (refused when outside it), with the offset in ms appended for slices (records with an
    ``offset``, 0.0 included) of a longer file.
    """
    if from_folder:
        return PurePosixPath(record["id"] + ".wav")
    rel = relative_output_path(Path(record["audio_filepath"]), root)
    stem = rel.with_suffix("").as_posix()
    offset = record.get("offset")
    if isinstance(offset, (int, float)) and not isinstance(offset, bool):  # a slice, 0.0 included
        stem += f"_{int(round(float(offset) * 1000)):08d}"
    return PurePosixPath(stem + ".wav")


class OutputNames:
    """Output paths of a run's records that never collide: a record's natural path
    (:func:`output_relpath`) unless several input records share it (the same file listed twice, the same
    slice start with two durations, ``a.wav`` and ``a.flac`` side by side); then each of those records
    gets ``<natural stem>_<8 hex digits of its id>.wav``, which depends on nothing but the record.

    :meth:`plan` sees the whole input first (``Stage.plan``); the stage then names records with
    :meth:`relpath` and reports it as its ``record_key``, so a record whose name changes is redone.
    """

    def __init__(self, root: Path, from_folder: bool) -> None:
        self.root = root
        self.from_folder = from_folder
        self.shared: frozenset[str] = frozenset()

    def natural(self, record: tp.Mapping[str, tp.Any]) -> PurePosixPath:
        return output_relpath(record, self.root, self.from_folder)

    def plan(self, records: tp.Iterable[tp.Mapping[str, tp.Any]]) -> None:
        seen: set[str] = set()
        shared: set[str] = set()
        for rec in records:
            try:
                name = self.natural(rec).as_posix()
            except (UnsafePathError, KeyError, TypeError, ValueError):
                continue  # the record fails on its own when processed
            (shared if name in seen else seen).add(name)
        self.shared = frozenset(shared)

    def relpath(self, record: tp.Mapping[str, tp.Any]) -> PurePosixPath:
        rel = self.natural(record)
        if rel.as_posix() not in self.shared:
            return rel
        from unitwave.data.records import stable_hash

        return rel.with_name(f"{rel.stem}_{stable_hash(str(record['id']), 4):08x}{rel.suffix}")

    def key(self, record: tp.Mapping[str, tp.Any]) -> str:
        """The record's output path as a string (its ``record_key``), "" when it has none."""
        try:
            return self.relpath(record).as_posix()
        except (UnsafePathError, KeyError, TypeError, ValueError):
            return ""


def files_signature(paths: tp.Iterable[Path | str]) -> str:
    """Hex digest of the contents of ``paths`` (files; missing ones count as absent): the same wherever and
    whenever it is computed while the files are unchanged (a SLURM array task hours later, a copied folder)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(f"{path.name}\n".encode())
        if path.is_file():
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def scan_audio(
    root: Path, extensions: tp.Iterable[str] = AUDIO_EXTENSIONS, exclude: Path | None = None
) -> tp.Iterator[Path]:
    """Audio files under ``root`` (recursive, sorted, symlinked folders not followed), streamed.

    ``exclude``: a folder left out, e.g. an output folder inside the input one, whose outputs would
    otherwise become inputs of the next run.
    """
    exts = {e.lower() for e in extensions}
    root = Path(root)
    skip = os.path.abspath(exclude) if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if os.path.abspath(os.path.join(dirpath, d)) != skip)
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() in exts and not name.startswith("."):
                yield Path(dirpath) / name
