"""F0 for the vocoder: WORLD DIO + StoneMask on CPU, pooled onto unit frames, cached, quantised.

Tracks are in Hz with ``0.0`` for unvoiced frames. A unit track has one value per unit frame: the
extractor runs every ``analysis_period_ms`` and each unit frame ``i`` (``[i * hop_s, (i + 1) * hop_s)``)
takes the geometric mean of the voiced analysis frames inside it, or 0 when fewer than half are voiced.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import typing as tp
import warnings
from pathlib import Path

import numpy as np

from unitwave.data.atomic import atomic_path
from unitwave.vocoder.config import PitchConfig


def import_pyworld() -> tp.Any:
    with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        try:
            import pyworld
        except ImportError as e:
            raise ImportError(
                "F0 extraction needs pyworld: pip install 'unitwave[vocoder]' (pyworld, setuptools<81)"
            ) from e
    return pyworld


def world_f0(
    audio: np.ndarray,
    sample_rate: int,
    period_ms: float = 5.0,
    floor_hz: float = 40.0,
    ceil_hz: float = 800.0,
) -> np.ndarray:
    """F0 in Hz every ``period_ms`` (frame ``k`` at ``k * period_ms``), 0 where unvoiced; ``(frames,)``.

    ``audio`` is ``(T,)`` float samples; DIO finds candidates, StoneMask refines them.
    """
    pw = import_pyworld()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"world_f0 expects mono (T,) audio, got shape {x.shape}")
    f0, times = pw.dio(x, sample_rate, f0_floor=floor_hz, f0_ceil=ceil_hz, frame_period=period_ms)
    f0 = pw.stonemask(x, f0, times, sample_rate)
    f0[~np.isfinite(f0)] = 0.0
    return f0.astype(np.float32)


def pool_to_frames(f0: np.ndarray, period_s: float, hop_s: float, num_frames: int) -> np.ndarray:
    """Pool an analysis track (frame ``k`` at ``k * period_s``) onto ``num_frames`` frames of ``hop_s``.

    A frame is voiced when at least half its analysis frames are; its value is their geometric mean.
    Frames past the end of the analysis track are unvoiced. Returns ``(num_frames,)`` float32 Hz.
    """
    times = np.arange(len(f0)) * period_s
    index = np.floor(times / hop_s + 1e-9).astype(np.int64)
    keep = index < num_frames
    index, values = index[keep], f0[keep]
    voiced = values > 0
    total = np.bincount(index, minlength=num_frames)
    count = np.bincount(index[voiced], minlength=num_frames)
    log_sum = np.bincount(index[voiced], weights=np.log(values[voiced]), minlength=num_frames)
    out = np.zeros(num_frames, dtype=np.float32)
    ok = (count > 0) & (2 * count >= total)
    out[ok] = np.exp(log_sum[ok] / count[ok])
    return out


def unit_f0(
    audio: np.ndarray, sample_rate: int, hop_s: float, num_frames: int, cfg: PitchConfig
) -> np.ndarray:
    """F0 of ``audio`` on ``num_frames`` unit frames of ``hop_s`` s: ``(num_frames,)`` Hz, 0 = unvoiced."""
    fine = world_f0(audio, sample_rate, cfg.analysis_period_ms, cfg.floor_hz, cfg.ceil_hz)
    return pool_to_frames(fine, cfg.analysis_period_ms / 1000.0, hop_s, num_frames)


def bin_edges_hz(cfg: PitchConfig) -> np.ndarray:
    """``voiced_bins + 1`` log-spaced edges from ``fmin_hz`` to ``fmax_hz``."""
    return np.exp(np.linspace(np.log(cfg.fmin_hz), np.log(cfg.fmax_hz), cfg.voiced_bins + 1))


def bin_centers_hz(cfg: PitchConfig) -> np.ndarray:
    """Geometric centre of each voiced bin; index ``b - 1`` for bin ``b``. ``(voiced_bins,)`` Hz."""
    edges = bin_edges_hz(cfg)
    return np.sqrt(edges[:-1] * edges[1:])


def quantize_f0(f0_hz: np.ndarray, cfg: PitchConfig) -> np.ndarray:
    """Hz -> bin index: 0 for unvoiced (``f0 <= 0``), ``1..voiced_bins`` for voiced (clipped to the range).

    Same shape as ``f0_hz``, int64.
    """
    f0 = np.asarray(f0_hz, dtype=np.float64)
    edges = bin_edges_hz(cfg)
    bins = np.clip(np.searchsorted(edges, f0, side="right") - 1, 0, cfg.voiced_bins - 1) + 1
    return np.where(f0 > 0, bins, 0).astype(np.int64)


def dequantize_f0(bins: np.ndarray, cfg: PitchConfig) -> np.ndarray:
    """Bin index -> Hz (bin centre; 0 for the unvoiced bin)."""
    b = np.asarray(bins, dtype=np.int64)
    centers = np.concatenate([[0.0], bin_centers_hz(cfg)])
    return centers[np.clip(b, 0, cfg.voiced_bins)].astype(np.float32)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


class F0Cache:
    """Unit-frame F0 tracks cached as ``<cache_dir>/<id>-<hash>.npy``.

    The hash covers the record id and everything that changes the track: extractor settings, unit hop,
    sample rate, frame count and the audio file's size and modification time. Writes are atomic.
    """

    def __init__(self, cache_dir: Path, cfg: PitchConfig, sample_rate: int) -> None:
        self.dir = Path(cache_dir)
        self.cfg = cfg
        self.sample_rate = sample_rate

    def path(self, record_id: str, audio_path: str | os.PathLike[str], hop_s: float, num_frames: int) -> Path:
        try:
            st = os.stat(audio_path)
            stamp = [st.st_size, st.st_mtime_ns]
        except OSError:
            stamp = [None, None]
        key = json.dumps(
            [
                record_id,
                str(audio_path),
                stamp,
                round(hop_s, 9),
                num_frames,
                self.sample_rate,
                "dio+stonemask",
                self.cfg.analysis_period_ms,
                self.cfg.floor_hz,
                self.cfg.ceil_hz,
            ],
            sort_keys=True,
        )
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
        return self.dir / f"{_safe_name(record_id)}-{digest}.npy"

    def get(
        self,
        record_id: str,
        audio_path: str | os.PathLike[str],
        hop_s: float,
        num_frames: int,
        load: tp.Callable[[], np.ndarray],
    ) -> np.ndarray:
        """The cached track, or ``unit_f0(load(), ...)`` computed and stored. ``(num_frames,)`` Hz."""
        path = self.path(record_id, audio_path, hop_s, num_frames)
        if path.is_file():
            try:
                track = np.load(path, allow_pickle=False)
                if track.shape == (num_frames,):
                    return track
            except (OSError, ValueError):
                pass  # a torn file: recompute
        track = unit_f0(load(), self.sample_rate, hop_s, num_frames, self.cfg)
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, track, allow_pickle=False)
        return track
