"""Phone alignments for unit quality: ``{utterance id: [(start s, end s, phone), ...]}`` from any of

- ``alignments.jsonl`` as the synthetic corpus writes it: ``{"id", "phones": [[start, end, phone], ...]}``;
- CTM-like JSONL, one segment per line: ``{"id" (or "utt"), "start", "end" (or "duration"),
  "phone" (or "label", "token")}``;
- a Kaldi/MFA ``.ctm`` text file: ``utt channel start duration phone [confidence]``;
- a Praat TextGrid (long or short text format, UTF-8 or UTF-16) or a folder of them, one per utterance
  named ``<id>.TextGrid``, read from the tier named ``tier`` (by default "phones", or the first tier
  whose name contains "phone"); empty intervals are silence and get the label ``sil``.
"""

from __future__ import annotations

import json
import re
import typing as tp
from pathlib import Path

Segment = tuple[float, float, str]
SILENCE = "sil"


def load_phone_alignments(path: Path, tier: str = "phones") -> dict[str, list[Segment]]:
    """Read alignments from a file or folder (see module doc); segments sorted by start time."""
    p = Path(path)
    if p.is_dir():
        grids = sorted(p.rglob("*.TextGrid"))
        if not grids:
            raise FileNotFoundError(f"{p}: no *.TextGrid files inside")
        out = {g.stem: read_textgrid(g, tier) for g in grids}
    elif p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".textgrid":
            out = {p.stem: read_textgrid(p, tier)}
        elif suffix == ".ctm":
            out = read_ctm(p)
        else:
            out = read_jsonl_alignments(p)
    else:
        raise FileNotFoundError(f"alignments not found: {p}")
    return {uid: sorted(segs) for uid, segs in out.items()}


def read_jsonl_alignments(path: Path) -> dict[str, list[Segment]]:
    """Per-utterance ``phones`` records or one-segment-per-line records (both may be mixed)."""
    out: dict[str, list[Segment]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not JSON ({e.msg})") from None
            uid = rec.get("id", rec.get("utt"))
            if uid is None:
                raise ValueError(f"{where}: no 'id' (or 'utt') field")
            if "phones" in rec:
                try:
                    segs = [(float(s), float(e), str(label)) for s, e, label in rec["phones"]]
                except (TypeError, ValueError):
                    raise ValueError(f"{where}: 'phones' must be a list of [start, end, label]") from None
                for seg in segs:
                    _check_segment(seg, where)
                out.setdefault(str(uid), []).extend(segs)
                continue
            label = rec.get("phone", rec.get("label", rec.get("token")))
            start = rec.get("start")
            end = rec.get(
                "end",
                None
                if start is None or rec.get("duration") is None
                else float(start) + float(rec["duration"]),
            )
            if label is None or start is None or end is None:
                raise ValueError(f"{where}: expected 'phones', or 'start', 'end' (or 'duration') and 'phone'")
            seg = (float(start), float(end), str(label))
            _check_segment(seg, where)
            out.setdefault(str(uid), []).append(seg)
    return out


def _check_segment(seg: Segment, where: str) -> None:
    start, end, label = seg
    if not (0.0 <= start < end) or end != end:
        raise ValueError(f"{where}: segment {label!r} [{start}, {end}] must have 0 <= start < end")


def read_ctm(path: Path) -> dict[str, list[Segment]]:
    """``utt channel start duration phone [confidence]`` per line; ``;;`` comments skipped."""
    out: dict[str, list[Segment]] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith(";;"):
            continue
        if len(parts) < 5:
            raise ValueError(f"{path}:{lineno}: a CTM line needs utt channel start duration phone")
        start, dur = float(parts[2]), float(parts[3])
        out.setdefault(parts[0], []).append((start, start + dur, parts[4]))
    return out


_STRING = r'"(?:[^"]|"")*"'
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = re.compile(f"({_STRING})|(?<![\\w.])({_NUMBER})(?![\\w.])")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig", errors="replace")


def _tokens(text: str) -> list[str | float]:
    """The quoted strings and numbers of a TextGrid, in order (long and short formats agree on them)."""
    text = re.sub(r"\[\s*\d*\s*\]", " ", text)  # "item [1]:", "intervals [3]:"
    out: list[str | float] = []
    for string, number in _TOKEN.findall(text):
        out.append(string[1:-1].replace('""', '"') if string else float(number))
    return out


def read_textgrid(path: Path, tier: str = "phones") -> list[Segment]:
    """Intervals of one tier of a Praat TextGrid (see module doc for which tier)."""
    toks = _tokens(_decode(Path(path).read_bytes()))
    if len(toks) < 2 or toks[0] != "ooTextFile":
        raise ValueError(f"{path}: not a Praat text TextGrid")
    pos = 2 + 2  # file type, object class, xmin, xmax
    tiers: dict[str, list[Segment]] = {}
    try:
        count = int(tp.cast(float, toks[pos]))
        pos += 1
        for _ in range(count):
            kind, name = str(toks[pos]), str(toks[pos + 1])
            size = int(tp.cast(float, toks[pos + 4]))
            pos += 5
            if kind == "IntervalTier":
                segs = []
                for i in range(size):
                    start, end, label = toks[pos + 3 * i : pos + 3 * i + 3]
                    segs.append((float(start), float(end), str(label).strip() or SILENCE))
                tiers[name] = segs
                pos += 3 * size
            else:
                pos += 2 * size  # point tier: (time, mark) pairs
    except (IndexError, ValueError, TypeError):
        raise ValueError(f"{path}: malformed TextGrid") from None
    if tier in tiers:
        return tiers[tier]
    for name, segs in tiers.items():
        if tier == "phones" and "phone" in name.lower():  # the default also finds "phone", "Phones"...
            return segs
    raise ValueError(f"{path}: no interval tier {tier!r} (tiers: {', '.join(tiers) or 'none'}); pass --tier")
