"""The unit LM as a :class:`~unitwave.train.module.TrainModule`: per-unit cross-entropy on packed sequences.

Metrics (validation, means per unit): ``val_loss`` (cross-entropy, nats/unit), ``val_ppl`` (perplexity,
``exp(val_loss)``) and ``val_bpu`` (bits per unit, ``val_loss / ln 2``). Means are weighted by units,
so the epoch value is exactly the corpus-level cross-entropy.
"""

from __future__ import annotations

import math
import typing as tp

import torch
from torch import nn

from unitwave.lm.model import packed_index
from unitwave.train.config import TrainConfig
from unitwave.train.module import Scalars, TrainModule

Batch = dict[str, torch.Tensor]


def packed_targets(batch: Batch) -> torch.Tensor:
    """Targets ``(N,)`` in the model's packed output order."""
    targets = batch["targets"]
    idx = packed_index(batch["lengths"], targets.shape[1]).to(targets.device)
    return targets.reshape(-1)[idx]


class UnitLMModule(TrainModule):
    """Trains ``model`` (an :class:`~unitwave.lm.model.LSTMUnitLM` or transformer) on unit batches."""

    def __init__(self, model: nn.Module, train: TrainConfig) -> None:
        super().__init__(train)
        self.model = model

    def _loss(self, batch: Batch) -> torch.Tensor:
        logits = self.model(batch["inputs"], batch["lengths"])
        return nn.functional.cross_entropy(logits.float(), packed_targets(batch))

    def training_loss(self, batch: Batch) -> tuple[torch.Tensor, Scalars]:
        return self._loss(batch), {}

    def validation_metrics(self, batch: Batch) -> Scalars:
        return {"loss": self._loss(batch)}

    def batch_weight(self, batch: Batch) -> float:
        return float(batch["lengths"].sum())

    def derived_metrics(self, means: dict[str, float]) -> dict[str, float]:
        loss = means["loss"]
        return {"ppl": math.exp(min(loss, 700.0)), "bpu": loss / math.log(2)}

    def optimizer_groups(self) -> list[tp.Any]:
        from unitwave.train.module import ParamGroup

        # no weight decay on embeddings, norms and biases
        decay, plain = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (plain if p.dim() < 2 or "embed" in name or "position" in name else decay).append(p)
        return [ParamGroup("weights", decay), ParamGroup("embeddings_biases", plain, weight_decay=0.0)]
