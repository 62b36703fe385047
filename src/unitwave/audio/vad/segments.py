"""Plan utterance-sized segments of a recording: cut in the middle of pauses, bound the lengths.

Given frame speech probabilities (any backend) and optionally the audio itself:

1. speech is found with the shared rules (:mod:`unitwave.audio.vad.intervals`); a pause is a silence
   of at least ``min_silence_s`` between two stretches of speech;
2. with the audio at hand, every VAD silence of at least ``min_silence_s - 0.15`` s is measured again
   on the signal: the longest run of 5 ms frames within 6 dB of the quietest tenth of the frames
   around it. Model VADs keep reporting speech for 50-150 ms after it ends, so their pauses look
   shorter and off-centre; the measured silence gives the pause's true extent, which decides whether
   it is long enough and where its middle is;
3. every pause becomes a cut at its middle; a pause longer than ``2 * keep_silence_s`` keeps only
   ``keep_silence_s`` of silence on each side and drops the rest;
4. a segment longer than ``max_segment_s`` is split at its deepest internal pause (the longest of its
   shorter silences, the quieter on a tie; with none, its frame of lowest speech probability), leaving
   at least ``min_segment_s`` on each side, recursively;
5. segments shorter than ``min_segment_s`` are merged into a neighbour they touch (across the shorter
   pause, when the result stays within ``max_segment_s``), dropped, or kept (``short``).

Times are seconds from the start of the audio; probabilities are one per ``frame_s`` frame.
"""

from __future__ import annotations

import typing as tp
from dataclasses import dataclass, field

import numpy as np

from unitwave.audio.vad.intervals import IntervalRules, clip_runs, speech_groups

QUIET_FRAME_S = 0.005  # frame of the signal-level pause measurement
QUIET_MARGIN_DB = 6.0  # a frame within this many dB of the pause's noise floor counts as silent
PAUSE_SEARCH_S = 0.15  # how far beyond the VAD's pause the silence may really extend
ShortPolicy = tp.Literal["merge", "drop", "keep"]


@dataclass(frozen=True)
class SegmentRules:
    """Segment length bounds and what to do with short ones (seconds)."""

    min_segment_s: float = 2.0
    max_segment_s: float = 30.0
    keep_silence_s: float = 1.0
    short: ShortPolicy = "merge"
    refine_cuts: bool = True

    def __post_init__(self) -> None:
        if self.min_segment_s < 0 or self.max_segment_s <= 0:
            raise ValueError(
                f"need min_segment_s >= 0 and max_segment_s > 0, "
                f"got {self.min_segment_s} and {self.max_segment_s}"
            )
        if self.max_segment_s < 2 * self.min_segment_s:
            raise ValueError(
                f"max_segment_s ({self.max_segment_s}) must be at least twice min_segment_s "
                f"({self.min_segment_s}) so that a long segment can always be split"
            )
        if self.keep_silence_s < 0:
            raise ValueError(f"keep_silence_s must be >= 0, got {self.keep_silence_s}")
        if self.short not in ("merge", "drop", "keep"):
            raise ValueError(f"short must be merge, drop or keep, got {self.short!r}")


DEFAULT_RULES = SegmentRules()
#: pauses of at least 0.5 s separate segments (padding plays no part: cuts go in the middle of pauses)
DEFAULT_PAUSES = IntervalRules(min_silence_s=0.5, speech_pad_s=0.0)


@dataclass
class Segment:
    """One planned segment: ``[start, end)`` seconds and the speech runs (frames) inside it."""

    start: float
    end: float
    runs: np.ndarray  # (N, 2) int64 [start, end) frames of speech
    joined_left: bool = False  # shares its start with the previous segment's end (a cut, nothing dropped)

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass
class SegmentPlan:
    """The segments of one file and what happened on the way (counts)."""

    segments: list[tuple[float, float]]
    pauses: list[tuple[float, float]] = field(default_factory=list)  # measured silences that became cuts
    split: int = 0  # cuts added inside segments longer than max_segment_s
    merged: int = 0  # short segments merged into a neighbour
    dropped: int = 0  # short segments dropped
    dropped_seconds: float = 0.0


def quiet_span(audio: np.ndarray, sample_rate: int, start: float, end: float) -> tuple[float, float]:
    """The silence around the VAD pause ``[start, end]`` (seconds), measured on the signal.

    Looks ``PAUSE_SEARCH_S`` beyond both ends, takes the longest run of 5 ms frames within
    ``QUIET_MARGIN_DB`` of the 10th-percentile frame level (loud holes of up to 10 ms closed) that
    overlaps the pause. Falls back to ``(start, end)`` when that run is shorter than half the pause.
    """
    hop = round(QUIET_FRAME_S * sample_rate)
    lo = max(0, int((start - PAUSE_SEARCH_S) * sample_rate))
    hi = min(len(audio), int(np.ceil((end + PAUSE_SEARCH_S) * sample_rate)))
    n = (hi - lo) // hop
    if n < 3:
        return start, end
    frames = audio[lo : lo + n * hop].astype(np.float64).reshape(n, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    quiet = level <= np.percentile(level, 10) + QUIET_MARGIN_DB
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    runs = np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)
    if len(runs) > 1:  # join silent runs separated by at most 2 loud frames (clicks, noise spikes)
        first = np.flatnonzero(np.concatenate([[True], runs[1:, 0] - runs[:-1, 1] > 2]))
        runs = np.stack([runs[first, 0], np.maximum.reduceat(runs[:, 1], first)], axis=1)
    # n whole frames inside a silence: it starts and ends on average half a frame beyond them
    spans = (runs * hop + lo) / sample_rate + np.array([-0.5, 0.5]) * hop / sample_rate
    overlapping = spans[(spans[:, 1] > start) & (spans[:, 0] < end)]
    if len(overlapping) == 0:
        return start, end
    best = overlapping[np.argmax(overlapping[:, 1] - overlapping[:, 0])]
    if best[1] - best[0] < 0.5 * (end - start):
        return start, end
    return float(best[0]), float(best[1])


Measure = tp.Callable[[float, float], tuple[float, float]]  # VAD pause (s) -> measured silence (s)


def _as_is(start: float, end: float) -> tuple[float, float]:
    return start, end


def _split(
    seg: Segment, probs: np.ndarray, frame_s: float, rules: SegmentRules, measure: Measure
) -> list[Segment]:
    """Step 4 for one segment: recursive cuts at the deepest internal pause."""
    if seg.length <= rules.max_segment_s or len(seg.runs) == 0:
        return [seg]
    lo, hi = seg.start + rules.min_segment_s, seg.end - rules.min_segment_s
    candidates = []
    for left_end, right_start in zip(seg.runs[:-1, 1], seg.runs[1:, 0]):
        cut = (left_end + right_start) / 2 * frame_s
        if lo <= cut <= hi:
            depth = -float(probs[left_end:right_start].mean())
            nearness = -abs(cut - (seg.start + seg.end) / 2)  # last tie-break: nearer the middle
            candidates.append(
                (float(right_start - left_end), depth, nearness, int(left_end), int(right_start))
            )
    if candidates:
        *_, left_end, right_start = max(candidates)
        quiet = measure(left_end * frame_s, right_start * frame_s)
        cut = min(max((quiet[0] + quiet[1]) / 2, lo), hi)
    else:
        first, last = int(np.ceil(lo / frame_s)), int(np.floor(hi / frame_s))
        window = probs[first : last + 1]
        if len(window) == 0:
            cut = (seg.start + seg.end) / 2
        else:
            ties = np.flatnonzero(window <= window.min() + 1e-6) + first
            cut = float(
                (ties[np.argmin(np.abs((ties + 0.5) * frame_s - (seg.start + seg.end) / 2))] + 0.5) * frame_s
            )
    cut_frame = int(cut / frame_s)
    left = Segment(seg.start, cut, clip_runs(seg.runs, 0, cut_frame), seg.joined_left)
    right = Segment(cut, seg.end, clip_runs(seg.runs, cut_frame, 1 << 62), True)
    return _split(left, probs, frame_s, rules, measure) + _split(right, probs, frame_s, rules, measure)


def _merge_short(
    segments: list[Segment], frame_s: float, rules: SegmentRules, plan: SegmentPlan
) -> list[Segment]:
    """Step 5 with ``short="merge"``: shortest first, into the touching neighbour across the shorter pause."""
    segs = list(segments)
    stuck: set[int] = set()  # ids of short segments no neighbour can take
    while True:
        short = [i for i, s in enumerate(segs) if s.length < rules.min_segment_s and id(s) not in stuck]
        if not short:
            return segs
        i = min(short, key=lambda k: segs[k].length)
        seg = segs[i]
        options = []
        for j in (i - 1, i + 1):
            if not 0 <= j < len(segs):
                continue
            left, right = (segs[j], seg) if j < i else (seg, segs[j])
            if not right.joined_left or right.end - left.start > rules.max_segment_s:
                continue
            pause = (
                (right.runs[0, 0] - left.runs[-1, 1]) * frame_s if len(left.runs) and len(right.runs) else 0.0
            )
            options.append((pause, right.end - left.start, j))
        if not options:
            stuck.add(id(seg))
            continue
        _, _, j = min(options)
        left, right = (segs[j], seg) if j < i else (seg, segs[j])
        merged = Segment(left.start, right.end, np.concatenate([left.runs, right.runs]), left.joined_left)
        segs[min(i, j)] = merged
        del segs[max(i, j)]
        plan.merged += 1


def plan_segments(
    probs: np.ndarray,
    frame_s: float,
    duration_s: float,
    rules: SegmentRules = DEFAULT_RULES,
    speech: IntervalRules = DEFAULT_PAUSES,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> SegmentPlan:
    """Segments ``[(start, end), ...]`` (seconds) of a file from its ``(F,)`` frame probabilities.

    Args:
        probs: one speech probability per frame.
        frame_s: hop between frames in seconds.
        duration_s: the audio's length in seconds.
        rules: segment bounds; ``rules.refine_cuts`` measures pauses on ``audio`` when given.
        speech: speech rules; ``speech.min_silence_s`` is the shortest pause that separates segments.
        audio: ``(T,)`` mono float32 at ``sample_rate``, for the signal-level pause measurement.
    """
    probs = np.asarray(probs, dtype=np.float32)
    refine = rules.refine_cuts and audio is not None
    min_pause = speech.min_silence_s
    search = IntervalRules(
        threshold=speech.threshold,
        neg_threshold=speech.neg_threshold,
        min_speech_s=speech.min_speech_s,
        min_silence_s=max(frame_s, min_pause - PAUSE_SEARCH_S) if refine else min_pause,
        speech_pad_s=0.0,
    )
    groups = speech_groups(probs, frame_s, search)
    plan = SegmentPlan(segments=[])
    if not groups:
        return plan
    measure: Measure = _as_is
    if refine:
        signal = tp.cast(np.ndarray, audio)

        def measure(start: float, end: float) -> tuple[float, float]:
            return quiet_span(signal, sample_rate, start, end)

    # step 2: measure each candidate pause; too short ones join their neighbours again
    merged: list[np.ndarray] = [groups[0]]
    pauses: list[tuple[float, float]] = []
    for group in groups[1:]:
        start, end = merged[-1][-1, 1] * frame_s, group[0, 0] * frame_s
        span = measure(start, end)
        if max(end - start, span[1] - span[0]) >= min_pause - 1e-9:
            merged.append(group)
            pauses.append(span)
        else:
            merged[-1] = np.concatenate([merged[-1], group])
    # step 3: cuts in the middle of pauses
    keep = rules.keep_silence_s
    segs = [Segment(0.0, 0.0, g) for g in merged]
    segs[0].start = max(0.0, merged[0][0, 0] * frame_s - keep)
    segs[-1].end = min(duration_s, merged[-1][-1, 1] * frame_s + keep)
    for k, (a, b) in enumerate(pauses):
        if b - a <= 2 * keep:
            segs[k].end = segs[k + 1].start = (a + b) / 2
            segs[k + 1].joined_left = True
        else:
            segs[k].end, segs[k + 1].start = a + keep, b - keep
    plan.pauses = pauses
    # step 4: split long ones
    count = len(segs)
    segs = [piece for s in segs for piece in _split(s, probs, frame_s, rules, measure)]
    plan.split = len(segs) - count
    # step 5: short ones
    if rules.short == "merge":
        segs = _merge_short(segs, frame_s, rules, plan)
    if rules.short in ("merge", "drop"):
        short = [s for s in segs if s.length < rules.min_segment_s]
        plan.dropped = len(short)
        plan.dropped_seconds = round(sum(s.length for s in short), 3)
        segs = [s for s in segs if s.length >= rules.min_segment_s]
    plan.segments = [(round(s.start, 4), round(s.end, 4)) for s in segs]
    return plan
