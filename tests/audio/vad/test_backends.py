"""VAD backends on synthetic speech with known silences: shapes, accuracy, state, batching, errors."""

from __future__ import annotations

import typing as tp
from pathlib import Path

import numpy as np
import pytest

from unitwave.audio.io import load_audio
from unitwave.audio.vad import (
    BACKENDS,
    BackendUnavailable,
    FrameCounts,
    VadOptions,
    detect_speech,
    load_backend,
)
from unitwave.audio.vad.backends import EnergyVad, SileroVad, TenVad, silero_model_path
from unitwave.audio.vad.options import BackendName
from unitwave.data.manifest import iter_jsonl
from unitwave.testing.corpus import CorpusConfig, build_corpus, load_vad

RATE = 16000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[np.ndarray, dict]]:
    """Four utterances of three sentences with 0.6-1.0 s pauses: ``[(audio, truth)]``."""
    info = build_corpus(
        CorpusConfig(
            tmp_path_factory.mktemp("vad-corpus"),
            utterances=4,
            sentences_per_utterance=(3, 3),
            pause_seconds=(0.6, 1.0),
            edge_silence_seconds=(0.3, 0.5),
        )
    )
    truth = load_vad(info.vad)
    return [
        (load_audio(info.root / r["audio_filepath"])[0], truth[r["id"]]) for r in iter_jsonl(info.manifest)
    ]


@pytest.fixture(scope="module")
def backends() -> dict[str, tp.Any]:
    return {name: load_backend(name) for name in BACKENDS}


def test_option_choices_are_the_backend_table() -> None:
    assert set(tp.get_args(BackendName)) == set(BACKENDS)
    assert next(iter(BACKENDS)) == VadOptions().vad_backend == "silero"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_probabilities_shape_and_range(name: str, backends: dict, speech: list) -> None:
    backend = backends[name]
    audio = speech[0][0]
    probs = backend.probabilities(audio)
    assert probs.dtype == np.float32 and probs.ndim == 1
    assert len(probs) == -(-len(audio) // backend.frame_samples)
    assert probs.min() >= 0.0 and probs.max() <= 1.0
    info = backend.describe()
    assert info["name"] == name and info["version"] and "not installed" not in info["version"]
    assert info["frame_s"] == pytest.approx(backend.frame_samples / RATE)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_each_backend_finds_the_sentences(name: str, backends: dict, speech: list) -> None:
    options = VadOptions(vad_backend=name)  # type: ignore[arg-type]
    counts = FrameCounts()
    for audio, truth in speech:
        found = detect_speech(audio, RATE, options, backends[name])
        counts.add(found, truth["speech"], len(audio) / RATE)
        for start, end in truth["speech"]:  # every sentence is found, where it is
            overlap = np.minimum(found[:, 1], end) - np.maximum(found[:, 0], start)
            assert overlap.clip(0).sum() > 0.8 * (end - start), (name, start, end, found)
        for start, end in truth["pauses"]:  # no pause of >= 0.6 s is taken for speech throughout
            inside = np.minimum(found[:, 1], end) - np.maximum(found[:, 0], start)
            assert inside.max(initial=0.0) < end - start - 0.2, (name, start, end, found)
    assert counts.f1 > 0.93, (name, counts)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_silence_and_a_file_shorter_than_one_frame(name: str, backends: dict) -> None:
    backend = backends[name]
    assert (
        len(detect_speech(np.zeros(3 * RATE, np.float32), RATE, VadOptions(vad_backend=name), backend)) == 0
    )  # type: ignore[arg-type]
    tiny = (0.3 * np.sin(np.arange(100) / 5)).astype(np.float32)  # 6 ms, less than every backend's frame
    probs = backend.probabilities(tiny)
    assert probs.shape == (1,) and 0.0 <= probs[0] <= 1.0
    assert len(detect_speech(tiny, RATE, VadOptions(vad_backend=name), backend)) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_file_never_depends_on_the_one_before(name: str, backends: dict, speech: list) -> None:
    backend = backends[name]
    first = backend.probabilities(speech[1][0])
    backend.probabilities(speech[2][0])
    np.testing.assert_array_equal(backend.probabilities(speech[1][0]), first)


def test_silero_batch_equals_files_alone(backends: dict, speech: list) -> None:
    silero = backends["silero"]
    audios = [
        speech[0][0],
        speech[1][0][: RATE * 2 + 77],
        speech[2][0],
    ]  # different lengths, padded in lockstep
    batch = silero.probabilities_batch(audios)
    for audio, probs in zip(audios, batch):
        alone = silero.probabilities(audio)
        assert probs.shape == alone.shape
        np.testing.assert_allclose(probs, alone, atol=1e-5)
    assert silero.probabilities_batch([]) == []


def test_silero_matches_silero_vads_own_onnx_wrapper(backends: dict, speech: list) -> None:
    """Same model file, same windows, context and state handling as silero's OnnxWrapper (which needs torch)."""
    torch = pytest.importorskip("torch")
    from silero_vad.utils_vad import OnnxWrapper

    reference = OnnxWrapper(str(silero_model_path(SileroVad.MODEL)), force_onnx_cpu=True)
    audio = speech[0][0][: RATE * 3 + 100]
    expected = reference.audio_forward(torch.from_numpy(audio.copy()), RATE).numpy()[0]
    np.testing.assert_allclose(backends["silero"].probabilities(audio), expected, atol=1e-6)


def test_energy_threshold_is_in_dbfs_and_can_follow_the_noise_floor() -> None:
    t = np.arange(2 * RATE) / RATE
    tone = np.sqrt(2) * 10 ** (-30 / 20) * np.sin(2 * np.pi * 300 * t)  # RMS -30 dBFS
    levels = EnergyVad().levels_db(tone.astype(np.float32))
    assert np.allclose(levels[:-1], -30.0, atol=0.1)
    assert EnergyVad(threshold_db=-40).probabilities(tone.astype(np.float32)).min() > 0.99
    assert EnergyVad(threshold_db=-20).probabilities(tone.astype(np.float32)).max() < 0.01
    # speech bursts at -20 dBFS in noise at -30 dBFS: a fixed -40 dB rule calls everything speech,
    # a threshold 6 dB over the noise floor finds the bursts
    rng = np.random.default_rng(0)
    noisy = 10 ** (-30 / 20) * rng.standard_normal(4 * RATE)
    burst = slice(RATE, 2 * RATE)
    noisy[burst] += np.sqrt(2) * 10 ** (-20 / 20) * np.sin(2 * np.pi * 200 * t[:RATE])
    noisy = noisy.astype(np.float32)
    assert len(detect_speech(noisy, RATE, VadOptions(vad_backend="energy"))) == 1
    found = detect_speech(noisy, RATE, VadOptions(vad_backend="energy", energy_floor_margin_db=6.0))
    assert len(found) == 1 and abs(found[0, 0] - 1.0) < 0.05 and abs(found[0, 1] - 2.0) < 0.05


def test_detect_speech_resamples_other_rates(speech: list) -> None:
    from unitwave.audio.io import resample

    audio, _ = speech[0]
    at_16k = detect_speech(audio, RATE, VadOptions(vad_backend="energy"))
    at_44k = detect_speech(resample(audio, RATE, 44100), 44100, VadOptions(vad_backend="energy"))
    assert at_16k.shape == at_44k.shape and np.abs(at_16k - at_44k).max() < 0.03


def test_unknown_backend_and_bad_parameters_say_what_is_valid() -> None:
    with pytest.raises(ValueError, match="silero, ten, webrtc, energy"):
        load_backend("pyannote")
    with pytest.raises(ValueError, match="silero, ten, webrtc, energy"):
        VadOptions(vad_backend="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be 0, 1, 2 or 3"):
        VadOptions(vad_backend="webrtc", webrtc_mode=5).build()
    with pytest.raises(ValueError, match="10, 20 or 30 ms"):
        VadOptions(vad_backend="webrtc", webrtc_frame_ms=25).build()
    with pytest.raises(ValueError, match="threshold"):
        VadOptions(threshold=1.5)


def test_ten_on_an_unsupported_platform_names_the_alternative(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    with pytest.raises(BackendUnavailable, match="Linux x86_64 only.*--vad-backend silero"):
        TenVad()


def test_backends_are_built_lazily() -> None:
    """Importing the package loads no backend library (the CLI's --help stays instant)."""
    import subprocess
    import sys

    code = (
        "import sys, unitwave.audio.vad, unitwave.prepare.vad, unitwave.prepare.segment; "
        "print(sorted(m for m in ('onnxruntime', 'ten_vad', 'webrtcvad', 'torch', 'silero_vad') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_model_file_is_found_without_importing_silero_vad() -> None:
    path = silero_model_path(SileroVad.MODEL)
    assert isinstance(path, Path) and path.is_file() and path.stat().st_size > 1_000_000
