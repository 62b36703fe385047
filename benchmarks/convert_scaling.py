"""``unitwave convert`` throughput with 2 workers vs 1 (same files, same run). Target: >= 1.7x.

The corpus is about an hour of 44.1 kHz stereo FLAC, so the figure is throughput, not start-up; the
fixed cost of a run (interpreter, imports, spawning workers) is measured separately on a 2-file job.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from common import report

FILES = 600


def convert(src: Path, out: Path, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unitwave", "convert", str(src), str(out), "--workers", str(workers),
                    "--shards", "16"], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    from unitwave.testing.fixtures import tone

    tmp = Path(tempfile.mkdtemp(prefix="uw-bench-"))
    src = tmp / "in"
    src.mkdir()
    seconds = 0.0
    for i in range(FILES):
        x = tone(4.0 + (i % 5), 44100, 100 + i, seed=i, channels=2)
        sf.write(src / f"f{i:04d}.flac", x, 44100)
        seconds += len(x) / 44100
    one = min(convert(src, tmp / "o1", 1) for _ in range(2))
    two = min(convert(src, tmp / "o2", 2) for _ in range(2))
    tiny = tmp / "tiny"
    tiny.mkdir()
    for p in sorted(src.iterdir())[:2]:
        (tiny / p.name).write_bytes(p.read_bytes())
    start_one = min(convert(tiny, tmp / "t1", 1) for _ in range(2))
    start_two = min(convert(tiny, tmp / "t2", 2) for _ in range(2))
    report("convert_scaling", {
        "files": FILES,
        "audio_seconds": round(seconds, 1),
        "one_worker_s": round(one, 2),
        "two_workers_s": round(two, 2),
        "one_worker_audio_x_realtime": round(seconds / one, 1),
        "speedup_2_vs_1": round(one / two, 2),
        "fixed_cost_1_worker_s (2-file job)": round(start_one, 2),
        "fixed_cost_2_workers_s (2-file job)": round(start_two, 2),
    }, "speedup_2_vs_1 >= 1.7")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
