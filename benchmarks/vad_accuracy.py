"""VAD and segmentation accuracy against ground truth, every backend, clean and noisy speech.

The synthetic corpus (espeak-ng, unitwave.testing.corpus) knows where every sentence starts and ends.
The same utterances are rendered clean and with white noise at 20 and 10 dB SNR; for each backend:

- frame-level precision / recall / F1 (10 ms frames) of ``unitwave vad``'s intervals (default options);
- for ``unitwave segment`` (default options, short segments kept so that every cut is visible): the
  share of true pauses >= 0.5 s holding a cut, the median / 90th percentile distance of those cuts from
  the pause's middle, and cuts that land in speech.

The energy backend at -40 dBFS is the users' current rule, the baseline of the same run;
``energy+floor`` is the same rule with the threshold raised to 6 dB over each file's noise floor.
Targets: silero and ten F1 >= 0.93 on clean speech; >= 95 % of pauses found by segment at 20 dB SNR.
"""

from __future__ import annotations

import dataclasses as dc
import itertools
import shutil
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np
from common import report

UTTERANCES = 40
CONDITIONS: dict[str, float | None] = {"clean": None, "snr20": 20.0, "snr10": 10.0}
MIN_PAUSE_S = 0.5


def corpus(root: Path, snr_db: float | None) -> tuple[list[tuple[str, np.ndarray]], dict[str, dict]]:
    """``[(id, audio 16 kHz)]`` and the ground truth of one rendering of the benchmark corpus."""
    from unitwave.audio.io import load_audio
    from unitwave.data.manifest import iter_jsonl
    from unitwave.testing.corpus import CorpusConfig, build_corpus, load_vad

    info = build_corpus(CorpusConfig(root, utterances=UTTERANCES, snr_db=snr_db, seed=7))
    audio = [(r["id"], load_audio(root / r["audio_filepath"])[0]) for r in iter_jsonl(info.manifest)]
    return audio, load_vad(info.vad)


def evaluate(
    vad_options: tp.Any, files: list[tuple[str, np.ndarray]], truth: dict[str, dict]
) -> dict[str, str]:
    """Frame scores of the vad defaults and pause cuts of the segment defaults, with ``vad_options``."""
    from unitwave.audio.vad import FrameCounts, plan_segments, speech_intervals
    from unitwave.prepare.segment import DEFAULT_MIN_PAUSE_S, SegmentConfig

    seg_cfg = SegmentConfig(Path("."), Path("."), short="keep", vad=vad_options)
    seg_options = dc.replace(vad_options, min_silence_s=DEFAULT_MIN_PAUSE_S)
    backend = vad_options.build()
    counts = FrameCounts()
    found = pauses = false_cuts = cuts_total = 0
    errors: list[float] = []
    t = time.perf_counter()
    for uid, audio in files:
        duration = len(audio) / 16000
        probs = backend.probabilities(audio)
        counts.add(
            speech_intervals(probs, backend.frame_s, duration, vad_options.rules()),
            truth[uid]["speech"],
            duration,
        )
        plan = plan_segments(
            probs, backend.frame_s, duration, seg_cfg.rules(), seg_options.rules(), audio=audio
        )
        segs = plan.segments
        cuts = [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(segs)]
        true_pauses = truth[uid]["pauses"]
        cuts_total += len(cuts)
        false_cuts += sum(1 for c in cuts if not any(s <= c <= e for s, e in true_pauses))
        for s, e in true_pauses:
            if e - s < MIN_PAUSE_S:
                continue
            pauses += 1
            inside = [c for c in cuts if s <= c <= e]
            if inside:
                found += 1
                errors.append(min(abs(c - (s + e) / 2) for c in inside))
    seconds = time.perf_counter() - t
    err = np.array(errors) * 1000 if errors else np.array([np.nan])
    return {
        "vad": f"P {counts.precision:.3f}  R {counts.recall:.3f}  F1 {counts.f1:.3f}",
        "segment": (
            f"pauses>=0.5s found {found / max(pauses, 1):.1%} ({found}/{pauses}), cut-to-middle "
            f"median {np.median(err):.0f} ms p90 {np.percentile(err, 90):.0f} ms, "
            f"cuts in speech {false_cuts}/{cuts_total}"
        ),
        "seconds": f"{seconds:.1f}",
    }


def main() -> None:
    from unitwave.audio.vad import BACKENDS, BackendUnavailable, VadOptions

    tmp = Path(tempfile.mkdtemp(prefix="uw-vad-acc-"))
    try:
        renderings = {name: corpus(tmp / name, snr) for name, snr in CONDITIONS.items()}
        audio_s = sum(len(a) for _, a in renderings["clean"][0]) / 16000
        metrics: dict[str, object] = {
            "utterances": UTTERANCES,
            "audio_seconds_per_condition": round(audio_s, 1),
        }
        variants = {name: VadOptions(vad_backend=name) for name in BACKENDS}  # type: ignore[arg-type]
        # the energy rule with its threshold 6 dB over each file's noise floor (--energy-floor-margin-db 6)
        variants["energy+floor"] = VadOptions(vad_backend="energy", energy_floor_margin_db=6.0)
        for label, options in variants.items():
            for cond, (files, truth) in renderings.items():
                try:
                    result = evaluate(options, files, truth)
                except BackendUnavailable as e:
                    metrics[label] = f"unavailable: {e}"
                    break
                metrics[f"{label} {cond} vad"] = result["vad"]
                metrics[f"{label} {cond} segment"] = result["segment"]
        metrics["baseline"] = "energy = the users' -40 dBFS rule"
        report(
            "vad_accuracy",
            metrics,
            "silero and ten F1 >= 0.93 clean; segment finds >= 95% of pauses >= 0.5 s at 20 dB SNR",
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
