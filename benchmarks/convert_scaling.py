"""``unitwave convert`` throughput with 2 workers vs 1 (same files, same run). Target: >= 1.7x."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from common import report

FILES = 160


def convert(src: Path, out: Path, workers: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unitwave", "convert", str(src), str(out), "--workers", str(workers),
                    "--shards", "8"], check=True, capture_output=True)
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
    report("convert_scaling", {
        "files": FILES,
        "audio_seconds": round(seconds, 1),
        "one_worker_s": round(one, 2),
        "two_workers_s": round(two, 2),
        "one_worker_audio_x_realtime": round(seconds / one, 1),
        "speedup_2_vs_1": round(one / two, 2),
    }, "speedup_2_vs_1 >= 1.7")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
