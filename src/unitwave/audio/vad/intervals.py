"""Frame speech probabilities -> speech intervals (the post-processing every backend shares).

The rules are those of silero-vad's ``get_speech_timestamps``, written as array operations:

1. hysteresis: a frame turns speech on at ``p >= threshold`` and off at ``p < neg_threshold``
   (default ``threshold - 0.15``); frames in between keep the current state;
2. silences shorter than ``min_silence_s`` do not end speech (runs closer than that are merged);
3. speech shorter than ``min_speech_s`` (after merging) is dropped;
4. speech longer than ``max_speech_s`` is split at its deepest pause (the longest short silence it
   holds, the quieter one on a tie; with none, the frame of lowest probability), recursively;
5. each interval grows by ``speech_pad_s`` on both sides, by half the silence when two intervals are
   closer than twice the padding, and never beyond the file.

Where this differs from silero's loop, on purpose: a silence counts from its first frame below the
exit threshold to the frame where speech resumes, so ``min_silence_s`` (rounded up to whole frames) is
the shortest silence that ends speech (silero decides on a frame that must itself start
``min_silence_s`` after the silence began, needing one frame more); and speech followed by a short
silence at the end of the file ends where the speech ends (silero stretches it to the end of the file).

Units: frames are indices into the probability array, ``frame_s`` seconds apart; frame ``i`` covers
``[i * frame_s, (i + 1) * frame_s)``. Intervals come out in seconds as a float64 array ``(K, 2)`` of
``[start, end)``, sorted and disjoint.
"""

from __future__ import annotations

import typing as tp
from dataclasses import dataclass

import numpy as np

Runs = np.ndarray  # (N, 2) int64 [start, end) frame indices, sorted, disjoint


@dataclass(frozen=True)
class IntervalRules:
    """Post-processing parameters (silero-vad's defaults), all durations in seconds."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_s: float = 0.25
    min_silence_s: float = 0.1
    speech_pad_s: float = 0.03
    max_speech_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise ValueError(f"neg_threshold must be in [0, threshold], got {self.neg_threshold}")
        for name in ("min_speech_s", "min_silence_s", "speech_pad_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")
        if self.max_speech_s is not None and self.max_speech_s <= 2 * self.speech_pad_s:
            raise ValueError(f"max_speech_s must exceed twice speech_pad_s, got {self.max_speech_s}")

    @property
    def exit_threshold(self) -> float:
        """Probability below which speech ends (silero: ``threshold - 0.15``, at least 0.01)."""
        return self.neg_threshold if self.neg_threshold is not None else max(self.threshold - 0.15, 0.01)


def hysteresis(probs: np.ndarray, threshold: float, exit_threshold: float) -> np.ndarray:
    """``(F,)`` probabilities -> ``(F,)`` bool speech mask (state starts as silence)."""
    p = np.asarray(probs, dtype=np.float32)
    decided = np.where(p >= threshold, 1, np.where(p < exit_threshold, 0, -1))
    last = np.maximum.accumulate(np.where(decided >= 0, np.arange(len(p)), -1))
    return np.where(last >= 0, decided[np.maximum(last, 0)], 0) == 1


def mask_runs(mask: np.ndarray) -> Runs:
    """``(F,)`` bool -> ``(N, 2)`` [start, end) frame indices of its True runs."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1).astype(np.int64)


def merge_runs(runs: Runs, min_gap: int) -> list[Runs]:
    """Group runs separated by fewer than ``min_gap`` frames; each group keeps its member runs."""
    if len(runs) == 0:
        return []
    breaks = np.flatnonzero(runs[1:, 0] - runs[:-1, 1] >= min_gap) + 1
    return np.split(runs, breaks)


def _cut_candidates(group: Runs, probs: np.ndarray, min_piece: int) -> list[tuple[float, float, int, int]]:
    """Internal gaps of ``group`` leaving at least ``min_piece`` frames each side, as
    ``(gap frames, -mean probability, left end, right start)``."""
    start, end = int(group[0, 0]), int(group[-1, 1])
    out = []
    for left_end, right_start in zip(group[:-1, 1], group[1:, 0]):
        if left_end - start >= min_piece and end - right_start >= min_piece:
            depth = -float(probs[left_end:right_start].mean())
            out.append((float(right_start - left_end), depth, int(left_end), int(right_start)))
    return out


def clip_runs(group: Runs, lo: int, hi: int) -> Runs:
    """The parts of ``group``'s runs inside frames ``[lo, hi)``."""
    starts, ends = np.maximum(group[:, 0], lo), np.minimum(group[:, 1], hi)
    keep = ends > starts
    return np.stack([starts[keep], ends[keep]], axis=1)


def split_at_pauses(group: Runs, probs: np.ndarray, max_len: int, min_piece: int) -> list[tuple[int, int]]:
    """Split one merged interval (its member runs) into pieces of at most ``max_len`` frames.

    Cuts go at the deepest pause (longest gap between member runs, the lower mean probability on a
    tie) among those leaving ``min_piece`` frames each side; without one, at the frame of lowest
    probability (nearest the middle on a tie). Recursive; returns ``[(start, end), ...]`` in frames.
    """
    start, end = int(group[0, 0]), int(group[-1, 1])
    if end - start <= max_len:
        return [(start, end)]
    piece = max(1, min(min_piece, (end - start) // 2))
    candidates = _cut_candidates(group, probs, piece)
    if candidates:
        _, _, left_end, right_start = max(candidates)
    else:
        lo, hi = start + piece, end - piece  # the cut frame starts the right piece
        window = probs[lo : hi + 1]
        ties = np.flatnonzero(window <= window.min() + 1e-6) + lo
        left_end = right_start = int(ties[np.argmin(np.abs(ties - (start + end) / 2))])
    left, right = clip_runs(group, start, left_end), clip_runs(group, right_start, end)
    return split_at_pauses(left, probs, max_len, min_piece) + split_at_pauses(
        right, probs, max_len, min_piece
    )


def pad_intervals(intervals: np.ndarray, pad_s: float, duration_s: float) -> np.ndarray:
    """Grow ``(K, 2)`` second intervals by ``pad_s`` each side, sharing gaps narrower than ``2 * pad_s``."""
    if len(intervals) == 0 or pad_s <= 0:
        return intervals
    out = intervals.astype(np.float64).copy()
    gaps = out[1:, 0] - out[:-1, 1]
    grow = np.minimum(pad_s, gaps / 2)
    out[1:, 0] -= grow
    out[:-1, 1] += grow
    out[0, 0] = max(0.0, out[0, 0] - pad_s)
    out[-1, 1] = min(duration_s, out[-1, 1] + pad_s)
    return out


def speech_groups(probs: np.ndarray, frame_s: float, rules: IntervalRules) -> list[Runs]:
    """Steps 1-3: the merged speech intervals, each as its member runs of frames."""
    mask = hysteresis(probs, rules.threshold, rules.exit_threshold)
    min_gap = max(1, int(np.ceil(rules.min_silence_s / frame_s - 1e-6)))
    groups = merge_runs(mask_runs(mask), min_gap)
    min_len = rules.min_speech_s / frame_s - 1e-9
    return [g for g in groups if g[-1, 1] - g[0, 0] >= min_len]


def frames_to_seconds(pieces: tp.Sequence[tuple[int, int]], frame_s: float, duration_s: float) -> np.ndarray:
    """``[(start, end), ...]`` frames -> ``(K, 2)`` seconds, clipped to the file's duration."""
    if not pieces:
        return np.zeros((0, 2), dtype=np.float64)
    out = np.asarray(pieces, dtype=np.float64) * frame_s
    return np.minimum(out, duration_s)


def speech_intervals(
    probs: np.ndarray, frame_s: float, duration_s: float, rules: IntervalRules = IntervalRules()
) -> np.ndarray:
    """``(F,)`` frame probabilities -> ``(K, 2)`` speech ``[start, end)`` in seconds (all five steps).

    Args:
        probs: one speech probability per frame.
        frame_s: hop between frames in seconds.
        duration_s: the audio's length in seconds (the last frame may be padded past it).
        rules: thresholds and durations.
    """
    probs = np.asarray(probs, dtype=np.float32)
    pieces: list[tuple[int, int]] = []
    for group in speech_groups(probs, frame_s, rules):
        if rules.max_speech_s is None:
            pieces.append((int(group[0, 0]), int(group[-1, 1])))
            continue
        max_len = max(1, int((rules.max_speech_s - 2 * rules.speech_pad_s) / frame_s))
        min_piece = max(1, round(rules.min_speech_s / frame_s))
        pieces += split_at_pauses(group, probs, max_len, min_piece)
    intervals = frames_to_seconds(pieces, frame_s, duration_s)
    intervals = intervals[intervals[:, 1] > intervals[:, 0]]
    return pad_intervals(intervals, rules.speech_pad_s, duration_s)
