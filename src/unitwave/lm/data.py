"""Unit corpora for language models: reading, the deterministic split, k, datasets and batches.

Input is ``<name>_units.txt`` (space-separated unit ids, one utterance per line). The validation split
is deterministic by a hash of each line's text (and a salt): identical lines always land together,
and adding lines never moves others. Utterances are held in RAM as one flat int32 array plus offsets,
or, with ``on_the_fly``, only as byte offsets into the file (each item is read when it is needed).
"""

from __future__ import annotations

import json
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unitwave.data.records import unit_interval

if tp.TYPE_CHECKING:
    import torch


@dataclass
class CorpusScan:
    """One pass over a units file: per kept line its byte offset, length and split; the largest unit id."""

    path: Path
    offsets: np.ndarray  # int64 (n,)
    lengths: np.ndarray  # int64 (n,), frames (before truncation)
    is_val: np.ndarray  # bool (n,)
    split_keys: np.ndarray  # float64 (n,) in [0, 1): hash of the line text; val when < val_ratio
    max_unit: int
    empty_lines: int


def parse_line(raw: bytes, where: str) -> np.ndarray:
    """Unit ids of one line as int64; ValueError naming ``where`` (file:line) when it is not integers."""
    try:
        units = np.array(raw.split(), dtype=np.int64)
    except ValueError:
        bad = next((t for t in raw.split() if not t.lstrip(b"-").isdigit()), b"?")
        raise ValueError(f"{where}: {bad.decode(errors='replace')!r} is not a unit id (expected space-separated integers)") from None
    if units.size and units.min() < 0:
        raise ValueError(f"{where}: negative unit id {int(units.min())}")
    return units


def scan_units(path: Path, val_ratio: float = 0.0, salt: str = "") -> CorpusScan:
    """Offsets, lengths and split of every non-empty line of ``path`` (empty lines are counted, skipped).

    With ``val_ratio > 0`` the split always holds at least one validation and one training line (the
    lines with the lowest and highest hash), so small corpora never end up with an empty side.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"unit corpus not found: {path} (expected <name>_units.txt from unitwave units encode)")
    offsets, lengths, keys = [], [], []
    max_unit, empty, pos = -1, 0, 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            start, pos = pos, pos + len(raw)
            units = parse_line(raw, f"{path}:{lineno}")
            if not units.size:
                empty += 1
                continue
            offsets.append(start)
            lengths.append(units.size)
            keys.append(unit_interval(raw.strip().decode("ascii", "replace"), salt))
            max_unit = max(max_unit, int(units.max()))
    split_keys = np.array(keys, np.float64)
    is_val = split_keys < val_ratio if val_ratio > 0 else np.zeros(len(keys), bool)
    if val_ratio > 0 and len(keys) >= 2:
        is_val[np.argmin(split_keys)] = True
        is_val[np.argmax(split_keys)] = False
    return CorpusScan(path, np.array(offsets, np.int64), np.array(lengths, np.int64), is_val, split_keys, max_unit, empty)


def corpus_k(units_txt: Path) -> int | None:
    """``k`` recorded in ``<name>_corpus_timestamped.jsonl`` next to ``<name>_units.txt``, if any."""
    stem = Path(units_txt).stem
    name = stem.removesuffix("_units")
    meta = Path(units_txt).with_name(f"{name}_corpus_timestamped.jsonl")
    if not meta.is_file():
        return None
    with open(meta, encoding="utf-8") as f:
        first = f.readline()
    try:
        k = json.loads(first).get("k")
    except (json.JSONDecodeError, AttributeError):
        return None
    return int(k) if isinstance(k, int) and k > 0 else None


def resolve_k(given: int, scans: tp.Sequence[CorpusScan]) -> int:
    """``given`` when > 0, else the timestamped corpus's ``k``, else the largest unit id + 1."""
    largest = max(s.max_unit for s in scans)
    if given > 0:
        if largest >= given:
            where = next(s.path for s in scans if s.max_unit == largest)
            raise ValueError(f"{where} holds unit {largest}, but --k is {given}; pass --k {largest + 1} or more")
        return given
    recorded = corpus_k(scans[0].path)
    if recorded is not None and recorded > largest:
        return recorded
    return largest + 1


class UnitSequences:
    """Utterances as int64 arrays, truncated to ``max_len`` frames; in RAM or read on the fly."""

    def __init__(self, scan: CorpusScan, select: np.ndarray, max_len: int = 0, on_the_fly: bool = False) -> None:
        self.path = scan.path
        self.offsets = scan.offsets[select]
        full = scan.lengths[select]
        self.lengths = np.minimum(full, max_len) if max_len > 0 else full
        self.truncated = int((full > self.lengths).sum())
        self.max_len = max_len
        self.on_the_fly = on_the_fly
        self._file: tp.BinaryIO | None = None
        self._flat: np.ndarray | None = None
        self._starts: np.ndarray | None = None
        if not on_the_fly:
            self._starts = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
            self._flat = np.empty(int(self._starts[-1]), dtype=np.int32)
            for i in range(len(self)):
                self._flat[self._starts[i] : self._starts[i + 1]] = self._read(i)
            self.close()

    def _read(self, i: int) -> np.ndarray:
        if self._file is None:
            self._file = open(self.path, "rb")
        self._file.seek(int(self.offsets[i]))
        units = parse_line(self._file.readline(), f"{self.path} (byte {int(self.offsets[i])})")
        return units[: self.max_len] if self.max_len > 0 else units

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._flat is not None and self._starts is not None:
            return self._flat[self._starts[i] : self._starts[i + 1]].astype(np.int64)
        return self._read(i)

    def __getstate__(self) -> dict[str, tp.Any]:  # DataLoader workers open their own file
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def num_tokens(self) -> int:
        return int(self.lengths.sum())


def collate_units(items: list[np.ndarray], sos: int, pad: int) -> dict[str, torch.Tensor]:
    """A batch: ``inputs`` ``(B, T)`` = SOS + units[:-1] (PAD after the end), ``targets`` ``(B, T)`` =
    units (PAD after the end), ``lengths`` ``(B,)`` = units per utterance."""
    import torch

    lengths = torch.tensor([len(u) for u in items], dtype=torch.long)
    t = int(lengths.max())
    inputs = torch.full((len(items), t), pad, dtype=torch.long)
    targets = torch.full((len(items), t), pad, dtype=torch.long)
    for i, u in enumerate(items):
        x = torch.from_numpy(np.asarray(u, dtype=np.int64))
        n = len(x)
        inputs[i, 0] = sos
        inputs[i, 1:n] = x[: n - 1]
        targets[i, :n] = x
    return {"inputs": inputs, "targets": targets, "lengths": lengths}


class UnitCollate:
    """Picklable ``collate_fn`` for DataLoader workers."""

    def __init__(self, sos: int, pad: int) -> None:
        self.sos, self.pad = sos, pad

    def __call__(self, items: list[np.ndarray]) -> dict[str, torch.Tensor]:
        return collate_units(items, self.sos, self.pad)
