"""Segment planning: cuts in the middle of true pauses, length bounds, merge / drop / keep."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from unitwave.audio.io import load_audio
from unitwave.audio.vad import IntervalRules, SegmentRules, load_backend, plan_segments
from unitwave.audio.vad.segments import quiet_span
from unitwave.data.manifest import iter_jsonl
from unitwave.testing.corpus import CorpusConfig, build_corpus, load_vad

RATE = 16000
FRAME = 0.032
PAUSES = IntervalRules(min_silence_s=0.5, speech_pad_s=0.0)
EVERY_CUT = SegmentRules(min_segment_s=0.0, short="keep")  # nothing merged: each pause shows as a cut


@pytest.fixture(scope="module")
def utterances(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[np.ndarray, dict]]:
    info = build_corpus(
        CorpusConfig(
            tmp_path_factory.mktemp("seg-corpus"),
            utterances=4,
            sentences_per_utterance=(3, 4),
            pause_seconds=(0.55, 1.2),
            edge_silence_seconds=(0.3, 0.6),
            seed=5,
        )
    )
    truth = load_vad(info.vad)
    return [
        (load_audio(info.root / r["audio_filepath"])[0], truth[r["id"]]) for r in iter_jsonl(info.manifest)
    ]


def cuts_of(segments: list[tuple[float, float]]) -> list[float]:
    return [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(segments)]


@pytest.mark.parametrize(
    "name,refine", [("silero", True), ("energy", True), ("energy", False), ("webrtc", True)]
)
def test_cuts_land_within_50_ms_of_true_pause_middles(name: str, refine: bool, utterances: list) -> None:
    backend = load_backend(name)
    rules = SegmentRules(min_segment_s=0.0, short="keep", refine_cuts=refine)
    for audio, truth in utterances:
        probs = backend.probabilities(audio)
        plan = plan_segments(probs, backend.frame_s, len(audio) / RATE, rules, PAUSES, audio=audio)
        middles = [(s + e) / 2 for s, e in truth["pauses"]]
        cuts = cuts_of(plan.segments)
        assert len(cuts) == len(middles), (name, cuts, middles)
        np.testing.assert_allclose(cuts, middles, atol=0.05)
        # segments are contiguous at every cut (pauses <= 2 s) and hold the speech with its edges
        assert all(a[1] == b[0] for a, b in zip(plan.segments, plan.segments[1:]))
        assert (
            plan.segments[0][0] <= truth["speech"][0][0]
            and plan.segments[-1][1] >= truth["speech"][-1][1] - 0.05
        )


def test_default_rules_merge_short_sentences_and_keep_cuts_at_pause_middles(utterances: list) -> None:
    backend = load_backend("silero")
    for audio, truth in utterances:
        plan = plan_segments(backend.probabilities(audio), backend.frame_s, len(audio) / RATE, audio=audio)
        lengths = [e - s for s, e in plan.segments]
        assert all(2.0 <= x <= 30.0 for x in lengths) and plan.dropped == 0
        middles = np.array([(s + e) / 2 for s, e in truth["pauses"]])
        for cut in cuts_of(plan.segments):
            assert np.abs(middles - cut).min() < 0.05
        assert len(plan.segments) + plan.merged == len(truth["speech"])


def test_quiet_span_measures_the_true_silence() -> None:
    rng = np.random.default_rng(1)
    audio = 0.1 * rng.standard_normal(4 * RATE).astype(np.float32)
    audio[int(1.2345 * RATE) : int(2.0 * RATE)] = 0.0
    start, end = quiet_span(audio, RATE, 1.33, 1.91)  # a VAD's view: late start, early end
    assert abs(start - 1.2345) < 0.005 and abs(end - 2.0) < 0.005
    # noise in the pause: measured against the pause's own floor
    noisy = audio + 0.003 * rng.standard_normal(len(audio)).astype(np.float32)
    start, end = quiet_span(noisy, RATE, 1.33, 1.91)
    assert abs(start - 1.2345) < 0.02 and abs(end - 2.0) < 0.02


def probs_of(*runs: tuple[float, int]) -> np.ndarray:
    """``(probability, frames), ...`` -> frame probabilities (32 ms frames)."""
    return np.concatenate([np.full(n, p, np.float32) for p, n in runs])


def plan(p: np.ndarray, rules: SegmentRules) -> list[tuple[float, float]]:
    return plan_segments(p, FRAME, len(p) * FRAME, rules, PAUSES).segments


def test_a_long_pause_keeps_only_keep_silence_on_each_side() -> None:
    p = probs_of((0.0, 64), (0.9, 128), (0.0, 188), (0.9, 128), (0.0, 94))
    segs = plan(p, SegmentRules(keep_silence_s=1.0))
    assert segs == [
        (pytest.approx(64 * FRAME - 1), pytest.approx(192 * FRAME + 1)),
        (pytest.approx(380 * FRAME - 1), pytest.approx(508 * FRAME + 1)),
    ]


def test_long_segments_split_at_the_deepest_internal_pause() -> None:
    # 40 s of speech with pauses shorter than 0.5 s after 10 s (6 frames), 20 s (12: deepest), 30 s (9)
    p = probs_of((0.9, 312), (0.1, 6), (0.9, 312), (0.1, 12), (0.9, 312), (0.1, 9), (0.9, 312))
    result = plan_segments(p, FRAME, len(p) * FRAME, SegmentRules(max_segment_s=30.0), PAUSES)
    assert len(result.segments) == 2 and result.split == 1
    assert result.segments[0][1] == result.segments[1][0] == pytest.approx((630 + 6) * FRAME)
    result = plan_segments(
        p, FRAME, len(p) * FRAME, SegmentRules(max_segment_s=12.0, min_segment_s=2.0), PAUSES
    )
    assert len(result.segments) == 4 and max(e - s for s, e in result.segments) <= 12.0


def test_continuous_speech_is_cut_at_its_least_speech_like_frame() -> None:
    p = probs_of((0.95, 600), (0.55, 1), (0.95, 600))
    segs = plan(p, SegmentRules(max_segment_s=30.0))
    assert len(segs) == 2 and segs[0][1] == pytest.approx(600.5 * FRAME)


def test_short_segments_merge_across_the_shorter_pause_drop_or_stay() -> None:
    # speech 3 s | 0.6 s pause | 1 s | 0.9 s pause | 3 s: the 1 s one joins the first segment
    p = probs_of((0.9, 94), (0.0, 19), (0.9, 31), (0.0, 28), (0.9, 94))
    merged = plan_segments(p, FRAME, len(p) * FRAME, SegmentRules(), PAUSES)
    assert len(merged.segments) == 2 and merged.merged == 1
    assert merged.segments[0][1] == pytest.approx((94 + 19 + 31 + 14) * FRAME)
    dropped = plan_segments(p, FRAME, len(p) * FRAME, SegmentRules(short="drop"), PAUSES)
    assert len(dropped.segments) == 2 and dropped.dropped == 1
    assert dropped.segments[1][0] - dropped.segments[0][1] == pytest.approx((9.5 + 31 + 14) * FRAME)
    assert len(plan(p, SegmentRules(short="keep"))) == 3


def test_merge_never_exceeds_the_maximum_and_isolated_short_segments_are_dropped() -> None:
    # 9.6 s | 0.6 s | 1 s | 5 s | 1.2 s | 5 s | 9.6 s, keeping 0.3 s of silence at segment edges
    p = probs_of((0.9, 300), (0.0, 19), (0.9, 31), (0.0, 156), (0.9, 38), (0.0, 156), (0.9, 300))
    result = plan_segments(
        p, FRAME, len(p) * FRAME, SegmentRules(max_segment_s=10.0, keep_silence_s=0.3), PAUSES
    )
    # the 1 s piece cannot join 9.6 s within 10 s, the 1.2 s one has no neighbour it touches: both dropped
    assert result.dropped == 2 and result.merged == 0 and len(result.segments) == 2
    assert all(e - s <= 10.0 for s, e in result.segments)


def test_nothing_to_cut_and_bad_rules() -> None:
    assert plan(np.zeros(100, np.float32), SegmentRules()) == []
    with pytest.raises(ValueError, match="at least twice"):
        SegmentRules(min_segment_s=5.0, max_segment_s=8.0)
    with pytest.raises(ValueError, match="merge, drop or keep"):
        SegmentRules(short="glue")  # type: ignore[arg-type]
