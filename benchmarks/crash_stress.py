"""Crash stress: SIGKILL a multi-worker ``convert`` 24 times at random points of its progress, then
finish it; the result must equal an uninterrupted run (ids, records, WAV bytes), with no duplicates.

Prints the kill count and the time of the interrupted+resumed job relative to the uninterrupted one.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf
from common import report

FILES = 300
KILLS = 24


def main() -> None:
    from unitwave.testing.crash import kill_when
    from unitwave.testing.fixtures import tone

    tmp = Path(tempfile.mkdtemp(prefix="uw-stress-"))
    src = tmp / "in"
    for i in range(FILES):
        p = src / f"d{i % 7}" / f"f{i:04d}.flac"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, tone(0.5 + (i % 9) * 0.3, 22050, 90 + i, seed=i), 22050)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "unitwave", "convert", str(src), str(tmp / "ref"), "--workers", "2",
                    "--shards", "6"], check=True, capture_output=True)
    clean = time.perf_counter() - t
    rng = random.Random(7)
    out = tmp / "out"
    args = ["convert", src, out, "--workers", "2", "--shards", "6"]
    t = time.perf_counter()
    kills = sum(kill_when(args, out, target) for target in sorted(rng.sample(range(1, FILES - 1), KILLS)))
    subprocess.run([sys.executable, "-m", "unitwave", *map(str, args)], check=True, capture_output=True)
    interrupted = time.perf_counter() - t
    ref = [json.loads(x) for x in (tmp / "ref" / "manifest.jsonl").read_text().splitlines()]
    got = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    same_records = got == ref
    same_bytes = all((out / a["audio_filepath"]).read_bytes() == (tmp / "ref" / b["audio_filepath"]).read_bytes()
                     for a, b in zip(got, ref))
    leftovers = len(list(out.rglob(".*.tmp")))
    report("crash_stress", {
        "files": FILES,
        "kills": kills,
        "records_equal": same_records,
        "wav_bytes_equal": same_bytes,
        "duplicates": len(got) - len({r["id"] for r in got}),
        "leftover_tmp_files": leftovers,
        "ratio_interrupted_vs_clean_time": round(interrupted / clean, 2),
    }, ">= 20 kills, records and bytes equal, no duplicates")
    shutil.rmtree(tmp)
    if not (same_records and same_bytes and kills >= 20 and leftovers == 0):
        sys.exit(1)


if __name__ == "__main__":
    main()
