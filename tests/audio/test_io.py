"""Audio I/O: formats, resampling, slicing, mono, and one error type for every failure."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from unitwave.audio.io import AudioError, audio_info, load_audio, write_wav
from unitwave.testing.fixtures import tone, write_bad_inputs


@pytest.mark.parametrize("fmt, subtype, tol", [("WAV", "PCM_16", 1e-3), ("FLAC", "PCM_24", 1e-4),
                                               ("OGG", "VORBIS", 0.1), ("OGG", "OPUS", 0.2), ("MP3", "MPEG_LAYER_III", 0.2)])
def test_formats_load_as_mono_float32(tmp_path, fmt, subtype, tol):
    t48 = np.arange(96000) / 48000
    x = np.stack([0.3 * np.sin(2 * np.pi * 300 * t48), 0.2 * np.sin(2 * np.pi * 300 * t48)], 1).astype(np.float32)
    ext = {"WAV": "wav", "FLAC": "flac", "OGG": "ogg", "MP3": "mp3"}[fmt]
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 48000, format=fmt, subtype=subtype)
    y, sr = load_audio(path, 16000)
    assert sr == 16000 and y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 32000) <= 16000 * 0.06  # codecs add priming/padding
    if fmt in ("WAV", "FLAC"):
        assert len(y) == 32000
        ref = 0.25 * np.sin(2 * np.pi * 300 * np.arange(32000) / 16000)  # the mono mix, sampled at 16 kHz
        assert np.abs(y[1000:-1000] - ref[1000:-1000]).max() < tol


def test_slice_reads_exact_samples(tmp_path):
    x = np.arange(16000 * 3, dtype=np.float32) / 16000 / 4
    path = tmp_path / "ramp.flac"
    sf.write(path, x, 16000, subtype="PCM_24")
    y, _ = load_audio(path, 16000, offset=1.25, duration=0.5)
    assert len(y) == 8000
    np.testing.assert_allclose(y, x[20000:28000], atol=1e-6)
    y, _ = load_audio(path, None, offset=2.5)
    assert len(y) == 8000
    with pytest.raises(AudioError, match="past the end"):
        load_audio(path, 16000, offset=5.0)


def test_long_files_stream_through_the_resampler_with_the_same_samples(tmp_path):
    """Files longer than a decoding block are read, mixed and resampled block by block: the samples equal
    one whole-file read and one resampling call, slices included; a NaN in a late block is still found."""
    import soxr

    from unitwave.audio.io import BLOCK_FRAMES

    rng = np.random.default_rng(0)
    frames = 2 * BLOCK_FRAMES + 1234
    x = (0.1 * rng.standard_normal((frames, 2))).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    whole = soxr.resample(x.mean(axis=1, dtype=np.float32), 44100, 16000, quality="HQ")
    y, _ = load_audio(path, 16000)
    np.testing.assert_array_equal(y, whole)
    y2, _ = load_audio(path, 22050, mono=False)
    np.testing.assert_array_equal(y2, soxr.resample(x, 44100, 22050, quality="HQ"))
    start = BLOCK_FRAMES - 100
    part, _ = load_audio(path, 16000, offset=start / 44100, duration=BLOCK_FRAMES / 44100)
    np.testing.assert_array_equal(
        part, soxr.resample(x[start : start + BLOCK_FRAMES].mean(axis=1, dtype=np.float32), 44100, 16000)
    )
    x[-5, 1] = np.nan
    sf.write(path, x, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="1 NaN/Inf samples"):
        load_audio(path, 16000)


def test_write_wav_is_16_bit_and_clips(tmp_path):
    path = write_wav(tmp_path / "sub" / "o.wav", np.array([0.0, 0.5, 2.0, -3.0], dtype=np.float32), 16000)
    info = sf.info(path)
    assert info.subtype == "PCM_16" and info.samplerate == 16000
    y, _ = sf.read(path, dtype="float32")
    assert y.max() <= 1.0 and y.min() >= -1.0 and abs(y[1] - 0.5) < 1e-4
    assert not list((tmp_path / "sub").glob(".*"))


def test_every_bad_input_raises_audio_error_with_path_and_reason(tmp_path):
    expected = write_bad_inputs(tmp_path)
    for rel, outcome in expected.items():
        path = tmp_path / rel
        if outcome == "ok":
            y, sr = load_audio(path, 16000)
            assert sr == 16000 and len(y) > 0
            continue
        with pytest.raises(AudioError) as e:
            load_audio(path, 16000)
        assert e.value.path == str(path) and outcome in e.value.reason, (rel, e.value.reason)
    with pytest.raises(AudioError, match="file not found"):
        audio_info(tmp_path / "missing.wav")


def test_truncated_mp3_is_detected(tmp_path):
    path = tmp_path / "a.mp3"
    sf.write(path, tone(3.0, 16000), 16000, format="MP3")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path, 16000)
