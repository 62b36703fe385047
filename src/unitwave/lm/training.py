"""``train_lm``: data -> model -> :func:`unitwave.train.fit` -> baselines -> exported model and metrics.

The run folder (besides what :func:`~unitwave.train.fit` writes)::

    config.yaml      the resolved LMTrainConfig
    model/           model.safetensors + model_card.json of the best epoch (torch-only loading)
    metrics.json     validation cross-entropy / perplexity / bits per unit of the best epoch, beside the
                     unigram (add-one) and bigram (Kneser-Ney) perplexities on the same split
"""

from __future__ import annotations

import json
import typing as tp
from pathlib import Path

import numpy as np

from unitwave.config import save_config, to_dict
from unitwave.data.atomic import atomic_write_text
from unitwave.lm.data import CorpusScan, UnitCollate, UnitSequences, resolve_k, scan_units

if tp.TYPE_CHECKING:
    from unitwave.lm.commands import LMTrainConfig


def load_splits(cfg: LMTrainConfig) -> tuple[UnitSequences, UnitSequences, int, dict[str, tp.Any]]:
    """Train and validation sequences, k, and a description of the data for the model card."""
    if cfg.val_units is not None:
        train_scan = scan_units(cfg.units)
        val_scan = scan_units(cfg.val_units)
        scans: list[CorpusScan] = [train_scan, val_scan]
        train_sel, val_sel = np.ones(len(train_scan.offsets), bool), np.ones(len(val_scan.offsets), bool)
    else:
        train_scan = val_scan = scan_units(cfg.units, cfg.val_ratio, cfg.split_salt)
        scans = [train_scan]
        train_sel, val_sel = ~train_scan.is_val, train_scan.is_val
    total = int(train_sel.sum() + (0 if cfg.val_units else val_sel.sum()))
    if not cfg.val_units and total < 2:
        raise ValueError(f"{cfg.units}: {total} non-empty utterance(s); training and validation need at least 2 "
                         "(or give --val-units)")
    if not train_sel.any():
        raise ValueError(f"{cfg.units}: no training utterances (is the file empty, or --val-ratio too high?)")
    if not val_sel.any():
        if cfg.val_units:
            raise ValueError(f"--val-units {cfg.val_units}: no utterances with units in it")
        raise ValueError(f"no validation utterances in {cfg.units} with --val-ratio {cfg.val_ratio}; raise "
                         "--val-ratio or give --val-units")
    k = resolve_k(cfg.k, scans)
    max_len = cfg.max_len
    train = UnitSequences(train_scan, train_sel, max_len, cfg.load_on_the_fly)
    val = UnitSequences(val_scan, val_sel, max_len, cfg.load_on_the_fly)
    data = {
        "units_file": str(Path(cfg.units).absolute()),
        "val_file": str(Path(cfg.val_units).absolute()) if cfg.val_units else None,
        "split": None if cfg.val_units else {"val_ratio": cfg.val_ratio, "salt": cfg.split_salt, "by": "hash of line text"},
        "k": k,
        "train_utterances": len(train), "train_units": train.num_tokens(),
        "val_utterances": len(val), "val_units": val.num_tokens(),
        "truncated_utterances": train.truncated + val.truncated, "max_len": max_len,
        "empty_lines_skipped": sum(s.empty_lines for s in scans),
    }
    return train, val, k, data


#: options that change the model's parameters (the last two only for the transformer)
MODEL_FIELDS = ("arch", "embedding_dim", "hidden_size", "num_layers", "k", "num_heads", "max_len")
#: options that choose the training and validation data
DATA_FIELDS = ("units", "val_units", "val_ratio", "split_salt")


def check_same_model(cfg: LMTrainConfig, out: Path) -> None:
    """A run folder that will be resumed must hold the same model: say so before loading weights fails."""
    from unitwave.train.checkpoint import refuse_other_model

    keys = MODEL_FIELDS if cfg.arch == "transformer" else MODEL_FIELDS[:5]
    refuse_other_model(cfg, out, cfg.train.resume, keys, DATA_FIELDS)


def train_lm(cfg: LMTrainConfig, echo: bool = True) -> dict[str, tp.Any]:
    """Train, evaluate against count baselines and export; returns the metrics (also in metrics.json)."""
    cfg.check()  # config and data errors before the slow imports
    t = cfg.train
    out = Path(cfg.output_dir)
    check_same_model(cfg, out)
    train_set, val_set, k, data = load_splits(cfg)

    import torch

    from unitwave.lm.baselines import baseline_perplexities
    from unitwave.lm.model import build_lm
    from unitwave.lm.module import UnitLMModule
    from unitwave.train import export, fit, load_checkpoint, make_loader, seed_all
    from unitwave.train.config import launch_rank

    seed_all(t.seed)
    model = build_lm(cfg.arch, k, cfg.embedding_dim, cfg.hidden_size, cfg.num_layers, cfg.dropout, cfg.num_heads,
                     max(cfg.max_len, 1) if cfg.arch == "transformer" else 2048)
    module = UnitLMModule(model, t)
    collate = UnitCollate(model.sos, model.pad)
    train_loader = make_loader(train_set, t.batch_size, shuffle=True, seed=t.seed, collate_fn=collate,
                               num_workers=t.num_workers, lengths=train_set.lengths)
    val_loader = make_loader(val_set, t.batch_size, shuffle=False, seed=t.seed, collate_fn=collate,
                             num_workers=t.num_workers, lengths=val_set.lengths)
    main_process = launch_rank() == 0
    echo = echo and main_process
    if main_process:
        save_config(cfg, out)
    if echo:
        params = sum(p.numel() for p in model.parameters())
        print(f"lm: {cfg.arch}, k={k}, {params / 1e6:.2f} M parameters; train {data['train_utterances']} utterances "
              f"({data['train_units']} units), val {data['val_utterances']} ({data['val_units']} units)", flush=True)
    result = fit(module, train_loader, val_loader, out, config=cfg, echo=echo)
    if not result.is_main:
        return {}
    if result.best_path is None:
        raise RuntimeError(f"{out}: training produced no best.ckpt")
    state = load_checkpoint(result.best_path)["state_dict"]
    model.load_state_dict({name[len("model."):]: v for name, v in state.items() if name.startswith("model.")})
    best = result.best_row
    baselines = baseline_perplexities(lambda: (train_set[i] for i in range(len(train_set))),
                                      lambda: (val_set[i] for i in range(len(val_set))), k)
    metrics = {
        "arch": cfg.arch,
        "val_loss": best.get("val_loss"), "val_ppl": best.get("val_ppl"), "val_bpu": best.get("val_bpu"),
        **baselines,
        "best_epoch": result.best_epoch, "epochs": result.epochs_done, "stopped_early": result.stopped_early,
        "world_size": result.world_size, "train_units": data["train_units"], "val_units": data["val_units"],
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    export(model, out / "model", arch=dict(model.config), card={
        "task": "unit-language-model", "vocabulary": {"units": k, "sos": model.sos, "pad": model.pad},
        "data": data, "metrics": metrics, "seed": t.seed, "config": to_dict(cfg), "torch_threads": torch.get_num_threads(),
    })
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    train_set.close()
    val_set.close()
    if echo:
        print(
            f"validation perplexity: {cfg.arch} {metrics['val_ppl']:.3f} ({metrics['val_bpu']:.3f} bits/unit, epoch "
            f"{result.best_epoch}) | bigram (Kneser-Ney) {metrics['bigram_ppl']:.3f} | unigram (add-one) "
            f"{metrics['unigram_ppl']:.3f} -> {out / 'model'}",
            flush=True,
        )
    return metrics
