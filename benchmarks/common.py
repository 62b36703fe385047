"""Shared helpers for benchmark scripts: timing, peak memory of a child process, result lines."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: tp.Callable[[], tp.Any], repeats: int = 3) -> float:
    """Best wall time in seconds over ``repeats`` runs (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peak_rss_mb(code: str) -> float:
    """Peak resident memory (MB) of a fresh Python process running ``code``."""
    wrapped = code + "\nimport resource, sys\nsys.stdout.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    out = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1]) / 1024.0


def report(name: str, metrics: dict[str, tp.Any], target: str) -> None:
    """Print one benchmark's figures and save them as JSON under benchmarks/results/."""
    print(f"== {name}")
    for k, v in metrics.items():
        print(f"   {k}: {v}")
    print(f"   target: {target}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"metrics": metrics, "target": target}, indent=2) + "\n")


def self_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
