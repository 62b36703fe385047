"""VAD backends: audio in, one speech probability per frame out.

Every backend takes mono float32 audio at :attr:`VadBackend.sample_rate` (16 kHz) and returns one
probability in [0, 1] per hop of :attr:`VadBackend.frame_samples` samples; frame ``i`` covers samples
``[i * hop, (i + 1) * hop)`` and a partial last hop is zero-padded, so ``F = ceil(T / hop)``. What
turns probabilities into speech intervals (thresholds, minimum speech and silence, padding) is the
same for all of them (:mod:`unitwave.audio.vad.intervals`).

| name     | what                                   | hop            | needs                             |
|----------|----------------------------------------|----------------|-----------------------------------|
| silero   | silero-vad's ONNX model (onnxruntime)  | 512 (32 ms)    | extra ``vad``                     |
| ten      | TEN VAD's native library               | 256 (16 ms)    | extra ``ten`` (Linux x86_64 only) |
| webrtc   | WebRTC's GMM VAD, modes 0-3 (0/1 out)  | 10/20/30 ms    | extra ``vad``                     |
| energy   | frame RMS in dBFS against a threshold  | 10 ms          | numpy only                        |

Every backend starts each file from a fresh state, so a file's result never depends on the files
processed before it (resume and batching give the same intervals). Heavy imports happen when a backend
is built, never on import of this module.
"""

from __future__ import annotations

import abc
import hashlib
import importlib.metadata
import importlib.util
import platform
import typing as tp
from pathlib import Path

import numpy as np

from unitwave.errors import UserError

SAMPLE_RATE = 16000  # Hz, the rate every backend here runs at


class BackendUnavailable(UserError):
    """A backend whose package or platform is missing: the message says why and what to use instead."""


def package_version(distribution: str) -> str:
    """Installed version of ``distribution`` (``"not installed"`` when absent)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def frame_count(num_samples: int, hop: int) -> int:
    """Frames of ``hop`` samples covering ``num_samples`` (a partial last frame counts)."""
    return max(1, -(-int(num_samples) // hop))


def frames_of(audio: np.ndarray, hop: int) -> np.ndarray:
    """``(T,)`` -> ``(F, hop)``, the last frame zero-padded."""
    n = frame_count(len(audio), hop)
    padded = np.zeros(n * hop, dtype=np.float32)
    padded[: len(audio)] = audio
    return padded.reshape(n, hop)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16 PCM (clipped), what the native VADs read."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def silero_model_path(filename: str) -> Path:
    """A model file shipped in the silero-vad package (``silero_vad/data/``).

    Located without importing ``silero_vad``: its ``__init__`` imports torch (seconds), which the
    ONNX path does not need.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("silero_vad is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / filename
        if path.is_file():
            return path
    raise FileNotFoundError(f"silero_vad/data/{filename} not found")


class VadBackend(abc.ABC):
    """Frame-level speech probabilities of mono 16 kHz audio."""

    name: tp.ClassVar[str] = "vad"
    sample_rate: tp.ClassVar[int] = SAMPLE_RATE
    #: hop between consecutive probabilities, in samples at :attr:`sample_rate`
    frame_samples: int = 512

    @property
    def frame_s(self) -> float:
        """Hop between probabilities in seconds."""
        return self.frame_samples / self.sample_rate

    @abc.abstractmethod
    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """``(T,)`` float32 at :attr:`sample_rate` -> ``(ceil(T / frame_samples),)`` float32 in [0, 1]."""

    def probabilities_batch(self, audios: tp.Sequence[np.ndarray]) -> list[np.ndarray]:
        """Several independent files at once; each result equals :meth:`probabilities` of that file."""
        return [self.probabilities(a) for a in audios]

    @abc.abstractmethod
    def describe(self) -> dict[str, tp.Any]:
        """What produced the probabilities: ``name``, ``version``, ``frame_s``, ``parameters`` (+ model),
        and ``tested_version`` / ``as_tested``: whether it is the release unitwave's accuracy and speed
        benchmarks were measured with (:attr:`TESTED`)."""

    #: the ``version`` (and for models, ``model_sha256``) the benchmarks were measured with
    TESTED: tp.ClassVar[dict[str, str]] = {}

    def pinned(self, info: dict[str, tp.Any]) -> dict[str, tp.Any]:
        """``info`` plus ``tested_version`` and ``as_tested`` (every pinned key equal)."""
        as_tested = all(info.get(k) == v for k, v in self.TESTED.items())
        return {**info, "tested_version": self.TESTED.get("version"), "as_tested": as_tested}


class SileroVad(VadBackend):
    """silero-vad's ONNX model run with onnxruntime, as silero's own ``OnnxWrapper`` does.

    Stateful 512-sample windows at 16 kHz; each window is fed with the 64 samples before it as context
    and the LSTM state of the previous window. Several files run in lockstep as one batch (each with
    its own state), which is ~2.5x faster per window than one file at a time on one core.
    """

    name = "silero"
    frame_samples = 512
    CONTEXT = 64  # samples of the previous window prepended to each window
    MODEL = "silero_vad.onnx"  # opset 16, 8 and 16 kHz; the file silero's load_silero_vad(onnx=True) uses
    TESTED: tp.ClassVar[dict[str, str]] = {
        "version": "silero-vad 6.2.3",
        "model_sha256": "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    }

    def __init__(self, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise BackendUnavailable(
                "the silero VAD backend needs onnxruntime: pip install 'unitwave[vad]' "
                "(or use --vad-backend energy, which needs nothing extra)"
            ) from None
        try:
            data = silero_model_path(self.MODEL).read_bytes()
        except FileNotFoundError:
            raise BackendUnavailable(
                f"the silero VAD backend needs the silero-vad package, which ships {self.MODEL}: "
                "pip install 'unitwave[vad]' (or use --vad-backend energy or --vad-backend webrtc)"
            ) from None
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            data, sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.model_sha256 = hashlib.sha256(data).hexdigest()
        self.threads = threads

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        return self.probabilities_batch([audio])[0]

    def probabilities_batch(self, audios: tp.Sequence[np.ndarray]) -> list[np.ndarray]:
        if not audios:
            return []
        hop, ctx = self.frame_samples, self.CONTEXT
        counts = [frame_count(len(a), hop) for a in audios]
        steps = max(counts)
        batch = np.zeros((len(audios), steps * hop), dtype=np.float32)  # [B, T], zero-padded at the end
        for b, a in enumerate(audios):
            batch[b, : len(a)] = a
        state = np.zeros((2, len(audios), 128), dtype=np.float32)  # [2, B, 128] LSTM (h, c)
        context = np.zeros((len(audios), ctx), dtype=np.float32)  # [B, 64]
        rate = np.array(self.sample_rate, dtype=np.int64)
        out = np.empty((len(audios), steps), dtype=np.float32)  # [B, F]
        for i in range(steps):
            window = np.concatenate([context, batch[:, i * hop : (i + 1) * hop]], axis=1)  # [B, 576]
            prob, state = self.session.run(None, {"input": window, "state": state, "sr": rate})
            out[:, i] = prob[:, 0]
            context = window[:, -ctx:]
        return [out[b, :n].copy() for b, n in enumerate(counts)]

    def describe(self) -> dict[str, tp.Any]:
        return self.pinned(
            {
                "name": self.name,
                "version": f"silero-vad {package_version('silero-vad')}",
                "model": self.MODEL,
                "model_sha256": self.model_sha256,
                "runtime": f"onnxruntime {package_version('onnxruntime')}",
                "frame_s": self.frame_s,
                "parameters": {"window_samples": self.frame_samples, "context_samples": self.CONTEXT},
            }
        )


class TenVad(VadBackend):
    """TEN VAD (``ten-vad``): a small native model, 16 kHz int16 hops of 256 (or 160) samples."""

    name = "ten"
    TESTED: tp.ClassVar[dict[str, str]] = {"version": "ten-vad 1.0.6.9"}

    def __init__(self, hop_samples: int = 256) -> None:
        if not (platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")):
            raise BackendUnavailable(
                f"the ten VAD backend ships a native library for Linux x86_64 only; this machine is "
                f"{platform.system()} {platform.machine()}: use --vad-backend silero (or webrtc, energy)"
            )
        try:
            from ten_vad import TenVad as _TenVad
        except ImportError:
            raise BackendUnavailable(
                "the ten VAD backend needs the ten-vad package: pip install 'unitwave[ten]' "
                "(or use --vad-backend silero)"
            ) from None
        except OSError as e:  # the native library failed to load (usually libc++ is missing)
            raise BackendUnavailable(
                f"ten-vad's native library did not load ({e}); on Debian/Ubuntu install libc++1 "
                "(apt-get install libc++1), or use --vad-backend silero"
            ) from None
        if hop_samples not in (160, 256):
            raise ValueError(f"ten VAD hop must be 160 or 256 samples, got {hop_samples}")
        self._factory = _TenVad
        self.frame_samples = hop_samples
        try:
            self._factory(hop_samples, 0.5)
        except OSError as e:
            raise BackendUnavailable(
                f"ten-vad's native library did not load ({e}); on Debian/Ubuntu install libc++1, "
                "or use --vad-backend silero"
            ) from None

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        pcm = to_int16(frames_of(audio, self.frame_samples))  # [F, hop], C-contiguous rows
        vad = self._factory(self.frame_samples, 0.5)  # a fresh handle: no state from another file
        out = np.fromiter((vad.process(row)[0] for row in pcm), dtype=np.float32, count=len(pcm))
        del vad  # destroys the native handle
        return out

    def describe(self) -> dict[str, tp.Any]:
        return self.pinned(
            {
                "name": self.name,
                "version": f"ten-vad {package_version('ten-vad')}",
                "frame_s": self.frame_s,
                "parameters": {"hop_samples": self.frame_samples},
            }
        )


class WebrtcVad(VadBackend):
    """WebRTC's VAD (``webrtcvad-wheels``): a speech/non-speech decision (1.0 / 0.0) per frame.

    ``mode`` 0-3 is the aggressiveness in filtering out non-speech (3 keeps the least).
    """

    name = "webrtc"
    TESTED: tp.ClassVar[dict[str, str]] = {"version": "webrtcvad-wheels 2.0.14.post1"}

    def __init__(self, mode: int = 3, frame_ms: int = 30) -> None:
        try:
            import webrtcvad
        except ImportError:
            raise BackendUnavailable(
                "the webrtc VAD backend needs webrtcvad-wheels: pip install 'unitwave[vad]' "
                "(or use --vad-backend energy, which needs nothing extra)"
            ) from None
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtc VAD mode must be 0, 1, 2 or 3, got {mode}")
        if frame_ms not in (10, 20, 30):
            raise ValueError(f"webrtc VAD frames must be 10, 20 or 30 ms, got {frame_ms}")
        self._module = webrtcvad
        self.mode = mode
        self.frame_ms = frame_ms
        self.frame_samples = self.sample_rate * frame_ms // 1000

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        vad = self._module.Vad(self.mode)  # fresh noise statistics for every file
        pcm = to_int16(frames_of(audio, self.frame_samples))  # [F, hop]
        return np.fromiter(
            (vad.is_speech(row.tobytes(), self.sample_rate) for row in pcm), dtype=np.float32, count=len(pcm)
        )

    def describe(self) -> dict[str, tp.Any]:
        return self.pinned(
            {
                "name": self.name,
                "version": f"webrtcvad-wheels {package_version('webrtcvad-wheels')}",
                "frame_s": self.frame_s,
                "parameters": {"mode": self.mode, "frame_ms": self.frame_ms},
            }
        )


class EnergyVad(VadBackend):
    """Frame RMS level in dBFS (0 dBFS = full-scale square wave) against ``threshold_db``.

    The level maps to a probability with a logistic curve centred on the threshold,
    ``p = 1 / (1 + exp(-(dB - threshold_db) / slope_db))``, so the shared post-processing applies
    unchanged: p >= 0.5 exactly when the frame is at or above ``threshold_db``, and the default exit
    threshold (0.35) lies ``0.62 * slope_db`` dB below it.

    ``floor_margin_db`` makes the threshold follow the noise: it becomes
    ``max(threshold_db, noise floor + floor_margin_db)``, the noise floor being the 10th percentile of
    the file's frame levels (this assumes at least 10 % of the file is pause).
    """

    name = "energy"
    FLOOR_PERCENTILE = 10.0

    def __init__(
        self,
        threshold_db: float = -40.0,
        frame_ms: int = 10,
        slope_db: float = 2.0,
        floor_margin_db: float | None = None,
    ) -> None:
        if frame_ms <= 0 or slope_db <= 0:
            raise ValueError(f"energy VAD needs frame_ms > 0 and slope_db > 0, got {frame_ms}, {slope_db}")
        self.threshold_db = float(threshold_db)
        self.frame_ms = int(frame_ms)
        self.slope_db = float(slope_db)
        self.floor_margin_db = floor_margin_db
        self.frame_samples = self.sample_rate * self.frame_ms // 1000

    def levels_db(self, audio: np.ndarray) -> np.ndarray:
        """``(T,)`` -> ``(F,)`` frame RMS in dBFS (a padded last frame is measured on its real samples)."""
        frames = frames_of(audio, self.frame_samples).astype(np.float64)
        power = np.einsum("ft,ft->f", frames, frames)
        counts = np.full(len(frames), self.frame_samples, dtype=np.float64)
        counts[-1] = max(1, len(audio) - (len(frames) - 1) * self.frame_samples)
        return 10.0 * np.log10(power / counts + 1e-12)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        level = self.levels_db(audio)
        threshold = self.threshold_db
        if self.floor_margin_db is not None:
            threshold = max(
                threshold, float(np.percentile(level, self.FLOOR_PERCENTILE)) + self.floor_margin_db
            )
        z = np.clip((level - threshold) / self.slope_db, -50.0, 50.0)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def describe(self) -> dict[str, tp.Any]:
        return self.pinned(
            {
                "name": self.name,
                "version": f"numpy {package_version('numpy')}",
                "frame_s": self.frame_s,
                "parameters": {
                    "threshold_db": self.threshold_db,
                    "frame_ms": self.frame_ms,
                    "slope_db": self.slope_db,
                    "floor_margin_db": self.floor_margin_db,
                },
            }
        )


#: backends by name (``--vad-backend``); the first is the default
BACKENDS: dict[str, type[VadBackend]] = {
    "silero": SileroVad,
    "ten": TenVad,
    "webrtc": WebrtcVad,
    "energy": EnergyVad,
}


def load_backend(name: str, **params: tp.Any) -> VadBackend:
    """Build backend ``name`` with its own ``params``; ValueError listing the names for an unknown one."""
    cls = BACKENDS.get(name)
    if cls is None:
        raise ValueError(f"unknown VAD backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return cls(**params)
