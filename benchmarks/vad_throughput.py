"""``unitwave vad`` throughput in files per second per core: 17 s files, every backend, one run.

Two figures per backend, in files per CPU second (what one core does, whatever else the machine
runs; the wall-clock rates are printed next to them):

- ``in-process``: the stage's own code (decode the WAV, VAD, intervals, statistics) over the files in
  batches as the engine hands them out: the steady state of one worker;
- ``whole CLI``: the whole ``unitwave vad FOLDER OUT --workers 1`` command, Python start-up, shard
  logs, merge and the CSV/manifest outputs included.

The baseline measured in the same run is the ten backend (TEN VAD, the model the users' current tool
runs, at 3-6 files/s/core). Targets: silero >= 10 files/s/core; energy and webrtc >= 100.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import report

FILES = 160
FILE_S = 17.0
RATE = 16000


def make_files(root: Path) -> list[Path]:
    """``FILES`` WAVs of 17 s cut from a synthetic speech corpus (speech with pauses, like readings)."""
    from unitwave.audio.io import load_audio, write_wav
    from unitwave.data.manifest import iter_jsonl
    from unitwave.testing.corpus import CorpusConfig, build_corpus

    info = build_corpus(CorpusConfig(root / "corpus", utterances=24, seed=3))
    speech = np.concatenate(
        [load_audio(info.root / r["audio_filepath"])[0] for r in iter_jsonl(info.manifest)]
    )
    n = int(FILE_S * RATE)
    paths = []
    for i in range(FILES):
        start = (i * 7919 * RATE // 10) % (len(speech) - n)  # different cuts of the same speech
        path = root / "files" / f"d{i % 8}" / f"f{i:04d}.wav"
        write_wav(path, speech[start : start + n], RATE)
        paths.append(path)
    return paths


def in_process(backend: str, paths: list[Path]) -> tuple[float, float]:
    """Files per CPU second and per wall second of the vad stage's own code in this process."""
    from unitwave.audio.vad import VadOptions
    from unitwave.prepare.vad import VadStage

    stage = VadStage(VadOptions(vad_backend=backend), {}, {})  # type: ignore[arg-type]
    stage.setup()
    records = [{"id": p.stem, "audio_filepath": str(p)} for p in paths]
    stage.process(records[:8])  # warm-up: first-call allocations
    step = stage.max_batch_items
    cpu, wall = time.process_time(), time.perf_counter()
    for k in range(0, len(records), step):
        stage.process(records[k : k + step])
    return len(records) / (time.process_time() - cpu), len(records) / (time.perf_counter() - wall)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(backend: str, folder: Path, out: Path) -> tuple[float, float]:
    """Files per CPU second and per wall second of the whole command with one worker."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cpu, wall = children_cpu(), time.perf_counter()
    args = ["vad", str(folder), str(out), "--workers", "1", "--vad-backend", backend, "--name", "bench"]
    subprocess.run(
        [sys.executable, "-m", "unitwave", *args, "--no-progress"], check=True, capture_output=True, env=env
    )
    return FILES / (children_cpu() - cpu), FILES / (time.perf_counter() - wall)


def main() -> None:
    from unitwave.audio.vad import BACKENDS, BackendUnavailable

    tmp = Path(tempfile.mkdtemp(prefix="uw-vad-speed-"))
    try:
        paths = make_files(tmp)
        rates: dict[str, float] = {}
        metrics: dict[str, object] = {"files": FILES, "file_seconds": FILE_S, "cores_used": 1}
        for backend in BACKENDS:
            try:
                runs = [in_process(backend, paths) for _ in range(2)]
                whole = cli(backend, tmp / "files", tmp / "out")
            except BackendUnavailable as e:
                metrics[backend] = f"unavailable: {e}"
                continue
            per_cpu, per_wall = max(r[0] for r in runs), max(r[1] for r in runs)
            rates[backend] = per_cpu
            metrics[f"{backend} files/s/core"] = (
                f"{per_cpu:.1f} in-process ({per_cpu * FILE_S:.0f}x real time), {whole[0]:.1f} whole CLI "
                f"incl. start-up | wall clock on this shared machine: {per_wall:.1f} and {whole[1]:.1f}"
            )
        if "ten" in rates:
            for backend, fps in rates.items():
                if backend != "ten":
                    metrics[f"{backend} vs ten (same run)"] = f"{fps / rates['ten']:.2f}x"
        for backend, fps in rates.items():
            metrics[f"{backend} vs users' tool (3-6 files/s/core)"] = f"{fps / 6:.1f}x-{fps / 3:.1f}x"
        metrics["load average at the end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
        report("vad_throughput", metrics, "silero >= 10 files/s/core; energy and webrtc >= 100 files/s/core")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
