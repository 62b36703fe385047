"""report.html: one page per evaluation, with no external resources.

The page holds the summary table, what each metric means, per-file rows with ``<audio>`` players
(original, resynthesized), spectrogram PNGs and F0 overlays, and training curves when a training log is
given. Images are embedded (base64 PNG, inline SVG). Audio is referenced relative to the page
(``audio/orig_XXXX.wav``), so the report works wherever the evaluation folder is copied; with
``embed_audio`` the WAVs are embedded too and the HTML file alone suffices.
"""

from __future__ import annotations

import dataclasses as dc
import html
import json
import math
import typing as tp
from pathlib import Path

from unitwave.data.atomic import atomic_write_text
from unitwave.eval.metrics import SUMMARY_METRICS
from unitwave.eval.plots import line_chart_svg

#: per-file columns of the report: (record key, header, decimals)
FILE_COLUMNS = (
    ("snr_db", "SNR dB", 2),
    ("mcd_db", "MCD dB", 2),
    ("f0_rmse_hz", "F0 RMSE Hz", 1),
    ("f0_rmse_cents", "F0 RMSE cents", 0),
    ("vde", "VDE", 3),
    ("gpe", "GPE", 3),
    ("ffe", "FFE", 3),
    ("length_ratio", "length ratio", 3),
)
_X_KEYS = ("epoch", "step", "global_step", "iteration")
#: training-log columns that are bookkeeping, not curves (best-so-far values, timings)
_BOOKKEEPING = frozenset({"seconds", "time", "wall_seconds", "elapsed", "epoch_seconds"})

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.files td{font-size:13px}.files td.meta{min-width:180px}.files img{display:block;margin-top:4px}
audio{width:100%;min-width:260px;display:block}.curves{display:flex;flex-wrap:wrap;gap:12px}
.curves b{display:block}.note{color:#555;font-size:13px}
pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto}
"""


@dc.dataclass(frozen=True)
class ReportRow:
    """One evaluated file as the report shows it."""

    index: int
    id: str
    metrics: dict[str, tp.Any]
    orig_audio: str  # src of the <audio> element: relative path or data: URI
    synth_audio: str
    orig_png: str  # data: URI
    synth_png: str
    f0_svg: str  # inline SVG


def _num(value: tp.Any, decimals: int = 3) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float) and not math.isfinite(value):
        return "&infin;" if value > 0 else "&minus;&infin;"
    if isinstance(value, (int, float)):
        return f"{value:.{decimals}f}"
    return html.escape(str(value))


def training_curves(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Numeric series of a training log JSON: ``{name: (x, y)}``.

    Accepts a list of per-epoch/step records (``{"epoch": 3, "mel_loss": 0.4, ...}``), a mapping with
    such a list under ``history``/``epochs``/``log``/``records``, or a mapping of name -> list of numbers.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a JSON training log ({e})") from None
    if isinstance(data, dict):
        for key in ("history", "epochs", "log", "records"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    series: dict[str, tuple[list[float], list[float]]] = {}
    if isinstance(data, list):
        for i, rec in enumerate(r for r in data if isinstance(r, dict)):
            x = next((float(rec[k]) for k in _X_KEYS if isinstance(rec.get(k), (int, float))), float(i))
            for name, value in rec.items():
                if (name in _X_KEYS or name in _BOOKKEEPING or name.startswith("best")
                        or isinstance(value, bool) or not isinstance(value, (int, float))):
                    continue
                xs, ys = series.setdefault(name, ([], []))
                xs.append(x)
                ys.append(float(value))
    elif isinstance(data, dict):
        for name, values in data.items():
            if isinstance(values, list) and values and all(isinstance(v, (int, float)) for v in values):
                series[name] = ([float(i) for i in range(len(values))], [float(v) for v in values])
    if not series:
        raise ValueError(f"{path}: no numeric series found (expected per-epoch records or lists of numbers)")
    return series


def _summary_table(summary: dict[str, dict[str, tp.Any]]) -> str:
    head = (
        "<tr><th>metric</th><th>mean</th><th>median</th><th>std</th><th>min</th><th>max</th><th>files</th>"
        "<th>users' target</th></tr>"
    )
    rows = []
    for key, target in SUMMARY_METRICS.items():
        s = summary.get(key, {})
        cells = "".join(
            f'<td class="num">{_num(s.get(k))}</td>' for k in ("mean", "median", "std", "min", "max")
        )
        files = f'{s.get("n", 0)}' + (f' (+{s["infinite"]} identical: &infin;)' if s.get("infinite") else "")
        rows.append(
            f'<tr><td>{key}</td>{cells}<td class="num">{files}</td>'
            f"<td>{html.escape(target)}</td></tr>"
        )
    return f'<table class="summary">{head}{"".join(rows)}</table>'


def _file_row(row: ReportRow) -> str:
    metrics = "".join(
        f"<div>{label}: <b>{_num(row.metrics.get(key), dec)}</b></div>" for key, label, dec in FILE_COLUMNS
    )
    return (
        f'<tr><td class="num">{row.index}</td>'
        f'<td class="meta"><div><b>{html.escape(row.id)}</b></div>{metrics}</td>'
        f'<td><audio class="orig" controls preload="none" src="{html.escape(row.orig_audio)}"></audio>'
        f'<img alt="original spectrogram" src="{row.orig_png}"></td>'
        f'<td><audio class="synth" controls preload="none" src="{html.escape(row.synth_audio)}"></audio>'
        f'<img alt="resynthesized spectrogram" src="{row.synth_png}"></td>'
        f"<td>{row.f0_svg}</td></tr>"
    )


def render_report(
    title: str,
    summary: dict[str, dict[str, tp.Any]],
    convention: dict[str, tp.Any],
    rows: tp.Sequence[ReportRow],
    counts: dict[str, int],
    curves: dict[str, tuple[list[float], list[float]]] | None = None,
) -> str:
    """The whole page as a string."""
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        (
            f'<p class="note">{counts.get("evaluated", 0)} files evaluated, {counts.get("failed", 0)} failed '
            f"(see errors.jsonl); every file's values are in test_results.csv and test_results.json.</p>"
        ),
        "<h2>Summary</h2>",
        _summary_table(summary),
    ]
    if curves:
        charts = "".join(
            f"<div><b>{html.escape(name)}</b>"
            f"{line_chart_svg({name: xy}, width=360, height=150, x_label='epoch')}</div>"
            for name, xy in curves.items()
        )
        parts += ["<h2>Training curves</h2>", f'<div class="curves">{charts}</div>']
    parts += ["<h2>Files</h2>"]
    if len(rows) < counts.get("evaluated", 0):
        parts.append(f'<p class="note">The first {len(rows)} files by index are shown.</p>')
    parts += [
        (
            '<table class="files"><tr><th>#</th><th>file and metrics</th><th>original</th>'
            "<th>resynthesized</th>"
            "<th>F0 (Hz)</th></tr>"
        ),
        *(_file_row(r) for r in rows),
        "</table>",
        "<h2>How the numbers are computed</h2>",
        f"<pre>{html.escape(json.dumps(convention, indent=2, ensure_ascii=False))}</pre>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(path: Path, page: str) -> Path:
    """Write ``page`` atomically."""
    return atomic_write_text(path, page)
