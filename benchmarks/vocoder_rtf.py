"""Vocoder inference speed: unitwave's inference path vs the same HiFi-GAN written plainly, in one run.

Model: the V2 default (16 kHz, 20 ms units = hop 320, upsample 5-4-4-2-2, 512 channels, MRF 3/7/11,
pitch bins), random weights (speed does not depend on them), 8 utterances of 1-2.5 s.

- baseline "plain": the same generator with weight norm still attached, one utterance at a time, plain
  ``forward`` in eval mode under ``torch.no_grad``;
- reference "plain, autograd on": the same, without ``no_grad`` (what textlesslib's vocoder does);
- unitwave: ``Vocoder.from_dir`` (weight norm folded, decoder as channels-last 2-D convolutions on CPU,
  ``inference_mode``, utterances sorted by length and padded into masked batches), batch 1 and batch 8.

RTF = compute seconds / audio seconds (lower is faster); "x real time" = 1 / RTF. Wall times are the best
of N repeats; CPU-time ratios are printed too because other processes may share the cores. GPU figures
are added when CUDA is available.
"""

from __future__ import annotations

import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from unitwave.vocoder.config import VocoderConfig
from unitwave.vocoder.inference import Vocoder
from unitwave.vocoder.models import build_generator, save_vocoder
from unitwave.vocoder.pitch import quantize_f0

REPEATS = 3


def measure(fn: tp.Callable[[], tp.Any], sync: tp.Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(best wall seconds, best process CPU seconds) over REPEATS runs, after one warm-up run."""
    fn()
    sync()
    wall = cpu = float("inf")
    for _ in range(REPEATS):
        t, c = time.perf_counter(), time.process_time()
        fn()
        sync()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def run_device(
    device: str,
    threads: int | None,
    units: list[np.ndarray],
    f0_hz: list[np.ndarray],
    voc_dir: Path,
    audio_s: float,
) -> dict[str, tp.Any]:
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = VocoderConfig()
    plain = build_generator(cfg)
    from safetensors.torch import load_file

    plain.load_state_dict(load_file(str(voc_dir / "generator.safetensors")))
    plain = plain.to(device).eval()
    voc = Vocoder.from_dir(voc_dir, device=device)
    pairs = [
        (torch.from_numpy(u)[None].to(device), torch.from_numpy(quantize_f0(f, cfg.pitch))[None].to(device))
        for u, f in zip(units, f0_hz)
    ]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def plain_nograd() -> None:
        with torch.no_grad():
            for u, f in pairs:
                plain(u, f).cpu()

    def plain_autograd() -> None:
        for u, f in pairs:
            plain(u, f).detach().cpu()

    results = {
        "plain": measure(plain_nograd, sync),
        "plain_autograd": measure(plain_autograd, sync),
        "unitwave_b1": measure(lambda: voc.synthesize(units, f0=f0_hz, batch_size=1), sync),
        "unitwave_b8": measure(
            lambda: voc.synthesize(units, f0=f0_hz, batch_size=8), sync
        ),  # max_padding 0.2
    }
    # the optimised path must compute the same audio
    ref = [plain(u, f)[0, 0].detach().cpu().numpy() for u, f in pairs[:2]]
    got = voc.synthesize(units[:2], f0=f0_hz[:2])
    max_diff = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    base_wall, base_cpu = results["plain"]
    tag = f"{device}" + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
    out: dict[str, tp.Any] = {}
    for name, (wall, cpu) in results.items():
        out[f"{tag}: {name} RTF"] = round(wall / audio_s, 4)
        out[f"{tag}: {name} x real time"] = round(audio_s / wall, 2)
        if name != "plain":
            out[f"{tag}: {name} speed-up vs plain (wall)"] = round(base_wall / wall, 2)
            out[f"{tag}: {name} speed-up vs plain (CPU time)"] = round(base_cpu / cpu, 2)
    out[f"{tag}: max |difference| unitwave vs plain"] = f"{max_diff:.2e}"
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    cfg = VocoderConfig()
    frames = [int(rng.integers(50, 126)) for _ in range(8)]  # 1.0-2.5 s at 20 ms
    units = [rng.integers(0, cfg.hifigan.num_units, n) for n in frames]
    f0_hz = [np.where(rng.random(n) < 0.3, 0.0, rng.uniform(80, 300, n)) for n in frames]
    audio_s = sum(frames) * cfg.hop / cfg.sample_rate
    torch.manual_seed(0)
    metrics: dict[str, tp.Any] = {
        "audio seconds": round(audio_s, 2),
        "utterances": len(frames),
        "parameters (M)": round(sum(p.numel() for p in build_generator(cfg).parameters()) / 1e6, 2),
        "cpu cores": torch.get_num_threads(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        voc_dir = save_vocoder(Path(tmp) / "voc", build_generator(cfg), cfg)
        for threads in (1, torch.get_num_threads()) if torch.get_num_threads() > 1 else (1,):
            metrics.update(run_device("cpu", threads, units, f0_hz, voc_dir, audio_s))
        if torch.cuda.is_available():
            metrics.update(run_device("cuda", None, units, f0_hz, voc_dir, audio_s))
        else:
            metrics["gpu"] = "no CUDA device in this run"
    report(
        "vocoder_rtf",
        metrics,
        ">= 1.5x vs plain (same architecture, weight norm attached, unbatched); "
        "HiFi-GAN V1 paper: 1.43x real time on CPU",
    )


if __name__ == "__main__":
    main()
