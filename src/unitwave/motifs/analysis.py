"""``motif_analysis.json``: what the motifs are, how often they occur, how long they last, how much they cover.

A *motif* is a piece of two or more symbols (runs in dedup mode, frames otherwise); single-symbol
pieces are the units themselves and are counted apart. Coverage is measured in frames: the share of
all frames of the corpus that fall inside occurrences of the given pieces.
"""

from __future__ import annotations

import typing as tp
from collections import Counter

from unitwave.units.corpus import run_lengths


def _hist(counts: Counter[int]) -> dict[str, int]:
    return {str(n): counts[n] for n in sorted(counts)}


def analyse_motifs(
    piece_units: list[tuple[int, ...]],
    encoded: list[list[int]],
    frames: list[list[int]],
    seconds: list[list[float]],
    top: int = 100,
) -> dict[str, tp.Any]:
    """Statistics of a motif-encoded corpus.

    Args:
        piece_units: symbol sequence of each piece id (empty for special pieces such as ``<unk>``).
        encoded: piece ids of each utterance.
        frames: frames of each symbol of each utterance (1 per symbol in frames mode).
        seconds: duration in seconds of each symbol of each utterance.
        top: motifs listed, most frequent first.
    """
    count: Counter[int] = Counter()
    piece_frames: Counter[int] = Counter()
    piece_seconds: dict[int, float] = {}
    total_frames = total_seconds = 0
    for ids, fr, sec in zip(encoded, frames, seconds):
        pos = 0
        for pid in ids:
            n = len(piece_units[pid])
            f, s = sum(fr[pos : pos + n]), float(sum(sec[pos : pos + n]))
            count[pid] += 1
            piece_frames[pid] += f
            piece_seconds[pid] = piece_seconds.get(pid, 0.0) + s
            pos += n
        total_frames += sum(fr)
        total_seconds += float(sum(sec))
    tokens = sum(count.values())
    symbols = sum(len(f) for f in frames)
    motifs = [p for p in count if len(piece_units[p]) >= 2]
    motifs.sort(key=lambda p: (-count[p], p))

    def coverage(pieces: tp.Iterable[int]) -> float:
        return round(sum(piece_frames[p] for p in pieces) / max(1, total_frames), 6)

    def describe(p: int) -> dict[str, tp.Any]:
        units = list(piece_units[p])
        return {
            "piece_id": p,
            "units": units,
            "text": " ".join(map(str, units)),
            "length": len(units),
            "runs": len(run_lengths(units)),
            "count": count[p],
            "frequency": round(count[p] / max(1, tokens), 6),
            "mean_frames": round(piece_frames[p] / count[p], 3),
            "mean_duration_ms": round(1000.0 * piece_seconds[p] / count[p], 3),
            "frame_coverage": coverage([p]),
        }

    vocab_lengths = [len(u) for u in piece_units if u]
    token_lengths: Counter[int] = Counter()
    for p, c in count.items():
        token_lengths[len(piece_units[p])] += c
    return {
        "utterances": len(encoded),
        "frames": total_frames,
        "hours": round(total_seconds / 3600.0, 6),
        "symbols": symbols,
        "tokens": tokens,
        "symbols_per_token": round(symbols / max(1, tokens), 4),
        "vocabulary": {
            "pieces": len(piece_units),
            "motifs": sum(1 for n in vocab_lengths if n >= 2),
            "used_pieces": len(count),
            "used_motifs": len(motifs),
            "longest_motif_symbols": max(vocab_lengths, default=0),
        },
        "coverage": {
            "motifs": coverage(motifs),
            "single_units": round(1.0 - coverage(motifs), 6),
            **{f"top_{n}_motifs": coverage(motifs[:n]) for n in (10, 50, 100) if n <= max(10, len(motifs))},
        },
        "length_histogram": {
            "vocabulary": _hist(Counter(vocab_lengths)),
            "corpus_tokens": _hist(token_lengths),
        },
        "top_motifs": [describe(p) for p in motifs[:top]],
    }
