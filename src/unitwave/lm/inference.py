"""Scoring and sampling with an exported unit LM (torch + safetensors only: no Lightning).

- :func:`utterance_log_probs`: ``log p(u_1..u_n | SOS)`` per utterance, in nats, batched over packed
  sequences (a batch gives the same values as each utterance alone).
- :func:`sample_continuations`: continue prompts unit by unit (temperature, top-k).
"""

from __future__ import annotations

import json
import math
import typing as tp
from pathlib import Path

import numpy as np
import torch

from unitwave.data.atomic import atomic_path
from unitwave.lm.data import collate_units, parse_line
from unitwave.lm.model import packed_index
from unitwave.train.portable import load_exported

if tp.TYPE_CHECKING:
    from unitwave.lm.commands import LMSampleConfig, LMScoreConfig


def pick_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is visible; use --device auto or cpu")
    return device


def load_lm(path: Path, device: str = "cpu") -> torch.nn.Module:
    """An exported LM from its folder, or from a ``unitwave lm train`` run folder (its ``model/``)."""
    path = Path(path)
    if path.is_dir() and not (path / "model_card.json").is_file() and (path / "model" / "model_card.json").is_file():
        path = path / "model"
    if path.is_dir() and not (path / "model_card.json").is_file() and (path / "checkpoints").is_dir():
        raise FileNotFoundError(f"{path}: a training run with checkpoints but no exported model (it did not finish): "
                                "rerun its `unitwave lm train` command to resume it; it exports model/ at the end")
    return load_exported(path, device=device)


@torch.no_grad()
def utterance_log_probs(model: torch.nn.Module, utterances: tp.Sequence[np.ndarray], batch_size: int = 64,
                        names: tp.Sequence[str] | None = None) -> list[float]:
    """Summed natural-log probability of each utterance ``(units,)`` given SOS; empty ones score 0.

    A model with a context length (transformer ``max_len``) scores the first ``max_len`` units of longer
    utterances, as it was trained (see :func:`scored_length`). ``names``: how errors name utterances.
    """
    model.eval()
    device = next(model.parameters()).device
    k = model.num_units
    limit = scored_length(model)
    utterances = [u[:limit] if limit else u for u in utterances]
    out = [0.0] * len(utterances)
    order = sorted((i for i, u in enumerate(utterances) if len(u)), key=lambda i: len(utterances[i]))
    for start in range(0, len(order), batch_size):
        ids = order[start : start + batch_size]
        items = [np.asarray(utterances[i], dtype=np.int64) for i in ids]
        for i, u in zip(ids, items):
            if u.max() >= k or u.min() < 0:
                bad = int(u.max()) if u.max() >= k else int(u.min())
                where = names[i] if names is not None else f"utterance {i + 1}"
                raise ValueError(f"{where} holds unit {bad}, outside the model's 0..{k - 1}")
        batch = collate_units(items, model.sos, model.pad)
        logits = model(batch["inputs"].to(device), batch["lengths"])  # (N, k)
        idx = packed_index(batch["lengths"], batch["inputs"].shape[1])
        targets = batch["targets"].reshape(-1)[idx].to(device)
        rows = (idx // batch["inputs"].shape[1]).to(device)  # utterance of each packed position
        token_lp = torch.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None]).squeeze(1)
        sums = torch.zeros(len(ids), dtype=torch.float64, device=device).index_add_(0, rows, token_lp.double())
        for j, i in enumerate(ids):
            out[i] = float(sums[j])
    return out


def scored_length(model: torch.nn.Module) -> int:
    """Most units of one utterance the model scores (its context length; 0: no limit)."""
    from unitwave.lm.model import TransformerUnitLM

    return int(model.max_len) if isinstance(model, TransformerUnitLM) else 0


@torch.no_grad()
def sample_continuations(model: torch.nn.Module, prompts: tp.Sequence[tp.Sequence[int]], length: int,
                         temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> list[list[int]]:
    """Prompt + ``length`` sampled units for each prompt (all prompts of one length run as a batch)."""
    if temperature <= 0:
        raise ValueError(f"--temperature must be > 0 (got {temperature})")
    model.eval()
    device = next(model.parameters()).device
    k = model.num_units
    gen = torch.Generator(device=device).manual_seed(seed)
    results: list[list[int]] = [[] for _ in prompts]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        bad = [int(u) for u in p if not 0 <= int(u) < k]
        if bad:
            raise ValueError(f"prompt {i + 1} holds unit {bad[0]}, outside the model's 0..{k - 1}")
        groups.setdefault(len(p), []).append(i)
    for ids in groups.values():
        tokens = torch.tensor([[model.sos, *map(int, prompts[i])] for i in ids], dtype=torch.long, device=device)
        logits, state = model.step(tokens)
        new = []
        for _ in range(length):
            scores = logits[:, -1].float() / temperature  # (B, k)
            if 0 < top_k < k:
                kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
                scores = scores.masked_fill(scores < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=gen)  # (B, 1)
            new.append(nxt)
            logits, state = model.step(nxt, state)
        cont = torch.cat(new, dim=1).tolist() if new else [[] for _ in ids]
        for i, c in zip(ids, cont):
            results[i] = [int(u) for u in prompts[i]] + c
    return results


def read_utterances(path: Path) -> tuple[list[str | None], list[np.ndarray]]:
    """Ids (None for text files) and units of a ``<name>_units.txt`` or timestamped corpus ``.jsonl``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"utterances not found: {path}")
    ids: list[str | None] = []
    units: list[np.ndarray] = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if path.suffix == ".jsonl":
                if not raw.strip():
                    continue
                rec = json.loads(raw)
                if "units" not in rec:
                    raise ValueError(f"{path}:{lineno}: no 'units' field (expected a timestamped unit corpus)")
                ids.append(str(rec.get("id", lineno)))
                units.append(np.asarray(rec["units"], dtype=np.int64))
            else:
                ids.append(None)
                units.append(parse_line(raw, f"{path}:{lineno}"))
    return ids, units


def score_command(cfg: LMScoreConfig) -> dict[str, tp.Any]:
    if cfg.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1 (got {cfg.batch_size})")
    model = load_lm(cfg.model, pick_device(cfg.device))
    ids, units = read_utterances(cfg.units)
    if not any(len(u) for u in units):
        raise ValueError(f"{cfg.units}: no units to score (the file is empty or has only empty lines)")
    names = [f"{cfg.units}:{i + 1}" if rid is None else f"{cfg.units}: id {rid!r}" for i, rid in enumerate(ids)]
    scores = utterance_log_probs(model, units, cfg.batch_size, names)
    limit = scored_length(model)
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    total_units = truncated = 0
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for i, (rid, u, lp) in enumerate(zip(ids, units, scores)):
            n = min(len(u), limit) if limit else len(u)
            total_units += n
            row = {"index": i, "id": rid, "logprob": lp, "num_units": n,
                   "logprob_per_unit": lp / n if n else None, "bits_per_unit": -lp / n / math.log(2) if n else None}
            if n < len(u):
                row["truncated_from"] = len(u)
                truncated += 1
            f.write(json.dumps(row) + "\n")
    ppl = math.exp(-sum(scores) / total_units)
    note = f"; {truncated} longer than the model's context: their first {limit} units scored" if truncated else ""
    print(f"scored {len(units)} utterances ({total_units} units, perplexity {ppl:.3f}{note}) -> {out}", flush=True)
    return {"utterances": len(units), "units": total_units, "perplexity": ppl, "truncated": truncated}


def sample_command(cfg: LMSampleConfig) -> list[list[int]]:
    if cfg.num_samples < 1 or cfg.length < 0 or cfg.top_k < 0:
        raise ValueError("--num-samples must be >= 1, --length >= 0 and --top-k >= 0 (0: no top-k)")
    model = load_lm(cfg.model, pick_device(cfg.device))
    if cfg.prompts_file is not None:
        _, prompt_units = read_utterances(cfg.prompts_file)
        prompts = [u.tolist() for u in prompt_units]
    else:
        prompts = [parse_line(cfg.prompt.encode(), "--prompt").tolist()]
    expanded = [p for p in prompts for _ in range(cfg.num_samples)]
    ordered = sample_continuations(model, expanded, cfg.length, cfg.temperature, cfg.top_k, cfg.seed)
    text = "\n".join(" ".join(map(str, s)) for s in ordered) + "\n"
    if cfg.output is not None:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output).write_text(text, encoding="utf-8")
        print(f"{len(ordered)} samples of {cfg.length} units -> {cfg.output}", flush=True)
    else:
        print(text, end="", flush=True)
    return ordered
