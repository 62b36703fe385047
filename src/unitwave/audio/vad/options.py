"""The VAD options every command shares (``--vad-backend``, ``--threshold``, ...) and speech detection
on one array with them."""

from __future__ import annotations

import dataclasses as dc
import typing as tp

import numpy as np

from unitwave.audio.vad.backends import BACKENDS, VadBackend, load_backend
from unitwave.audio.vad.intervals import IntervalRules, speech_intervals

DEFAULT_MIN_SILENCE_S = 0.1  # silero-vad's get_speech_timestamps default
BackendName = tp.Literal["silero", "ten", "webrtc", "energy"]


@dc.dataclass(frozen=True)
class VadOptions:
    """Which VAD backend runs and how its frame probabilities become speech intervals."""

    vad_backend: BackendName = "silero"
    """silero (ONNX model, default), ten (TEN VAD, Linux x86_64), webrtc (WebRTC GMM), energy (dBFS level)."""
    threshold: float = 0.5
    """Speech starts where the frame probability is at or above this (energy: where the level reaches --energy-threshold-db)."""
    neg_threshold: tp.Optional[float] = None
    """Speech ends where the probability falls below this (default: threshold - 0.15)."""
    min_speech_s: float = 0.25
    """Speech shorter than this (seconds) is dropped."""
    min_silence_s: float = DEFAULT_MIN_SILENCE_S
    """Silence must last this long (seconds) to end speech (vad: 0.1 like silero; segment: 0.5)."""
    speech_pad_s: float = 0.03
    """vad: seconds added on each side of each speech interval (segment cuts in the middle of pauses instead)."""
    max_speech_s: tp.Optional[float] = None
    """vad: split speech longer than this (seconds) at its deepest pause (segment: see --max-segment-s)."""
    webrtc_mode: int = 3
    """webrtc: aggressiveness 0-3 (3 filters out the most non-speech)."""
    webrtc_frame_ms: int = 30
    """webrtc: frame length in ms (10, 20 or 30)."""
    energy_threshold_db: float = -40.0
    """energy: frames at or above this RMS level (dBFS) are speech."""
    energy_floor_margin_db: tp.Optional[float] = None
    """energy: raise the threshold to the file's noise floor plus this many dB (for noisy recordings)."""

    def __post_init__(self) -> None:
        if self.vad_backend not in BACKENDS:
            raise ValueError(
                f"unknown VAD backend {self.vad_backend!r}; choose one of: {', '.join(BACKENDS)}"
            )
        self.rules()  # validates thresholds and durations

    def rules(self) -> IntervalRules:
        """The post-processing part of these options."""
        return IntervalRules(
            threshold=self.threshold,
            neg_threshold=self.neg_threshold,
            min_speech_s=self.min_speech_s,
            min_silence_s=self.min_silence_s,
            speech_pad_s=self.speech_pad_s,
            max_speech_s=self.max_speech_s,
        )

    def backend_params(self) -> dict[str, tp.Any]:
        """The constructor arguments of the chosen backend."""
        if self.vad_backend == "webrtc":
            return {"mode": self.webrtc_mode, "frame_ms": self.webrtc_frame_ms}
        if self.vad_backend == "energy":
            return {"threshold_db": self.energy_threshold_db, "floor_margin_db": self.energy_floor_margin_db}
        return {}

    def build(self) -> VadBackend:
        """Load the chosen backend (BackendUnavailable says why not and what to use instead)."""
        return load_backend(self.vad_backend, **self.backend_params())

    def describe(self, backend: VadBackend) -> dict[str, tp.Any]:
        """``{"backend": name, versions, model hash, parameters; "rules": post-processing}`` for sidecars."""
        rules = self.rules()
        return {
            "backend": backend.describe(),
            "rules": {**dc.asdict(rules), "exit_threshold": rules.exit_threshold},
        }


def detect_speech(
    audio: np.ndarray,
    sample_rate: int = 16000,
    options: VadOptions = VadOptions(),
    backend: VadBackend | None = None,
) -> np.ndarray:
    """Speech intervals of mono float32 ``audio`` ``(T,)`` at ``sample_rate`` Hz.

    Returns ``(K, 2)`` ``[start, end)`` in seconds. Audio at another rate than the backend's (16 kHz)
    is resampled first; pass a built ``backend`` to reuse it across calls.
    """
    from unitwave.audio.io import resample

    backend = backend or options.build()
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate != backend.sample_rate:
        audio = resample(audio, sample_rate, backend.sample_rate)
    probs = backend.probabilities(audio)
    return speech_intervals(probs, backend.frame_s, len(audio) / backend.sample_rate, options.rules())
