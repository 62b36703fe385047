"""``unitwave demo``: the whole pipeline on a synthetic corpus, as the commands a user would type.

Each step is printed (``$ unitwave ...``) and run through the real CLI in a subprocess, so the demo is
also the shortest correct tutorial. Rerunning resumes: finished stages skip their work.
"""

from __future__ import annotations

import dataclasses as dc
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import tyro


@dc.dataclass(frozen=True)
class DemoConfig:
    """Run every stage of unitwave on a synthetic espeak-ng corpus and write a report."""

    output_dir: tyro.conf.Positional[Path] = Path("runs/demo")
    """Where the corpus, every stage's run folder and the report go."""
    utterances: int = 24
    """Utterances in the synthetic corpus."""
    workers: int = 2
    """Worker processes for per-record stages."""


@dc.dataclass(frozen=True)
class DemoResult:
    exit_code: int
    report: Path


@dc.dataclass(frozen=True)
class Step:
    title: str
    args: tuple[str, ...]
    outputs: tuple[str, ...] = ()


def steps(cfg: DemoConfig) -> list[Step]:
    """The pipeline, in order; every path is inside ``cfg.output_dir``."""
    out = cfg.output_dir
    w = ("--workers", str(cfg.workers))
    corpus = out / "corpus"
    units = out / "units" / "demo"
    return [
        Step("Synthetic corpus (espeak-ng) with phone alignments and pause ground truth",
             ("demo-corpus", str(corpus), "--utterances", str(cfg.utterances)),
             (str(corpus / "manifest.jsonl"),)),
        Step("Convert to 16 kHz mono WAV (sharded, resumable)",
             ("convert", str(corpus / "manifest.jsonl"), str(out / "convert"), *w),
             (str(out / "convert" / "manifest.jsonl"),)),
        Step("Deterministic train/val/test split by a hash of each id",
             ("split", str(out / "convert" / "manifest.jsonl"), str(out / "splits"), "--ratios", "0.8", "0.1", "0.1"),
             (str(out / "splits" / "train.jsonl"),)),
        Step("Run status: shards done / partial / missing, records, errors, audio hours",
             ("status", str(out / "convert")), ()),
        Step("Speech statistics per file (VAD): CSV + sidecar, manifest with absolute paths, intervals",
             ("vad", str(corpus / "manifest.jsonl"), str(out / "vad"), "--name", "corpus", *w),
             (str(out / "vad" / "corpus.csv"), str(out / "vad" / "corpus.json"),
              str(out / "vad" / "corpus.segments.jsonl"))),
        Step("Segments cut in the middle of pauses (2-30 s, short ones merged)",
             ("segment", str(out / "vad" / "corpus.json"), str(out / "segments"), "--name", "corpus", *w),
             (str(out / "segments" / "corpus" / "manifest.jsonl"),)),
        Step("Discrete units: 50 Hz MFCC frames, k-means (k=50), timestamped corpus, PNMI against phones",
             ("units", str(out / "convert" / "manifest.jsonl"), str(out / "units"), "--name", "demo",
              "--encoder", "mfcc", "--frame-rate", "50", "--k", "50",
              "--alignments", str(corpus / "alignments.jsonl"), "--workers", "1"),
             (str(units / "kmeans"), str(units / "demo_units.txt"), str(units / "quality.json"))),
        Step("Motifs: SentencePiece BPE over unit runs",
             ("motifs", str(units / "demo_units.txt"), str(out / "motifs"), "--vocab-size", "200"),
             (str(out / "motifs" / "motif_analysis.json"),)),
        Step("Unit language model (LSTM) against unigram and bigram baselines",
             ("lm", "train", str(units / "demo_units.txt"), str(out / "lm"), "--epochs", "20",
              "--embedding-dim", "64", "--hidden-size", "128", "--num-layers", "1", "--batch-size", "4",
              "--lr", "0.01", "--val-ratio", "0.2", "--save-every", "0", "--no-progress-bar"),
             (str(out / "lm" / "metrics.json"),)),
        Step("Score every utterance with the LM (log-probability, bits per unit)",
             ("lm", "score", str(out / "lm"), str(units / "demo_corpus_timestamped.jsonl"), str(out / "lm" / "scores.jsonl")),
             (str(out / "lm" / "scores.jsonl"),)),
        Step("Continue a unit prompt with the LM",
             ("lm", "sample", str(out / "lm"), "--prompt", "1 1 2", "--length", "50", "--num-samples", "2",
              "--output", str(out / "lm" / "samples.txt")),
             (str(out / "lm" / "samples.txt"),)),
        Step("Grid search of LMs in parallel on the engine, ranked by validation perplexity",
             ("lm", "grid", str(out / "configs" / "demo-lm-grid.yaml"), str(units / "demo_units.txt"),
              str(out / "lm-grid"), *w),
             (str(out / "lm-grid" / "leaderboard.csv"),)),
        Step("Vocoder: a small F0-conditioned HiFi-GAN (checkpoints, samples, training_log.json, model/)",
             ("vocoder", "train", "--config", str(out / "configs" / "demo-vocoder.yaml"),
              "--units", str(units / "demo_corpus_timestamped.jsonl"),
              "--audio", str(out / "convert" / "manifest.jsonl"), str(out / "vocoder"), "--no-progress-bar"),
             (str(out / "vocoder" / "model" / "model_card.json"), str(out / "vocoder" / "training_log.json"))),
        Step("Resynthesis: audio -> units -> vocoder, folders kept under audio/",
             ("resynth", str(corpus / "manifest.jsonl"), str(out / "resynth"), "--units", str(units / "kmeans"),
              "--vocoder", str(out / "vocoder"), *w),
             (str(out / "resynth" / "manifest.jsonl"),)),
        Step("Resynthesis evaluation: SNR, MCD, F0 errors, length; report.html with players and curves",
             ("eval", "resynth", str(corpus / "manifest.jsonl"), str(out / "resynth"), str(out / "eval"),
              "--training-log", str(out / "vocoder" / "training_log.json"), *w),
             (str(out / "eval" / "report.html"),)),
    ]


def run_step(step: Step) -> tuple[int, str, float]:
    cmd = [sys.executable, "-m", "unitwave", *step.args]
    print(f"\n## {step.title}\n$ unitwave {shlex.join(step.args)}", flush=True)
    t = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
    sys.stdout.write(proc.stdout)
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return proc.returncode, last, time.time() - t


def write_report(cfg: DemoConfig, results: list[tuple[Step, int, str, float]]) -> Path:
    """``report.md``: each step's command, its summary line and outputs."""
    lines = ["# unitwave demo", "", f"Corpus: {cfg.utterances} synthetic utterances (espeak-ng).", ""]
    for step, code, last, seconds in results:
        lines += [f"## {step.title}", "", f"    unitwave {shlex.join(step.args)}", "",
                  f"- exit status {code}, {seconds:.1f} s", f"- {last}" if last else "- (no summary)"]
        lines += [f"- output: `{o}`" for o in step.outputs]
        lines.append("")
    path = cfg.output_dir / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (cfg.output_dir / "demo.json").write_text(json.dumps(
        [{"title": s.title, "args": list(s.args), "exit": c, "seconds": round(t, 2)} for s, c, _, t in results],
        indent=2) + "\n", encoding="utf-8")
    return path


def copy_configs(out: Path) -> None:
    """The demo's config files, next to its outputs, where a user can read and edit them."""
    from importlib import resources

    folder = out / "configs"
    folder.mkdir(parents=True, exist_ok=True)
    for item in resources.files("unitwave.configs").iterdir():
        if item.name.endswith(".yaml"):
            (folder / item.name).write_text(item.read_text(encoding="utf-8"), encoding="utf-8")


def run(cfg: DemoConfig) -> DemoResult:
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    copy_configs(cfg.output_dir)
    results = []
    for step in steps(cfg):
        code, last, seconds = run_step(step)
        results.append((step, code, last, seconds))
        if code != 0:
            print(f"\nunitwave demo: step failed (exit status {code}): unitwave {shlex.join(step.args)}",
                  file=sys.stderr)
            break
    overview = write_report(cfg, results)
    html = cfg.output_dir / "eval" / "report.html"
    report = html if html.is_file() else overview
    print(f"\nOverview of every step: {overview.resolve()}")
    print(f"Report: {report.resolve()}")
    failed = any(code != 0 for _, code, _, _ in results)
    return DemoResult(1 if failed else 0, report)
