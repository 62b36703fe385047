"""``unitwave units quality CORPUS ALIGNMENTS``: how well units follow phones (HuBERT's cluster quality).

Each frame gets the phone whose aligned interval holds the frame's centre; frames outside every
interval (and labels in ``--ignore``) are left out. From the joint distribution ``p(y, z)`` of phones
``y`` and units ``z`` over those frames (Hsu et al. 2021, "HuBERT", section on cluster quality):

- phone purity   ``E_z[max_y p(y | z)]``: how much a unit pins down its phone;
- cluster purity ``E_y[max_z p(z | y)]``: how much a phone pins down its unit;
- PNMI           ``I(y; z) / H(y)``: the share of phone uncertainty a unit removes.

Without alignments: units per second (run-length deduplicated runs per audio second), unit usage
entropy over all frames (bits, and as a share of ``log2 k``) and dead units (never used).
"""

from __future__ import annotations

import dataclasses as dc
import json
import math
import typing as tp
from pathlib import Path

import numpy as np
import tyro

from unitwave.data.manifest import iter_jsonl
from unitwave.units.alignments import Segment, load_phone_alignments


@dc.dataclass(frozen=True)
class QualityConfig:
    """Phone purity, cluster purity, PNMI, units per second, usage entropy and dead units of a unit corpus."""

    corpus: tyro.conf.Positional[Path]
    """A <name>_corpus_timestamped.jsonl, or the encode run folder holding one."""
    alignments: tyro.conf.Positional[Path]
    """alignments.jsonl, CTM-like JSONL, .ctm, or a TextGrid file / folder of <id>.TextGrid."""
    output: tp.Optional[Path] = None
    """Where to write the report (default: quality.json next to the corpus)."""
    ignore: tuple[str, ...] = ()
    """Phone labels left out of purity and PNMI (e.g. sil)."""
    tier: str = "phones"
    """TextGrid tier holding the phones."""


def cluster_quality(counts: np.ndarray) -> dict[str, float]:
    """Phone purity, cluster purity, PNMI and H(phone) in bits from ``counts (phones, units)`` of frames."""
    total = counts.sum()
    if total <= 0:
        return {
            "phone_purity": math.nan,
            "cluster_purity": math.nan,
            "pnmi": math.nan,
            "phone_entropy_bits": math.nan,
        }
    p = counts / total
    py, pz = p.sum(1), p.sum(0)
    nz = p > 0
    mutual = float((p[nz] * np.log(p[nz] / np.outer(py, pz)[nz])).sum())
    h_phone = float(-(py[py > 0] * np.log(py[py > 0])).sum())
    return {
        "phone_purity": float(p.max(axis=0).sum()),
        "cluster_purity": float(p.max(axis=1).sum()),
        "pnmi": mutual / h_phone if h_phone > 0 else math.nan,
        "phone_entropy_bits": h_phone / math.log(2),
    }


def frame_segments(centres: np.ndarray, segments: list[Segment]) -> np.ndarray:
    """Index of the segment holding each centre time (seconds), -1 outside all segments; ``(T,)``."""
    if not segments:
        return np.full(len(centres), -1, dtype=np.int64)
    starts = np.array([s for s, _, _ in segments])
    ends = np.array([e for _, e, _ in segments])
    idx = np.searchsorted(starts, centres, side="right") - 1
    inside = (idx >= 0) & (centres < ends[np.maximum(idx, 0)])
    return np.where(inside, idx, -1)


def unit_quality(
    corpus: Path, alignments: dict[str, list[Segment]], ignore: tp.Iterable[str] = ()
) -> dict[str, tp.Any]:
    """Every metric of the module doc over a timestamped corpus file (streamed)."""
    skip = set(ignore)
    phones: dict[str, int] = {}
    phone_ids: list[np.ndarray] = []
    unit_ids: list[np.ndarray] = []
    unit_counts = np.zeros(0, dtype=np.int64)
    k = frames = runs = utterances = aligned = 0
    seconds = 0.0
    last_id = None
    for rec in iter_jsonl(Path(corpus)):
        units = np.asarray(rec["units"], dtype=np.int64)
        last_id = rec.get("id")
        k = max(k, int(rec.get("k") or 0), int(units.max()) + 1 if units.size else 0)
        if unit_counts.size < k:
            unit_counts = np.concatenate([unit_counts, np.zeros(k - unit_counts.size, dtype=np.int64)])
        unit_counts += np.bincount(units, minlength=unit_counts.size)
        utterances += 1
        frames += units.size
        runs += len(rec["runs"]) if "runs" in rec else int((np.diff(units) != 0).sum() + bool(units.size))
        seconds += float(rec.get("duration") or 0.0)
        segs = alignments.get(str(rec["id"]))
        if segs is None or units.size == 0:
            continue
        aligned += 1
        times = np.asarray(rec.get("times") or [], dtype=np.float64)
        if times.shape == (units.size, 2):
            centres = times.mean(axis=1)
        else:
            hop, offset = float(rec["frame_hop_s"]), float(rec.get("frame_offset_s") or 0.0)
            centres = offset + (np.arange(units.size) + 0.5) * hop
        seg_phone = np.array(
            [-1 if label in skip else phones.setdefault(label, len(phones)) for _, _, label in segs],
            dtype=np.int64,
        )
        idx = frame_segments(centres, segs)
        labelled = idx >= 0
        ids = np.where(labelled, seg_phone[np.maximum(idx, 0)], -1)
        keep = ids >= 0
        phone_ids.append(ids[keep])
        unit_ids.append(units[keep])
    if utterances == 0:
        raise ValueError(f"{corpus}: no utterances")
    if aligned == 0:
        raise ValueError(f"{corpus}: no utterance id is in the alignments (corpus ids look like {last_id!r})")
    y = np.concatenate(phone_ids) if phone_ids else np.zeros(0, dtype=np.int64)
    z = np.concatenate(unit_ids) if unit_ids else np.zeros(0, dtype=np.int64)
    counts = np.bincount(y * k + z, minlength=len(phones) * k).reshape(len(phones), k)
    usage = unit_counts / max(1, unit_counts.sum())
    entropy = float(-(usage[usage > 0] * np.log2(usage[usage > 0])).sum())
    report: dict[str, tp.Any] = cluster_quality(counts)
    report.update(
        {
            "k": k,
            "utterances": utterances,
            "aligned_utterances": aligned,
            "frames": frames,
            "labelled_frames": int(counts.sum()),
            "phones": len(phones),
            "ignored_labels": sorted(skip),
            "audio_seconds": round(seconds, 3),
            "units_per_second": runs / seconds if seconds else math.nan,
            "frames_per_second": frames / seconds if seconds else math.nan,
            "mean_run_frames": frames / runs if runs else math.nan,
            "unit_entropy_bits": entropy,
            "unit_entropy_normalized": entropy / math.log2(k) if k > 1 else math.nan,
            "used_units": int((unit_counts > 0).sum()),
            "dead_units": int((unit_counts == 0).sum()),
            "dead_unit_ids": np.flatnonzero(unit_counts == 0).tolist(),
        }
    )
    return report


def summary_line(report: dict[str, tp.Any]) -> str:
    return (
        f"units quality: PNMI {report['pnmi']:.3f}, phone purity {report['phone_purity']:.3f}, "
        f"cluster purity {report['cluster_purity']:.3f}, {report['units_per_second']:.1f} units/s, "
        f"usage entropy {report['unit_entropy_bits']:.2f} bits "
        f"({report['unit_entropy_normalized']:.2f} of log2 k), "
        f"{report['dead_units']}/{report['k']} dead units ({report['labelled_frames']} labelled frames, "
        f"{report['phones']} phones, "
        f"{report['aligned_utterances']}/{report['utterances']} utterances aligned)"
    )


def report_quality(
    corpus: Path, alignments: Path, output: Path, ignore: tp.Iterable[str] = (), tier: str = "phones"
) -> dict[str, tp.Any]:
    """Compute, write ``output`` (JSON, atomically) and print the summary line."""
    from unitwave.units.corpus import find_corpus

    corpus = find_corpus(corpus)
    report = unit_quality(corpus, load_phone_alignments(alignments, tier), ignore)
    report = {
        "corpus": str(Path(corpus).absolute()),
        "alignments": str(Path(alignments).absolute()),
        **report,
    }
    output = Path(output)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(json.dumps(_finite(report), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(output)
    print(summary_line(report), flush=True)
    return report


def _finite(value: tp.Any) -> tp.Any:
    """JSON has no NaN or infinity (strict parsers refuse them): undefined values become null, -0.0 is 0.0."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else value + 0.0
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def run(cfg: QualityConfig) -> dict[str, tp.Any]:
    from unitwave.units.corpus import find_corpus

    corpus = find_corpus(cfg.corpus)
    output = cfg.output or corpus.parent / "quality.json"
    return report_quality(corpus, cfg.alignments, output, cfg.ignore, cfg.tier)
