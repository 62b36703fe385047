"""Audio I/O: any format libsndfile reads (WAV, FLAC, OGG/Opus, MP3, ...) in, 16-bit PCM WAV out.

Every failure raises :class:`AudioError` with the path and a reason a user can act on. Loading returns
mono float32 in [-1, 1] at the requested sample rate (soxr), reading only the requested slice, decoded
and resampled in blocks so that memory holds the output only (30 min of 44.1 kHz stereo FLAC to 16 kHz
mono: 120 MB peak, the output itself, instead of 910 MB for a whole-file read).
"""

from __future__ import annotations

import os
import struct
import typing as tp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from unitwave.data.atomic import atomic_path


class AudioError(Exception):
    """An audio file that cannot be used: ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    """What the file's header says."""

    path: str
    sample_rate: int  # Hz
    channels: int
    frames: int  # samples per channel
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _check_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioError(path, "file not found") from None
    except OSError as e:
        raise AudioError(path, f"cannot access file ({e.strerror})") from None
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if st.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def _riff_truncation(path: Path) -> str | None:
    """For RIFF/WAVE files: a reason if the data chunk claims more bytes than the file holds.

    libsndfile silently shortens such files, so a crash-truncated WAV would pass as a shorter one.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, csize = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                if csize in (0, 0xFFFFFFFF):  # streaming writers leave the size unknown
                    return None
                missing = pos + 8 + csize - size
                if missing > 0:
                    return f"truncated WAV: header declares {csize} data bytes, file ends {missing} bytes short"
                return None
            pos += 8 + csize + (csize & 1)
    return None


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Header facts of an audio file; AudioError if it is not readable audio."""
    p = Path(path)
    _check_file(p)
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(p, f"not an audio file libsndfile can read ({_sf_reason(e)})") from None
    if info.frames <= 0:
        raise AudioError(p, "zero-length audio (no samples)")
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError(p, f"invalid header (sample rate {info.samplerate}, channels {info.channels})")
    return AudioInfo(str(p), info.samplerate, info.channels, info.frames, info.format, info.subtype)


def _sf_reason(e: Exception) -> str:
    msg = str(e)
    # libsndfile reports unknown formats opened by extension as "does not exist" - misleading here.
    if "does not exist or is not a regular file" in msg or "Format not recognised" in msg:
        return "format not recognised"
    return msg.split(": ", 1)[-1] if ": " in msg else msg


#: frames decoded at a time (about 10 s at 48 kHz)
BLOCK_FRAMES = 1 << 19


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = 16000,
    offset: float = 0.0,
    duration: float | None = None,
    mono: bool = True,
) -> tuple[np.ndarray, int]:
    """Read audio as float32.

    Args:
        path: any file libsndfile reads.
        sample_rate: target rate in Hz (soxr HQ); None keeps the file's rate.
        offset: start in seconds; only ``[offset, offset + duration)`` is read from disk.
        duration: seconds to read; None reads to the end.
        mono: average the channels.

    Returns:
        ``(audio, sample_rate)``; audio is ``(T,)`` if mono else ``(T, C)``.

    Raises:
        AudioError: missing, empty, truncated, not audio, NaN/Inf samples, zero length, bad slice.
    """
    p = Path(path)
    info = audio_info(p)
    if info.format == "WAV":
        reason = _riff_truncation(p)
        if reason:
            raise AudioError(p, reason)
    if offset < 0:
        raise AudioError(p, f"negative offset {offset}")
    start = int(round(offset * info.sample_rate))
    if start >= info.frames:
        raise AudioError(p, f"offset {offset:.3f} s is past the end ({info.duration:.3f} s)")
    stop = info.frames if duration is None else min(info.frames, start + int(round(duration * info.sample_rate)))
    want = stop - start
    if want <= 0:
        raise AudioError(p, f"zero-length slice (offset {offset}, duration {duration})")
    out_rate = info.sample_rate if sample_rate is None else sample_rate
    stream = None
    if out_rate != info.sample_rate:
        import soxr

        stream = soxr.ResampleStream(
            info.sample_rate, out_rate, 1 if mono else info.channels, dtype="float32", quality="HQ"
        )
    # decoded in blocks, mixed down and resampled as they come (soxr's stream gives the same samples as one
    # call) into one output buffer: memory holds the output, not the file at its own rate and channels
    channels = 1 if mono else info.channels
    capacity = -(-want * out_rate // info.sample_rate) + 64  # soxr's output is within a sample of want * ratio
    out = np.empty((capacity,) if mono else (capacity, channels), np.float32)
    filled = decoded = bad = 0

    def put(chunk: np.ndarray) -> None:
        nonlocal out, filled
        if filled + len(chunk) > len(out):  # never expected; grow rather than fail
            out = np.concatenate([out[:filled], np.empty((len(chunk),) + out.shape[1:], np.float32)])
        out[filled : filled + len(chunk)] = chunk
        filled += len(chunk)

    try:
        with sf.SoundFile(str(p)) as f:
            if start:
                f.seek(start)
            while decoded < want:
                block = f.read(min(BLOCK_FRAMES, want - decoded), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                decoded += block.shape[0]
                bad += int(block.size - np.isfinite(block).sum())
                if mono:
                    block = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
                put(block if stream is None else stream.resample_chunk(block))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise AudioError(p, f"cannot decode ({_sf_reason(e)}); the file is probably truncated or corrupt") from None
    if decoded == 0:
        raise AudioError(p, "zero-length audio (no samples decoded)")
    if decoded < want * 0.99 - 1:
        raise AudioError(
            p, f"truncated: header declares {want} frames here but only {decoded} could be decoded"
        )
    if bad:
        raise AudioError(p, f"{bad} NaN/Inf samples")
    if stream is not None:
        put(stream.resample_chunk(np.zeros((0,) if mono else (0, channels), np.float32), last=True))
    audio = out[:filled]
    return np.ascontiguousarray(audio, dtype=np.float32), out_rate


def load_record(record: tp.Mapping[str, tp.Any], sample_rate: int | None = 16000) -> np.ndarray:
    """A manifest record's audio, mono float32 ``(T,)`` at ``sample_rate``: the slice
    ``[offset, offset + duration)`` when the record has an ``offset`` (0.0 included), else the whole file
    (see :func:`unitwave.data.records.audio_slice`). ValueError without ``audio_filepath``."""
    from unitwave.data.records import audio_slice

    path = record.get("audio_filepath")
    if not isinstance(path, str) or not path:
        raise ValueError("record has no 'audio_filepath' field")
    offset, duration = audio_slice(record)
    audio, _ = load_audio(path, sample_rate, offset=offset, duration=duration)
    return audio


def resample(audio: np.ndarray, rate_in: int, rate_out: int, quality: str = "HQ") -> np.ndarray:
    """soxr resampling along time; ``audio`` is ``(T,)`` or ``(T, C)`` float32."""
    import soxr

    if rate_in == rate_out:
        return audio
    return soxr.resample(audio, rate_in, rate_out, quality=quality).astype(np.float32, copy=False)


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int) -> Path:
    """Write 16-bit PCM WAV atomically (temporary file + rename); samples are clipped to [-1, 1].

    ``audio`` is ``(T,)`` or ``(T, C)`` float. A crash never leaves a half-written file at ``path``.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    # one writer per output file (the engine's shard lock), so a fixed temporary name is safe and a
    # rerun after a crash overwrites and renames the leftover instead of leaving it behind
    channels = 1 if data.ndim == 1 else data.shape[1]
    with atomic_path(p, shared=False) as tmp:
        with sf.SoundFile(str(tmp), "w", samplerate=int(sample_rate), channels=channels, format="WAV",
                          subtype="PCM_16") as f:
            f.write(data)
    return p


def duration_of(path: str | os.PathLike[str]) -> float:
    """Seconds, from the header."""
    return audio_info(path).duration

