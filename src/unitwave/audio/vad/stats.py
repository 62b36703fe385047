"""Statistics of speech intervals: per-file speech/silence figures and frame-level agreement.

Intervals are float arrays ``(K, 2)`` of ``[start, end)`` in seconds, sorted and disjoint (what
:func:`unitwave.audio.vad.intervals.speech_intervals` returns). A statistic that does not exist for a
file (the shortest speech segment of a silent file, the longest pause of a file with one segment) is
``None``, written as an empty CSV cell, never a made-up zero.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp

import numpy as np

SECONDS_DECIMALS = 3  # statistics are rounded to the millisecond


def as_intervals(intervals: tp.Iterable[tp.Sequence[float]] | np.ndarray) -> np.ndarray:
    """Any ``[[start, end], ...]`` as a float64 ``(K, 2)`` array (``(0, 2)`` when empty)."""
    out = np.asarray(
        list(intervals) if not isinstance(intervals, np.ndarray) else intervals, dtype=np.float64
    )
    return out.reshape(-1, 2)


def pauses_between(intervals: np.ndarray) -> np.ndarray:
    """``(K, 2)`` speech -> ``(K - 1, 2)`` silences between consecutive intervals, in seconds."""
    iv = as_intervals(intervals)
    return np.stack([iv[:-1, 1], iv[1:, 0]], axis=1) if len(iv) > 1 else np.zeros((0, 2))


def _r(value: float) -> float:
    return round(float(value), SECONDS_DECIMALS)


@dc.dataclass(frozen=True)
class SpeechStats:
    """Speech and silence of one file, in seconds (``speech_ratio`` in [0, 1])."""

    duration_s: float
    speech_s: float
    speech_ratio: float
    speech_segments: int
    longest_speech_s: float | None
    shortest_speech_s: float | None
    mean_speech_s: float | None
    longest_silence_s: float | None  # pauses between speech segments (leading/trailing excluded)
    shortest_silence_s: float | None
    leading_silence_s: float  # before the first speech (the whole file when there is none)
    trailing_silence_s: float  # after the last speech (the whole file when there is none)

    def as_dict(self) -> dict[str, tp.Any]:
        return dc.asdict(self)


#: the columns of :class:`SpeechStats`, in CSV order
STAT_FIELDS: tuple[str, ...] = tuple(f.name for f in dc.fields(SpeechStats))


def speech_stats(intervals: np.ndarray, duration_s: float) -> SpeechStats:
    """Figures of ``(K, 2)`` speech intervals (seconds) in a file of ``duration_s`` seconds."""
    iv = as_intervals(intervals)
    lengths = iv[:, 1] - iv[:, 0]
    pauses = pauses_between(iv)
    gaps = pauses[:, 1] - pauses[:, 0]
    speech = float(lengths.sum())
    has = len(iv) > 0
    return SpeechStats(
        duration_s=_r(duration_s),
        speech_s=_r(speech),
        speech_ratio=round(speech / duration_s, 4) if duration_s > 0 else 0.0,
        speech_segments=len(iv),
        longest_speech_s=_r(lengths.max()) if has else None,
        shortest_speech_s=_r(lengths.min()) if has else None,
        mean_speech_s=_r(lengths.mean()) if has else None,
        longest_silence_s=_r(gaps.max()) if len(gaps) else None,
        shortest_silence_s=_r(gaps.min()) if len(gaps) else None,
        leading_silence_s=_r(iv[0, 0]) if has else _r(duration_s),
        trailing_silence_s=_r(max(0.0, duration_s - iv[-1, 1])) if has else _r(duration_s),
    )


def frame_labels(intervals: np.ndarray, duration_s: float, frame_s: float = 0.01) -> np.ndarray:
    """``(N,)`` bool: whether the centre of each ``frame_s`` frame of the file lies in an interval."""
    centres = (np.arange(int(np.ceil(duration_s / frame_s))) + 0.5) * frame_s
    iv = as_intervals(intervals)
    if len(iv) == 0:
        return np.zeros(len(centres), dtype=bool)
    idx = np.searchsorted(iv[:, 0], centres, side="right") - 1
    return (idx >= 0) & (centres < iv[np.maximum(idx, 0), 1])


@dc.dataclass
class FrameCounts:
    """Frame-level agreement of predicted with reference speech (summable over files)."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    true_negative: int = 0

    def add(
        self, predicted: np.ndarray, reference: np.ndarray, duration_s: float, frame_s: float = 0.01
    ) -> None:
        """Count frames of one file; both interval sets in seconds."""
        p, r = frame_labels(predicted, duration_s, frame_s), frame_labels(reference, duration_s, frame_s)
        self.true_positive += int((p & r).sum())
        self.false_positive += int((p & ~r).sum())
        self.false_negative += int((~p & r).sum())
        self.true_negative += int((~p & ~r).sum())

    @property
    def precision(self) -> float:
        d = self.true_positive + self.false_positive
        return self.true_positive / d if d else 0.0

    @property
    def recall(self) -> float:
        d = self.true_positive + self.false_negative
        return self.true_positive / d if d else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0
