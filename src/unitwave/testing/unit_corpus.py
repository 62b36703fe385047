"""Synthetic unit corpora with a known structure, in the exact formats ``unitwave units encode`` writes.

Utterances are sequences of "words" drawn from a word-bigram Markov chain; a word is a fixed sequence
of 2-6 distinct units, and each of its units lasts a characteristic number of frames (1-5) with a
little jitter. So the corpus has what real unit corpora have and what the tools must find: recurring
unit n-grams (motifs, ground truth in :class:`Lexicon`), long-range structure an LSTM can use and a
bigram cannot (word identity, run lengths), and timestamps. Everything is drawn from ``seed``.

Outputs (see docs/FORMATS.md): ``<name>_units.txt`` (space-separated frame-level unit ids, one
utterance per line) and ``<name>_corpus_timestamped.jsonl`` (``units``, ``times``, ``runs`` per line).
"""

from __future__ import annotations

import json
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Lexicon:
    """The planted words: unit sequences and their characteristic frames per unit."""

    words: tuple[tuple[int, ...], ...]
    frames: tuple[tuple[int, ...], ...]
    successors: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class UnitCorpusFiles:
    units_txt: Path
    timestamped: Path
    lexicon: Lexicon
    num_utterances: int
    num_frames: int


def make_lexicon(k: int, num_words: int, rng: np.random.Generator, word_units: tuple[int, int] = (2, 6)) -> Lexicon:
    words, frames, successors = [], [], []
    for _ in range(num_words):
        n = int(rng.integers(word_units[0], word_units[1] + 1))
        units = [int(rng.integers(k))]
        while len(units) < n:  # no unit twice in a row inside a word: runs stay one unit each
            u = int(rng.integers(k))
            if u != units[-1]:
                units.append(u)
        words.append(tuple(units))
        frames.append(tuple(int(f) for f in rng.integers(1, 6, size=n)))
    for _ in range(num_words):
        successors.append(tuple(int(w) for w in rng.choice(num_words, size=3, replace=False)))
    return Lexicon(tuple(words), tuple(frames), tuple(successors))


def synthetic_utterances(
    num_utterances: int = 200,
    k: int = 50,
    num_words: int = 40,
    words_per_utterance: tuple[int, int] = (4, 12),
    jitter: float = 0.3,
    seed: int = 0,
) -> tuple[list[list[int]], Lexicon]:
    """Frame-level unit sequences (one list per utterance) and the lexicon that generated them.

    Args:
        num_utterances: utterances to draw.
        k: unit inventory size (ids 0..k-1).
        num_words: planted words.
        words_per_utterance: inclusive range of words per utterance.
        jitter: probability that a unit's duration is one frame shorter or longer than its word's norm.
        seed: everything is drawn from it.
    """
    if k < 2 or num_words < 3:
        raise ValueError(f"need k >= 2 and num_words >= 3, got k={k}, num_words={num_words}")
    rng = np.random.default_rng(seed)
    lex = make_lexicon(k, num_words, rng)
    utterances = []
    for _ in range(num_utterances):
        count = int(rng.integers(words_per_utterance[0], words_per_utterance[1] + 1))
        w = int(rng.integers(num_words))
        frames: list[int] = []
        for _ in range(count):
            for unit, norm in zip(lex.words[w], lex.frames[w]):
                r = rng.random()
                d = norm + (-1 if r < jitter / 2 else 1 if r < jitter else 0)
                frames.extend([unit] * max(1, d))
            w = lex.successors[w][int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        utterances.append(frames)
    return utterances, lex


def timestamped_record(rid: str, units: tp.Sequence[int], k: int, frame_hop_s: float) -> dict[str, tp.Any]:
    """One line of ``<name>_corpus_timestamped.jsonl`` for a frame-level unit sequence (the real writer's format)."""
    from unitwave.units.corpus import timestamped

    return timestamped({
        "id": rid, "audio_filepath": f"synthetic/{rid}.wav", "duration": round(len(units) * frame_hop_s, 6),
        "encoder": "synthetic-markov", "layer": None, "k": k, "frame_hop_s": frame_hop_s, "frame_offset_s": 0.0,
        "units": [int(u) for u in units],
    })


def write_unit_corpus(
    out_dir: Path, name: str = "synthetic", frame_hop_s: float = 0.02, **kwargs: tp.Any
) -> UnitCorpusFiles:
    """Write ``<name>_units.txt`` and ``<name>_corpus_timestamped.jsonl``; ``kwargs`` go to
    :func:`synthetic_utterances` (``num_utterances``, ``k``, ``num_words``, ``seed``...)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    utterances, lex = synthetic_utterances(**kwargs)
    k = int(kwargs.get("k", 50))
    units_txt = out_dir / f"{name}_units.txt"
    timestamped = out_dir / f"{name}_corpus_timestamped.jsonl"
    with open(units_txt, "w", encoding="utf-8") as txt, open(timestamped, "w", encoding="utf-8") as js:
        for i, units in enumerate(utterances):
            txt.write(" ".join(map(str, units)) + "\n")
            js.write(json.dumps(timestamped_record(f"{name}_{i:05d}", units, k, frame_hop_s)) + "\n")
    return UnitCorpusFiles(units_txt, timestamped, lex, len(utterances), sum(map(len, utterances)))
