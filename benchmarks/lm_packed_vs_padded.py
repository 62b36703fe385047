"""Unit LM training throughput: unitwave's packed batches vs a plain padded-batch loop on the same data.

Both train the same LSTM (same init, batch size, optimizer) for one epoch over the same utterances, with
lengths spread like segmented speech (about 0.5 to 25 s of 20 ms frames):

- plain padded: random batches padded to their longest utterance; LSTM, output layer and softmax over
  every position, padding ignored only in the loss (``ignore_index``);
- unitwave: the training path of ``unitwave lm train``: batches of similar length
  (:class:`~unitwave.train.data.EpochBatchSampler` with lengths), the output layer and softmax only at
  real positions (packed order); on CPU the LSTM runs its fused kernel over the nearly unpadded batch,
  on CUDA on a cuDNN PackedSequence.

Also shown: torch's PackedSequence LSTM on the same grouped batches (what "packing" means on a GPU;
on CPU it is a per-step loop). Figures are real units (frames) per second, forward + backward + step.
Target: unitwave >= 1.3x the plain padded loop.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report

from unitwave.lm.data import collate_units
from unitwave.lm.model import LSTMUnitLM
from unitwave.lm.module import packed_targets
from unitwave.testing.unit_corpus import synthetic_utterances
from unitwave.train.data import EpochBatchSampler

K, BATCH, EMB, HIDDEN, LAYERS = 100, 16, 64, 128, 2
#: torch's PackedSequence LSTM is slow on CPU: time it on this many batches only
PACKEDSEQ_BATCHES = 5


def epoch_throughput(utterances: list[np.ndarray], batches: list[list[int]], step: str) -> float:
    """Real units per second of one epoch over ``batches`` with the loop named ``step``."""
    print(f"   timing {step} on {len(batches)} batches...", flush=True)
    torch.manual_seed(0)
    model = LSTMUnitLM(K, EMB, HIDDEN, LAYERS, 0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = 0
    start = time.perf_counter()
    for i, ids in enumerate(batches):
        if i == 1:  # the first batch warms up allocators and kernels
            tokens, start = 0, time.perf_counter()
        batch = collate_units([utterances[j] for j in ids], model.sos, model.pad)
        if step == "padded":
            logits = model.forward_padded(batch["inputs"])  # (B, T, k)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, K), batch["targets"].reshape(-1), ignore_index=model.pad)
        else:
            logits = model(batch["inputs"], batch["lengths"], rnn_packing=step == "packedseq")  # (N, k)
            loss = torch.nn.functional.cross_entropy(logits, packed_targets(batch))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tokens += int(batch["lengths"].sum())
    return tokens / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    raw, _ = synthetic_utterances(num_utterances=160, k=K, num_words=60, words_per_utterance=(2, 100), seed=0)
    utterances = [np.asarray(u[:1250], dtype=np.int64) for u in raw]  # at most 25 s of 20 ms frames
    lengths = np.array([len(u) for u in utterances])
    random_batches = EpochBatchSampler(len(utterances), BATCH, shuffle=True, seed=0).batches(0)
    grouped_batches = EpochBatchSampler(len(utterances), BATCH, shuffle=True, seed=0, lengths=lengths).batches(0)

    def padding_share(batches: list[list[int]]) -> float:
        padded = sum(max(lengths[j] for j in b) * len(b) for b in batches)
        return 1.0 - lengths.sum() / padded

    plain = epoch_throughput(utterances, random_batches, "padded")
    ours = epoch_throughput(utterances, grouped_batches, "unitwave")
    ours_random = epoch_throughput(utterances, random_batches, "unitwave")
    packedseq = epoch_throughput(utterances, grouped_batches[:PACKEDSEQ_BATCHES], "packedseq")
    report(
        "lm_packed_vs_padded",
        {
            "utterances": len(utterances),
            "units": int(lengths.sum()),
            "length_frames_min_median_max": [int(lengths.min()), int(np.median(lengths)), int(lengths.max())],
            "model": f"LSTM k={K} emb={EMB} hidden={HIDDEN} layers={LAYERS}, batch {BATCH}, 1 thread",
            "padding_share_random_batches": round(padding_share(random_batches), 3),
            "padding_share_grouped_batches": round(padding_share(grouped_batches), 3),
            "plain_padded_units_per_s": round(plain),
            "unitwave_units_per_s": round(ours),
            "unitwave_random_batches_units_per_s": round(ours_random),
            f"torch_packedsequence_grouped_units_per_s ({PACKEDSEQ_BATCHES} batches)": round(packedseq),
            "speedup_unitwave_vs_plain": round(ours / plain, 2),
            "speedup_output_packing_only": round(ours_random / plain, 2),
        },
        "speedup_unitwave_vs_plain >= 1.3",
    )


if __name__ == "__main__":
    main()
