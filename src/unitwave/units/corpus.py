"""The unit corpus files: per-frame units with times, run-length deduplicated runs, and ``units.txt``.

``<name>_corpus_timestamped.jsonl`` holds one utterance per line (see docs/FORMATS.md)::

    {"id", "audio_filepath", "duration", "encoder", "layer", "k", "kmeans_id", "frame_hop_s", "frame_offset_s",
     "units": [u, ...], "times": [[start_s, end_s], ...], "runs": [[unit, start_s, end_s], ...], ...}

Times are seconds from the start of the utterance's audio (from its ``offset`` when it is a slice).
Frame ``t`` spans ``[frame_offset_s + t * frame_hop_s, + frame_hop_s)``: the hop-long interval centred on
the frame's receptive field, so consecutive frames tile the utterance without gaps or overlap.
``<name>_units.txt`` holds the same utterances in the same order, one line of space-separated frame
units each (the input of ``unitwave motifs`` and ``unitwave lm``). Both are written by streaming the
run's merged manifest, one record at a time, and replaced atomically.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np

from unitwave.data.atomic import atomic_path
from unitwave.data.manifest import ManifestWriter, Record, iter_jsonl

TIME_DECIMALS = 6  # 1 us
#: fields every corpus line starts with, in this order; other fields of the record follow unchanged
CORPUS_FIELDS = ("id", "audio_filepath", "duration", "encoder", "layer", "k", "kmeans_id", "frame_hop_s", "frame_offset_s")


def corpus_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}_corpus_timestamped.jsonl"


def units_txt_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{name}_units.txt"


def frame_times(num_frames: int, hop_s: float, offset_s: float) -> np.ndarray:
    """``(T, 2)`` start and end of each frame in seconds."""
    start = offset_s + np.arange(num_frames) * hop_s
    return np.stack([start, start + hop_s], axis=1)


def run_lengths(units: tp.Sequence[int]) -> list[tuple[int, int]]:
    """Run-length encoding of frame-level units: ``[(unit, frames), ...]``."""
    out: list[tuple[int, int]] = []
    for u in units:
        if out and out[-1][0] == u:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((int(u), 1))
    return out


def runs_of(units: tp.Sequence[int], times: np.ndarray) -> list[list[tp.Any]]:
    """Run-length deduplication with times: ``[[unit, start_s, end_s], ...]`` from frame units and
    ``times (T, 2)``."""
    runs, start = [], 0
    for unit, n in run_lengths(units):
        end = start + n - 1
        runs.append([unit, round(float(times[start, 0]), TIME_DECIMALS), round(float(times[end, 1]), TIME_DECIMALS)])
        start += n
    return runs


def timestamped(record: Record) -> Record:
    """The corpus line of an encoded manifest record (with ``units``, ``frame_hop_s``, ``frame_offset_s``)."""
    units = [int(u) for u in record["units"]]
    times = frame_times(len(units), float(record["frame_hop_s"]), float(record["frame_offset_s"]))
    head = {key: record.get(key) for key in CORPUS_FIELDS}
    rest = {key: value for key, value in record.items() if key not in CORPUS_FIELDS and key != "units"}
    return {
        **head,
        "units": units,
        "times": np.round(times, TIME_DECIMALS).tolist(),
        "runs": runs_of(units, times),
        **rest,
    }


def write_corpus(manifest: Path, folder: Path, name: str) -> tuple[Path, Path, int]:
    """Stream ``manifest`` (encoded records) into the timestamped corpus and ``units.txt`` under ``folder``.

    Returns ``(corpus path, units.txt path, utterances)``. Both files appear atomically.
    """
    corpus, units_txt = corpus_path(folder, name), units_txt_path(folder, name)
    count = 0
    with (
        atomic_path(units_txt) as tmp_txt,
        ManifestWriter(corpus, base_dir=Path(manifest).parent) as out,
        open(tmp_txt, "w", encoding="utf-8") as txt,
    ):
        for record in iter_jsonl(Path(manifest)):
            if "units" not in record:
                continue
            out.write(timestamped(record))
            txt.write(" ".join(str(int(u)) for u in record["units"]) + "\n")
            count += 1
    return corpus, units_txt, count


def find_corpus(path: Path) -> Path:
    """A corpus file itself, or the single ``*_corpus_timestamped.jsonl`` in a run folder."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        found = sorted(p.glob("*_corpus_timestamped.jsonl"))
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(
                f"{p} holds several corpora ({', '.join(f.name for f in found)}); pass one of them"
            )
        raise FileNotFoundError(f"{p}: no *_corpus_timestamped.jsonl (run `unitwave units encode` first)")
    raise FileNotFoundError(f"unit corpus not found: {p}")
