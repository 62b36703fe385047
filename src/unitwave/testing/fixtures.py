"""Small generated audio files for tests and benchmarks: good ones and every kind of bad one.

Everything is seeded; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(seconds: float, sample_rate: int = 16000, freq: float = 220.0, seed: int = 0, channels: int = 1) -> np.ndarray:
    """A harmonic tone with a little seeded noise, ``(T,)`` or ``(T, C)`` float32 in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2 * freq * t)
    x = x + 0.01 * rng.standard_normal(len(t))
    x = x.astype(np.float32)
    if channels > 1:
        x = np.stack([x * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return x


def write_good_inputs(folder: Path, count: int = 4, seconds: float = 1.5, sample_rate: int = 16000) -> list[Path]:
    """``count`` short WAV/FLAC/OGG/MP3 files (cycling formats) under ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"), ("mp3", "MP3", "MPEG_LAYER_III")]
    paths = []
    for i in range(count):
        ext, fmt, sub = kinds[i % len(kinds)]
        p = folder / f"good_{i:03d}.{ext}"
        sf.write(p, tone(seconds + 0.1 * i, sample_rate, 150 + 20 * i, seed=i), sample_rate, format=fmt, subtype=sub)
        paths.append(p)
    return paths


def write_bad_inputs(folder: Path, sample_rate: int = 16000) -> dict[str, str]:
    """Every kind of input a corpus throws at us; returns ``{relative path: expected outcome}``.

    Outcomes: ``"ok"`` (must convert) or a fragment of the error reason.
    """
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    x = tone(1.0, sample_rate)

    (folder / "zero_bytes.wav").write_bytes(b"")
    expected["zero_bytes.wav"] = "empty file"

    sf.write(folder / "full.wav", x, sample_rate, subtype="PCM_16")
    data = (folder / "full.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 2])
    (folder / "full.wav").unlink()
    expected["truncated.wav"] = "truncated"

    (folder / "not_audio.mp3").write_text("this is a text file, not an mp3\n" * 20)
    expected["not_audio.mp3"] = "not an audio file"

    nan = x.copy()
    nan[100:110] = np.nan
    sf.write(folder / "nan_samples.wav", nan, sample_rate, subtype="FLOAT")
    expected["nan_samples.wav"] = "NaN/Inf"

    sf.write(folder / "eight_channels_192k.wav", tone(0.5, 192000, channels=8), 192000, subtype="PCM_24")
    expected["eight_channels_192k.wav"] = "ok"

    spaced = folder / "with spaces" / "ação é ñ.wav"
    spaced.parent.mkdir(parents=True, exist_ok=True)
    sf.write(spaced, x, sample_rate, subtype="PCM_16")
    expected["with spaces/ação é ñ.wav"] = "ok"

    sf.write(folder / "header_only.wav", np.zeros(0, dtype=np.float32), sample_rate, subtype="PCM_16")
    expected["header_only.wav"] = "zero-length"
    return expected
