"""Probabilities -> intervals (the shared post-processing) and interval statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unitwave.audio.vad.intervals import IntervalRules, hysteresis, mask_runs, speech_intervals
from unitwave.audio.vad.stats import FrameCounts, frame_labels, pauses_between, speech_stats

FRAME = 0.032  # s, silero's hop


def probs_of(*runs: tuple[float, int]) -> np.ndarray:
    """``(value, frames), ...`` -> a probability array."""
    return np.concatenate([np.full(n, v, np.float32) for v, n in runs])


def test_hysteresis_keeps_state_between_the_two_thresholds() -> None:
    p = np.array([0.1, 0.6, 0.4, 0.4, 0.3, 0.4, 0.5, 0.2], np.float32)
    assert hysteresis(p, 0.5, 0.35).tolist() == [False, True, True, True, False, False, True, False]
    assert mask_runs(hysteresis(p, 0.5, 0.35)).tolist() == [[1, 4], [6, 7]]


def test_short_silences_merge_short_speech_drops_and_padding_stays_in_the_file() -> None:
    p = probs_of((0.0, 10), (0.9, 20), (0.0, 3), (0.9, 20), (0.0, 40), (0.9, 5), (0.0, 30), (0.9, 30))
    duration = len(p) * FRAME - 0.01  # the last frame is padded past the end of the audio
    rules = IntervalRules(min_speech_s=0.25, min_silence_s=0.1, speech_pad_s=0.03)
    out = speech_intervals(p, FRAME, duration, rules)
    # 3 silent frames (96 ms) < 100 ms: merged; the 5-frame (160 ms) blip is dropped; the last one ends the file
    np.testing.assert_allclose(out, [[10 * FRAME - 0.03, 53 * FRAME + 0.03], [128 * FRAME - 0.03, duration]])
    # a 4-frame silence (128 ms) does end speech
    p4 = probs_of((0.9, 20), (0.0, 4), (0.9, 20), (0.0, 20))
    assert len(speech_intervals(p4, FRAME, len(p4) * FRAME, rules)) == 2


def test_padding_shares_a_narrow_gap_and_clips_at_zero() -> None:
    p = probs_of((0.9, 20), (0.0, 5), (0.9, 20), (0.0, 10))
    out = speech_intervals(p, FRAME, len(p) * FRAME, IntervalRules(min_silence_s=0.1, speech_pad_s=0.1))
    assert out[0, 0] == 0.0 and out[0, 1] == pytest.approx(out[1, 0]) == pytest.approx(22.5 * FRAME)
    assert out[1, 1] == pytest.approx(45 * FRAME + 0.1)


def test_long_speech_splits_at_its_deepest_pause() -> None:
    # 10 s of speech with internal pauses of 2, 4 (deepest) and 3 frames, all shorter than min_silence
    p = probs_of((0.9, 80), (0.1, 2), (0.9, 80), (0.2, 4), (0.9, 80), (0.1, 3), (0.9, 70))
    rules = IntervalRules(min_silence_s=0.3, speech_pad_s=0.0, max_speech_s=7.0)
    out = speech_intervals(p, FRAME, len(p) * FRAME, rules)
    np.testing.assert_allclose(out, [[0, 162 * FRAME], [166 * FRAME, len(p) * FRAME]])
    # no pause at all: cut at the least speech-like frame
    q = probs_of((0.95, 150), (0.6, 1), (0.95, 150))
    out = speech_intervals(q, FRAME, len(q) * FRAME, IntervalRules(speech_pad_s=0.0, max_speech_s=6.0))
    np.testing.assert_allclose(out, [[0, 150 * FRAME], [150 * FRAME, 301 * FRAME]])
    assert (out[:, 1] - out[:, 0]).max() <= 6.0


def test_matches_silero_get_speech_timestamps_on_clear_probabilities() -> None:
    """Same intervals as silero's own post-processing (torch needed to import it), given the documented
    one-frame difference in how long a silence must be."""
    pytest.importorskip("torch")
    from silero_vad.utils_vad import get_speech_timestamps_from_probs

    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(1, 12))  # silero's min silence in frames
        lengths = rng.integers(1, 25, size=int(rng.integers(1, 30)))
        values = np.where(np.arange(len(lengths)) % 2 == int(rng.integers(0, 2)), 0.05, 0.95)
        p = np.concatenate([np.repeat(values, lengths), np.full(k + 2, 0.02)]).astype(np.float32)
        pad_ms, speech_ms = int(rng.choice([0, 30, 100])), int(rng.choice([0, 100, 250]))
        samples = len(p) * 512 - int(rng.integers(0, 512))
        ref = get_speech_timestamps_from_probs(
            [float(x) for x in p],
            16000,
            min_speech_duration_ms=speech_ms,
            min_silence_duration_ms=k * 32,
            speech_pad_ms=pad_ms,
            audio_length_samples=samples,
        )
        expected = np.array([[d["start"], d["end"]] for d in ref], dtype=np.float64).reshape(-1, 2) / 16000
        rules = IntervalRules(
            min_speech_s=speech_ms / 1000, min_silence_s=(k + 1) * FRAME, speech_pad_s=pad_ms / 1000
        )
        np.testing.assert_allclose(speech_intervals(p, FRAME, samples / 16000, rules), expected, atol=1e-4)


@settings(max_examples=150, deadline=None)
@given(
    probs=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=600),
    min_speech=st.sampled_from([0.0, 0.1, 0.25]),
    min_silence=st.sampled_from([0.0, 0.1, 0.5]),
    pad=st.sampled_from([0.0, 0.03, 0.2]),
    max_speech=st.sampled_from([None, 1.0, 3.0]),
)
def test_intervals_are_sorted_disjoint_inside_the_file_and_bounded(
    probs, min_speech, min_silence, pad, max_speech
) -> None:
    p = np.asarray(probs, np.float32)
    duration = len(p) * FRAME - 0.005
    rules = IntervalRules(
        min_speech_s=min_speech, min_silence_s=min_silence, speech_pad_s=pad, max_speech_s=max_speech
    )
    out = speech_intervals(p, FRAME, duration, rules)
    assert out.shape[1] == 2 and (out[:, 1] > out[:, 0]).all()
    assert out.min(initial=0.0) >= 0.0 and out.max(initial=0.0) <= duration + 1e-9
    assert (out[1:, 0] >= out[:-1, 1] - 1e-9).all()
    if max_speech is not None:
        assert (out[:, 1] - out[:, 0]).max(initial=0.0) <= max_speech + 1e-6
    if min_speech == 0.0:  # then every frame at or above the threshold lies in an interval
        sure = np.flatnonzero(p >= 0.5)
        sure = sure[(sure + 0.5) * FRAME < duration]
        assert frame_labels(out, duration, FRAME)[sure].all()


def test_speech_stats_of_known_intervals() -> None:
    s = speech_stats(np.array([[0.5, 2.5], [3.0, 4.0], [6.0, 7.0]]), 8.0)
    assert (s.speech_s, s.speech_ratio, s.speech_segments) == (4.0, 0.5, 3)
    assert (s.longest_speech_s, s.shortest_speech_s, s.mean_speech_s) == (2.0, 1.0, pytest.approx(1.333))
    assert (s.longest_silence_s, s.shortest_silence_s) == (2.0, 0.5)
    assert (s.leading_silence_s, s.trailing_silence_s) == (0.5, 1.0)
    assert pauses_between(np.array([[0.5, 2.5], [3.0, 4.0]])).tolist() == [[2.5, 3.0]]


def test_undefined_stats_are_none_not_zero() -> None:
    silent = speech_stats(np.zeros((0, 2)), 3.0)
    assert silent.speech_s == 0.0 and silent.speech_segments == 0
    assert silent.longest_speech_s is None and silent.longest_silence_s is None
    assert silent.leading_silence_s == silent.trailing_silence_s == 3.0
    one = speech_stats(np.array([[1.0, 2.0]]), 3.0)
    assert one.longest_speech_s == 1.0 and one.shortest_silence_s is None


def test_frame_counts() -> None:
    counts = FrameCounts()
    counts.add(np.array([[0.0, 1.0]]), np.array([[0.5, 1.5]]), 2.0)
    assert (counts.true_positive, counts.false_positive, counts.false_negative, counts.true_negative) == (
        50,
        50,
        50,
        50,
    )
    assert counts.precision == counts.recall == counts.f1 == 0.5
