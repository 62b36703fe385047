"""Voice activity detection: backends, the probabilities -> intervals rules, statistics, segmentation.

- :mod:`~unitwave.audio.vad.backends`: ``BACKENDS`` (silero, ten, webrtc, energy), one speech
  probability per frame of 16 kHz mono audio;
- :mod:`~unitwave.audio.vad.intervals`: frame probabilities -> speech ``[start, end)`` seconds
  (threshold with hysteresis, minimum speech and silence, padding, splitting at the deepest pause);
- :mod:`~unitwave.audio.vad.stats`: per-file speech/silence statistics, frame-level precision/recall;
- :mod:`~unitwave.audio.vad.segments`: utterance-sized segments cut in the middle of pauses;
- :mod:`~unitwave.audio.vad.options`: the options the ``vad`` and ``segment`` commands share.

Only numpy is imported here; a backend's own dependencies load when it is built.

>>> from unitwave.audio.vad import VadOptions, detect_speech
>>> intervals = detect_speech(audio, 16000, VadOptions(backend="energy"))  # doctest: +SKIP
"""

from unitwave.audio.vad.backends import BACKENDS, BackendUnavailable, VadBackend, load_backend
from unitwave.audio.vad.intervals import IntervalRules, speech_intervals
from unitwave.audio.vad.options import VadOptions, detect_speech
from unitwave.audio.vad.segments import SegmentPlan, SegmentRules, plan_segments
from unitwave.audio.vad.stats import FrameCounts, SpeechStats, speech_stats

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "FrameCounts",
    "IntervalRules",
    "SegmentPlan",
    "SegmentRules",
    "SpeechStats",
    "VadBackend",
    "VadOptions",
    "detect_speech",
    "load_backend",
    "plan_segments",
    "speech_intervals",
    "speech_stats",
]
