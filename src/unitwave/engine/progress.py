"""Progress read from the shard logs themselves, so it is the same for every backend.

The driver tails each ``shards/<k>.jsonl`` from where it last stopped, counting results and the audio
seconds of their outputs; tqdm shows records, ETA and audio-hours per wall hour.
"""

from __future__ import annotations

import json
import sys
import time
import typing as tp

from unitwave.engine.run_dir import RunDir


class LogProgress:
    def __init__(self, run: RunDir, total: int, already_done: int, enabled: bool = True, desc: str = "") -> None:
        self.run = run
        self.offsets: dict[int, int] = {}
        self.ok = 0
        self.failed = 0
        self.audio_seconds = 0.0
        self.t0 = time.time()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=already_done,
                desc=desc,
                unit="rec",
                dynamic_ncols=True,
                file=sys.stderr,
                disable=None,  # off when stderr is not a terminal
            )
        for k in range(run.num_shards):
            p = run.shard_log(k)
            self.offsets[k] = p.stat().st_size if p.exists() else 0

    def poll(self) -> None:
        new = 0
        for k, off in self.offsets.items():
            p = self.run.shard_log(k)
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                continue
            if size < off:  # a torn line was cut off on resume
                self.offsets[k] = off = size
            if size == off:
                continue
            with open(p, "rb") as f:
                f.seek(off)
                data = f.read(size - off)
            end = data.rfind(b"\n") + 1
            self.offsets[k] = off + end
            for raw in data[:end].splitlines():
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                new += 1
                if "out" in entry:
                    self.ok += 1
                    for r in entry["out"]:
                        d = r.get("duration")
                        if isinstance(d, (int, float)):
                            self.audio_seconds += float(d)
                else:
                    self.failed += 1
        if self.bar is not None and new:
            hours = time.time() - self.t0
            rate = self.audio_seconds / hours if hours > 0 else 0.0  # audio s per wall s == audio h per h
            self.bar.set_postfix_str(f"{rate:.1f} audio-h/h, {self.failed} failed", refresh=False)
            self.bar.update(new)

    def close(self) -> None:
        self.poll()
        if self.bar is not None:
            self.bar.close()

    def rates(self) -> dict[str, tp.Any]:
        wall = max(time.time() - self.t0, 1e-9)
        return {
            "wall_seconds": round(wall, 3),
            "records_per_second": round((self.ok + self.failed) / wall, 3),
            "audio_hours_per_hour": round(self.audio_seconds / wall, 3),
        }
