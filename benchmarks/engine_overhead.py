"""Engine overhead per record: a no-op stage through ``run_stage`` vs the bare minimum loop.

Baseline (same run): read each record, ``json.dumps`` it and append+flush it to a file: the I/O any
resumable writer must do. Target: engine overhead < 2 ms per record.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from common import report

N = 20_000


def main() -> None:
    from unitwave.engine.options import EngineConfig
    from unitwave.engine.runner import run_stage
    from unitwave.testing.stages import EchoStage

    tmp = Path(tempfile.mkdtemp(prefix="uw-bench-"))
    recs = [{"id": f"r{i:06d}", "audio_filepath": f"/data/{i}.wav", "duration": 3.0} for i in range(N)]

    t = time.perf_counter()
    with open(tmp / "plain.jsonl", "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
            f.flush()
    plain = time.perf_counter() - t

    t = time.perf_counter()
    run_stage(EchoStage(), lambda: iter(recs), tmp / "run", EngineConfig(workers=1, shards=4, progress=False))
    engine = time.perf_counter() - t

    t = time.perf_counter()
    run_stage(EchoStage(), lambda: iter(recs), tmp / "run", EngineConfig(workers=1, progress=False))
    resume = time.perf_counter() - t

    report("engine_overhead", {
        "records": N,
        "engine_ms_per_record": round(1000 * engine / N, 4),
        "plain_loop_ms_per_record": round(1000 * plain / N, 4),
        "overhead_ms_per_record": round(1000 * (engine - plain) / N, 4),
        "ratio_engine_vs_plain": round(engine / plain, 2),
        "resume_all_done_ms_per_record": round(1000 * resume / N, 4),
    }, "engine overhead < 2 ms per record")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
