"""Count-based baselines every trained LM is printed beside (same split, same SOS convention).

- **unigram**, add-one smoothing: ``p(u) = (c(u) + 1) / (N + k)``.
- **bigram**, interpolated Kneser-Ney (absolute discount ``D = 0.75``): ``p(u | v) = max(c(v u) - D, 0) / c(v)
  + D * N1+(v .) / c(v) * p_cont(u)``, with the continuation probability ``p_cont(u) = (N1+(. u) + 1) /
  (N1+(. .) + k)`` (add-one so unseen units keep some mass); a context never seen uses ``p_cont``.
  The context of an utterance's first unit is SOS.

Perplexity is ``exp`` of the mean negative log-likelihood per unit, in nats.
"""

from __future__ import annotations

import math
import typing as tp

import numpy as np

Sequences = tp.Iterable[np.ndarray]


class UnigramLM:
    def __init__(self, k: int) -> None:
        self.k = k
        self.counts = np.zeros(k, dtype=np.float64)

    def fit(self, sequences: Sequences) -> UnigramLM:
        for units in sequences:
            self.counts += np.bincount(units, minlength=self.k)[: self.k]
        return self

    def log_probs(self) -> np.ndarray:
        """``(k,)`` natural-log probabilities."""
        return np.log((self.counts + 1.0) / (self.counts.sum() + self.k))

    def nll(self, sequences: Sequences) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) and the number of units scored."""
        lp = self.log_probs()
        total, n = 0.0, 0
        for units in sequences:
            total -= float(lp[units].sum())
            n += len(units)
        return total, n


class KneserNeyBigramLM:
    def __init__(self, k: int, discount: float = 0.75) -> None:
        self.k, self.discount = k, discount
        self.pairs = np.zeros((k + 1, k), dtype=np.float64)  # context (units + SOS) x next unit

    def fit(self, sequences: Sequences) -> KneserNeyBigramLM:
        for units in sequences:
            prev = np.concatenate([[self.k], units[:-1]])
            np.add.at(self.pairs, (prev, units), 1.0)
        return self

    def log_probs(self) -> np.ndarray:
        """``(k + 1, k)`` natural-log ``p(next | context)``; row ``k`` is the SOS context."""
        seen = self.pairs > 0
        cont = (seen.sum(axis=0) + 1.0) / (seen.sum() + self.k)  # (k,)
        ctx = self.pairs.sum(axis=1, keepdims=True)  # (k+1, 1)
        types = seen.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            discounted = np.maximum(self.pairs - self.discount, 0.0) / ctx
            backoff = self.discount * types / ctx
        probs = np.where(ctx > 0, discounted + backoff * cont[None, :], cont[None, :])
        return np.log(probs)

    def nll(self, sequences: Sequences) -> tuple[float, int]:
        lp = self.log_probs()
        total, n = 0.0, 0
        for units in sequences:
            prev = np.concatenate([[self.k], units[:-1]])
            total -= float(lp[prev, units].sum())
            n += len(units)
        return total, n


def perplexity(nll: float, count: int) -> float:
    return math.exp(nll / max(1, count))


def baseline_perplexities(train: tp.Callable[[], Sequences], val: tp.Callable[[], Sequences], k: int) -> dict[str, float]:
    """``{"unigram_ppl", "bigram_ppl"}`` fitted on ``train()`` and measured on ``val()``."""
    uni = UnigramLM(k).fit(train())
    bi = KneserNeyBigramLM(k).fit(train())
    return {"unigram_ppl": perplexity(*uni.nll(val())), "bigram_ppl": perplexity(*bi.nll(val()))}
