"""Pictures for report.html without plotting libraries: spectrogram PNGs (numpy + zlib), SVG line charts.

PNGs are written by hand (8-bit RGB, one IDAT chunk, filter 0), which every browser reads; charts are
inline SVG strings. Both embed in HTML as they are (``data:`` URI or markup).
"""

from __future__ import annotations

import base64
import html
import math
import struct
import typing as tp
import zlib

import numpy as np

#: colour map anchors (dark blue -> teal -> yellow, close to viridis), interpolated to 256 entries
_ANCHORS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
_LUT = np.stack(
    [
        np.interp(np.linspace(0, len(_ANCHORS) - 1, 256), np.arange(len(_ANCHORS)), _ANCHORS[:, c])
        for c in range(3)
    ],
    axis=1,
).astype(np.uint8)
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode ``(H, W, 3)`` uint8 as PNG."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def log_spectrogram(audio: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """``(bins, frames)`` magnitude in dB (Hann window)."""
    x = np.asarray(audio, dtype=np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)).T
    return 20.0 * np.log10(spec + 1e-8)


def _pool_axis(img: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Average ``img`` along ``axis`` into ``size`` cells (a cell repeats a source value when upsampling)."""
    n = img.shape[axis]
    a = np.minimum((np.arange(size) * n) // size, n - 1)
    b = np.maximum(((np.arange(size) + 1) * n) // size, a + 1)
    csum = np.concatenate([np.zeros_like(np.take(img, [0], axis=axis)), np.cumsum(img, axis=axis)], axis=axis)
    shape = [1] * img.ndim
    shape[axis] = size
    return (np.take(csum, b, axis=axis) - np.take(csum, a, axis=axis)) / (b - a).reshape(shape)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Average-pool (or repeat) a 2-D array to ``(height, width)``."""
    return _pool_axis(_pool_axis(img, height, 0), width, 1)


def spectrogram_png(
    audio: np.ndarray,
    width: int = 480,
    height: int = 120,
    top_db: float | None = None,
    range_db: float = 80.0,
) -> bytes:
    """Spectrogram of ``(T,)`` audio as a PNG (low frequencies at the bottom).

    ``top_db`` fixes the loudest colour (pass the original's so a pair shares one scale); values below
    ``top_db - range_db`` are the darkest colour.
    """
    spec = log_spectrogram(audio)
    top = float(spec.max()) if top_db is None else top_db
    img = _resize(np.clip((spec - (top - range_db)) / range_db, 0.0, 1.0), height, width)
    rgb = _LUT[np.clip((img[::-1] * 255).round().astype(int), 0, 255)]
    return png_bytes(np.ascontiguousarray(rgb))


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> tuple[list[float], int]:
    """About ``count`` round tick values (steps of 1, 2 or 5 x 10^n) inside ``[lo, hi]``, and the decimals
    that tell them apart; ``integer`` keeps steps >= 1 (epochs)."""
    span = hi - lo
    raw = span / max(1, count - 1) if span > 0 else 1.0
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10)), key=lambda st: abs(math.log(st / raw)))
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]
    decimals = 0 if integer else max(0, -math.floor(math.log10(step) + 1e-9))
    return ticks or [lo], decimals


def line_chart_svg(
    series: tp.Mapping[str, tuple[tp.Sequence[float], tp.Sequence[float]]],
    width: int = 480,
    height: int = 160,
    y_label: str = "",
    x_label: str = "",
    break_on_zero: bool = False,
) -> str:
    """Inline SVG with one polyline per series ``{name: (xs, ys)}``, axes ticks and a legend.

    ``break_on_zero`` splits lines at ``y <= 0`` (unvoiced F0 frames) and leaves those points out.
    """
    left, right, top, bottom = 48, 10, 18, 28
    pts = [
        (float(x), float(y))
        for xs, ys in series.values()
        for x, y in zip(xs, ys)
        if math.isfinite(float(y)) and (not break_on_zero or float(y) > 0)
    ]
    if not pts:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            '<text x="10" y="20">no data</text></svg>'
        )
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    if x1 == x0:
        x1 = x0 + 1.0
    pad = 0.05 * (y1 - y0) or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="10" '
            f'font-family="sans-serif"><rect x="{left}" y="{top}" width="{width - left - right}" '
            f'height="{height - top - bottom}" fill="none" stroke="#ccc"/>'
        )
    ]
    y_ticks, y_dec = nice_ticks(y0, y1)
    for yv in y_ticks:
        parts.append(f'<text x="{left - 4}" y="{sy(yv) + 3:.1f}" text-anchor="end">{yv:.{y_dec}f}</text>')
    whole = all(float(x).is_integer() for x, _ in pts)
    x_ticks, x_dec = nice_ticks(x0, x1, integer=whole)
    for xv in x_ticks:
        parts.append(
            f'<text x="{sx(xv):.1f}" y="{height - bottom + 12}" text-anchor="middle">{xv:.{x_dec}f}</text>'
        )
    if x_label:
        parts.append(
            f'<text x="{width - right}" y="{height - 4}" text-anchor="end">{html.escape(x_label)}</text>'
        )
    if y_label:
        parts.append(f'<text x="4" y="{top - 6}">{html.escape(y_label)}</text>')
    for n, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        runs: list[list[str]] = [[]]
        for x, y in zip(xs, ys):
            if not math.isfinite(float(y)) or (break_on_zero and float(y) <= 0):
                runs.append([])
                continue
            runs[-1].append(f"{sx(float(x)):.1f},{sy(float(y)):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.2" fill="{color}"/>')
            elif run:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.3" points="{" ".join(run)}"/>'
                )
        lx = left + 8 + 110 * n
        parts.append(
            f'<rect x="{lx}" y="4" width="10" height="3" fill="{color}"/>'
            f'<text x="{lx + 14}" y="9">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def f0_overlay_svg(
    f0_orig: np.ndarray, f0_synth: np.ndarray, frame_period_ms: float, width: int = 480
) -> str:
    """Original and resynthesized F0 (Hz) over time (s); unvoiced frames are gaps."""
    t = np.arange(max(len(f0_orig), len(f0_synth))) * frame_period_ms / 1000.0
    return line_chart_svg(
        {"original": (t[: len(f0_orig)], f0_orig), "resynthesized": (t[: len(f0_synth)], f0_synth)},
        width=width,
        y_label="F0 (Hz)",
        x_label="time (s)",
        break_on_zero=True,
    )
