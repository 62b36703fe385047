"""Units as characters, and unit corpora as the symbol sequences BPE learns from.

Each unit id maps to one private-use Unicode character (``U+E000 + id`` for ids below 6400, then the
plane-15 private-use area), so a SentencePiece piece is a true unit n-gram: no whitespace, no
normalisation, no "pieces never span two units" as with whitespace-separated ids.

Two symbol modes (``--dedup`` / ``--no-dedup`` of ``unitwave motifs``):

- **runs** (dedup): every run of a repeated unit is one symbol (``5 5 5 7 7 -> 5 7``). A motif is a
  sequence of runs: it always starts and ends on a run boundary, so no merge ever joins part of a
  run to its neighbour, and a motif describes unit order regardless of how long each unit lasts.
- **frames**: every frame is one symbol. Pieces may hold repeated frames (``5 5 5``) and may begin or
  end inside a run (merges across run boundaries are kept): motifs then encode durations too.
"""

from __future__ import annotations

import json
import typing as tp
from dataclasses import dataclass
from pathlib import Path

from unitwave.units.corpus import run_lengths

PUA_BMP_START, PUA_BMP_SIZE = 0xE000, 6400
PUA_PLANE15_START, PUA_PLANE15_SIZE = 0xF0000, 65534
MAX_UNITS = PUA_BMP_SIZE + PUA_PLANE15_SIZE


def unit_char(unit: int) -> str:
    """The private-use character of unit ``unit``."""
    if 0 <= unit < PUA_BMP_SIZE:
        return chr(PUA_BMP_START + unit)
    if PUA_BMP_SIZE <= unit < MAX_UNITS:
        return chr(PUA_PLANE15_START + unit - PUA_BMP_SIZE)
    raise ValueError(f"unit id {unit} is outside 0..{MAX_UNITS - 1}, the ids that map to private-use characters")


def char_unit(char: str) -> int:
    """Inverse of :func:`unit_char`."""
    c = ord(char)
    if PUA_BMP_START <= c < PUA_BMP_START + PUA_BMP_SIZE:
        return c - PUA_BMP_START
    if PUA_PLANE15_START <= c < PUA_PLANE15_START + PUA_PLANE15_SIZE:
        return c - PUA_PLANE15_START + PUA_BMP_SIZE
    raise ValueError(f"character U+{c:04X} is not a unit character")


def units_to_text(units: tp.Iterable[int]) -> str:
    return "".join(unit_char(int(u)) for u in units)


def text_to_units(text: str) -> list[int]:
    return [char_unit(c) for c in text]


@dataclass
class Utterance:
    """One line of a unit corpus: frame-level units and, when known, each frame's duration in seconds."""

    id: str
    units: list[int]
    frame_seconds: list[float]
    #: 1-based line of the units file (0: not from a file)
    line: int = 0

    def symbols(self, dedup: bool) -> tuple[list[int], list[int], list[float]]:
        """``(symbols, frames per symbol, seconds per symbol)`` in runs (dedup) or frames mode."""
        if not dedup:
            return list(self.units), [1] * len(self.units), list(self.frame_seconds)
        symbols, frames, seconds, i = [], [], [], 0
        for unit, n in run_lengths(self.units):
            symbols.append(unit)
            frames.append(n)
            seconds.append(sum(self.frame_seconds[i : i + n]))
            i += n
        return symbols, frames, seconds


def parse_units_line(line: str, where: str) -> list[int]:
    """Space-separated unit ids; ValueError naming ``where`` (file:line) for anything else."""
    try:
        units = [int(tok) for tok in line.split()]
    except ValueError:
        bad = next(tok for tok in line.split() if not tok.lstrip("-").isdigit())
        raise ValueError(f"{where}: {bad!r} is not a unit id (expected space-separated integers)") from None
    if units and min(units) < 0:
        raise ValueError(f"{where}: negative unit id {min(units)}")
    return units


def default_name(units_txt: Path) -> str:
    """``<name>`` of ``<name>_units.txt`` (else the file stem)."""
    stem = Path(units_txt).stem
    return stem[: -len("_units")] if stem.endswith("_units") and len(stem) > len("_units") else stem


def sibling_timestamped(units_txt: Path) -> Path | None:
    """``<name>_corpus_timestamped.jsonl`` next to ``<name>_units.txt``, when it exists."""
    p = Path(units_txt).with_name(f"{default_name(units_txt)}_corpus_timestamped.jsonl")
    return p if p.is_file() else None


def load_corpus(units_txt: Path, timestamped: Path | None, frame_hop_s: float) -> list[Utterance]:
    """Read ``<name>_units.txt`` (+ the timestamped corpus for ids and frame durations).

    Empty lines are skipped (an utterance without frames has no motif; each utterance keeps its line
    number, so outputs can stay line-aligned with the input). The timestamped corpus must
    list the same utterances in the same order; a mismatch is an error naming both files and the line.
    """
    units_txt = Path(units_txt)
    if not units_txt.is_file():
        raise FileNotFoundError(f"unit corpus not found: {units_txt} (expected <name>_units.txt from unitwave units encode)")
    meta = open(timestamped, encoding="utf-8") if timestamped is not None else None
    out: list[Utterance] = []
    try:
        with open(units_txt, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                units = parse_units_line(line, f"{units_txt}:{lineno}")
                record = _next_record(meta, timestamped, lineno) if meta is not None else None
                if record is not None and [int(u) for u in record.get("units", [])] != units:
                    raise ValueError(
                        f"{timestamped}:{lineno} does not match {units_txt}:{lineno} (different units); "
                        "give the timestamped corpus written with this units file (--timestamps)"
                    )
                if not units:
                    continue
                if record is not None and record.get("times"):
                    seconds = [float(e) - float(s) for s, e in record["times"]]
                else:
                    hop = float(record.get("frame_hop_s", frame_hop_s)) if record is not None else frame_hop_s
                    seconds = [hop] * len(units)
                rid = str(record["id"]) if record is not None and "id" in record else f"line{lineno:07d}"
                out.append(Utterance(rid, units, seconds, lineno))
    finally:
        if meta is not None:
            meta.close()
    return out


def _next_record(meta: tp.TextIO, path: Path | None, lineno: int) -> dict[str, tp.Any]:
    line = meta.readline()
    if not line:
        raise ValueError(f"{path} has fewer lines than the units file (ends before line {lineno})")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{lineno}: not JSON ({e.msg})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}:{lineno}: expected a JSON object")
    return record
