"""``unitwave lm grid``: every point of a YAML grid is one LM training run, run by the engine.

The grid file::

    base:                 # options shared by every run (any unitwave lm train option, e.g. epochs)
      epochs: 20
      batch_size: 32
    grid:                 # option -> values; the runs are every combination (here 2x2x2x2 = 16)
      embedding_dim: [128, 256]
      hidden_size: [256, 512]
      num_layers: [2, 3]
      dropout: [0.1, 0.2]

Each grid point is one record of a per-record engine :class:`~unitwave.engine.stage.Stage`, so the local
process pool (``--workers``), ``--shard k/N`` (a SLURM array task or a Ray task) and any engine backend
run it with no extra code; a run's full config travels in its record. Each run trains into
``OUTPUT_DIR/runs/<name>/`` (named like ``lstm_e128_h256_l2_d0.1``) with ``--resume auto``: rerunning the
command skips finished runs (the engine) and continues half-trained ones from their ``latest.ckpt``.
When every run is done, ``leaderboard.csv`` ranks them by validation perplexity.
"""

from __future__ import annotations

import csv
import dataclasses as dc
import io
import itertools
import json
import re
import shutil
import typing as tp
from pathlib import Path

from unitwave.config import ConfigError, from_dict, read_yaml, to_dict
from unitwave.data.atomic import atomic_write_text
from unitwave.data.manifest import Record, iter_jsonl
from unitwave.engine.stage import Stage

if tp.TYPE_CHECKING:
    from unitwave.engine.run_dir import RunDir
    from unitwave.lm.commands import LMGridConfig, LMTrainConfig

#: short names of common options in run folder names (the users' lstm_r{lr}_h{hidden}_e{emb}... style)
ABBREVIATIONS = {"embedding_dim": "e", "hidden_size": "h", "num_layers": "l", "dropout": "d", "lr": "r",
                 "batch_size": "b", "weight_decay": "wd", "num_heads": "nh", "max_len": "ml", "arch": ""}
FIXED = ("units", "output_dir", "val_units")
METRIC_COLUMNS = ("val_ppl", "val_bpu", "val_loss", "bigram_ppl", "unigram_ppl", "best_epoch", "epochs", "stopped_early")


def read_grid(path: Path) -> tuple[dict[str, tp.Any], dict[str, list[tp.Any]]]:
    """``(base options, axes)`` of a grid file; ConfigError naming the file for a wrong shape."""
    data = read_yaml(Path(path))
    unknown = set(data) - {"base", "grid"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; a grid file has 'grid' and optional 'base'")
    axes, base = data.get("grid"), data.get("base") or {}
    if not isinstance(axes, dict) or not axes:
        raise ConfigError(f"{path}: 'grid' must map option names to lists of values, e.g. hidden_size: [256, 512]")
    if not isinstance(base, dict):
        raise ConfigError(f"{path}: 'base' must map option names to values")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty list of values, got {values!r}")
    for key in [*base, *axes]:
        if str(key).replace("-", "_").removeprefix("train.") in FIXED:
            raise ConfigError(f"{path}: {key} is given on the command line, not in the grid file")
    return base, {str(k): v for k, v in axes.items()}


def expand(axes: dict[str, list[tp.Any]]) -> list[dict[str, tp.Any]]:
    """Every combination of the axes, in file order (the last axis varies fastest)."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(axes[k] for k in keys))]


def run_name(point: dict[str, tp.Any]) -> str:
    """A readable, file-safe folder name for a grid point, e.g. ``lstm_e128_h256_l2_d0.1``."""
    parts = []
    for key, value in point.items():
        key_ = key.replace("-", "_").removeprefix("train.")
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(f"{ABBREVIATIONS.get(key_, key_ + '-')}{text}")
    if "arch" not in point:
        parts.insert(0, "lstm")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts))


def run_config(options: dict[str, tp.Any], units: Path, val_units: Path | None, run_dir: Path) -> LMTrainConfig:
    """The LMTrainConfig of one run: flat option names resolve to LMTrainConfig or its TrainConfig."""
    from unitwave.lm.commands import LMTrainConfig
    from unitwave.train.config import TrainConfig

    top_fields = {f.name for f in dc.fields(LMTrainConfig)} - {"train"}
    train_fields = {f.name for f in dc.fields(TrainConfig)}
    top: dict[str, tp.Any] = {}
    train: dict[str, tp.Any] = {}
    for raw, value in options.items():
        key = raw.replace("-", "_")
        if key.startswith("train."):
            train[key[len("train."):]] = value
        elif key in top_fields:
            top[key] = value
        else:
            train[key] = value  # unknown keys fail in from_dict with the closest valid name
    if set(train) - train_fields:
        bad = min(set(train) - train_fields)
        import difflib

        close = difflib.get_close_matches(bad, sorted(top_fields | train_fields), n=1)
        raise ConfigError(f"{bad!r} (under base: or grid: in the grid file) is not an option of unitwave lm train"
                          + (f"; did you mean {close[0]!r}?" if close else ""))
    data = {**top, "units": str(units), "output_dir": str(run_dir), "val_units": str(val_units) if val_units else None, "train": train}
    cfg = from_dict(LMTrainConfig, data, "grid")
    # the engine's workers are daemon processes (no DataLoader workers) with one device each
    forced = dc.replace(cfg.train, resume="auto", progress_bar=False, num_workers=0, devices=1, num_nodes=1)
    return dc.replace(cfg, train=forced).check()


class LMGridStage(Stage):
    """One record = one grid point: trains it (resuming) and returns its metrics as the output record."""

    name = "lm-grid"

    def __init__(self, torch_threads: int = 1) -> None:
        self.torch_threads = torch_threads

    def setup(self) -> None:
        import torch

        torch.set_num_threads(self.torch_threads)

    def process(self, batch: list[Record]) -> list[list[Record]]:
        from unitwave.lm.commands import LMTrainConfig
        from unitwave.lm.training import train_lm
        from unitwave.log import setup_logging

        setup_logging(quiet=True)
        outputs = []
        for rec in batch:
            cfg = from_dict(LMTrainConfig, rec["config"])
            metrics = train_lm(cfg, echo=False)
            outputs.append([{"id": rec["id"], "params": rec["params"], "run_dir": str(cfg.output_dir), **metrics}])
        return outputs

    def finalize(self, run: RunDir) -> None:
        write_leaderboard(run.root, run.manifest, run.errors)


def write_leaderboard(root: Path, manifest: Path, errors: Path) -> Path:
    """``leaderboard.csv``: finished runs by validation perplexity (best first), then failed runs."""
    done = list(iter_jsonl(manifest)) if manifest.is_file() else []
    failed = list(iter_jsonl(errors)) if errors.is_file() else []
    done.sort(key=lambda r: (r.get("val_ppl") is None, r.get("val_ppl") or 0.0))
    params: list[str] = []
    for r in done:
        params += [k for k in r.get("params", {}) if k not in params]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["rank", "run", *METRIC_COLUMNS, *params, "status", "run_dir"])
    for i, r in enumerate(done, start=1):
        writer.writerow([i, r["id"], *(r.get(c) for c in METRIC_COLUMNS), *(r["params"].get(p) for p in params), "done", r.get("run_dir")])
    for e in failed:
        writer.writerow(["", e.get("id"), *([""] * len(METRIC_COLUMNS)), *([""] * len(params)), f"failed: {e.get('reason')}", ""])
    path = Path(root) / "leaderboard.csv"
    atomic_write_text(path, buf.getvalue())
    if done:
        best = done[0]
        print(f"leaderboard: {len(done)} runs, best {best['id']} (val ppl {best.get('val_ppl'):.3f}, "
              f"bigram {best.get('bigram_ppl'):.3f}, unigram {best.get('unigram_ppl'):.3f})"
              + (f", {len(failed)} failed" if failed else "") + f" -> {path}", flush=True)
    return path


def run_grid(cfg: LMGridConfig) -> tp.Any:
    from unitwave.engine.run_dir import RunDir
    from unitwave.engine.runner import run_stage

    base, axes = read_grid(cfg.grid)
    records: list[Record] = []
    for point in expand(axes):
        name = run_name(point)
        if any(r["id"] == name for r in records):
            raise ConfigError(f"{cfg.grid}: two grid points share the run name {name!r}; make the values distinct")
        conf = run_config({**base, **point}, Path(cfg.units).absolute(),
                          Path(cfg.val_units).absolute() if cfg.val_units else None,
                          Path(cfg.output_dir).absolute() / "runs" / name)
        records.append({"id": name, "params": point, "config": to_dict(conf)})
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if Path(cfg.grid).resolve() != (out / "grid.yaml").resolve():
        shutil.copyfile(cfg.grid, out / "grid.yaml")
    engine = cfg.engine
    if engine.shards is None and not RunDir(out).exists():
        # one shard per run: the pool hands out runs one by one, so no worker idles behind a long shard
        engine = dc.replace(engine, shards=len(records))
    print(f"lm grid: {len(records)} runs ({' x '.join(f'{k} {json.dumps(v)}' for k, v in axes.items())})", flush=True)
    return run_stage(LMGridStage(engine.torch_threads), lambda: iter(records), out, engine, config=cfg)
