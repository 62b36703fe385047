"""Unit LMs without the CLI: learning, packing, batch == single scoring, sampling, baselines, data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unitwave.lm.baselines import KneserNeyBigramLM, UnigramLM, baseline_perplexities
from unitwave.lm.data import UnitSequences, collate_units, resolve_k, scan_units
from unitwave.lm.inference import sample_continuations, utterance_log_probs
from unitwave.lm.model import LSTMUnitLM, TransformerUnitLM
from unitwave.lm.module import packed_targets
from unitwave.testing.unit_corpus import synthetic_utterances, write_unit_corpus

torch.set_num_threads(1)
K = 20


@pytest.fixture(scope="module")
def utterances():
    utts, _ = synthetic_utterances(num_utterances=40, k=K, num_words=8, words_per_utterance=(2, 5), seed=4)
    return [np.asarray(u, dtype=np.int64) for u in utts]


def models():
    torch.manual_seed(0)
    return [LSTMUnitLM(K, 16, 32, 2, 0.0), TransformerUnitLM(K, 16, 32, 2, 2, 0.0, max_len=512)]


@pytest.mark.parametrize("index", [0, 1], ids=["lstm", "transformer"])
def test_a_few_cpu_steps_reduce_the_loss(utterances, index):
    model = models()[index]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = collate_units(utterances[:16], model.sos, model.pad)
    losses = []
    for _ in range(15):
        logits = model(batch["inputs"], batch["lengths"])
        assert logits.shape == (int(batch["lengths"].sum()), K)
        loss = torch.nn.functional.cross_entropy(logits, packed_targets(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_packed_and_fused_lstm_paths_agree_and_padding_changes_nothing(utterances):
    model = models()[0].eval()
    batch = collate_units(utterances[:8], model.sos, model.pad)
    with torch.no_grad():
        fused = model(batch["inputs"], batch["lengths"], rnn_packing=False)
        packed = model(batch["inputs"], batch["lengths"], rnn_packing=True)
        padded = model.forward_padded(batch["inputs"])  # (B, T, k) including padding
    torch.testing.assert_close(fused, packed, rtol=1e-5, atol=1e-5)
    first = utterances[0]
    n = len(first)
    alone = model.forward_padded(collate_units([first], model.sos, model.pad)["inputs"])[0]
    torch.testing.assert_close(padded[0, :n], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("index", [0, 1], ids=["lstm", "transformer"])
def test_scores_of_a_batch_equal_scores_alone(utterances, index):
    model = models()[index].eval()
    together = utterance_log_probs(model, utterances[:12], batch_size=5)
    alone = [utterance_log_probs(model, [u])[0] for u in utterances[:12]]
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-4)
    assert all(s < 0 for s in together)
    assert utterance_log_probs(model, [np.array([], dtype=np.int64)]) == [0.0]


def test_a_transformer_scores_longer_utterances_as_it_was_trained_on_them(utterances, tmp_path):
    """Training keeps an utterance's first max_len units; scoring does the same instead of failing."""
    import json

    from unitwave.lm.commands import LMScoreConfig
    from unitwave.lm.inference import score_command
    from unitwave.train.portable import export

    torch.manual_seed(0)
    model = TransformerUnitLM(K, 16, 32, 1, 2, 0.0, max_len=6).eval()
    long = [u for u in utterances if len(u) > 6][:3]
    assert long
    np.testing.assert_allclose(utterance_log_probs(model, long), utterance_log_probs(model, [u[:6] for u in long]))
    units_txt = tmp_path / "u.txt"
    units_txt.write_text("".join(" ".join(map(str, u)) + "\n" for u in long))
    export(model, tmp_path / "model", arch=dict(model.config))
    result = score_command(LMScoreConfig(tmp_path / "model", units_txt, tmp_path / "s.jsonl"))
    rows = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert result["truncated"] == 3 and all(r["num_units"] == 6 and r["truncated_from"] > 6 for r in rows)
    bad = tmp_path / "bad.txt"
    bad.write_text(f"1 2\n3 {K + 5}\n")
    with pytest.raises(ValueError, match=f"bad.txt:2 holds unit {K + 5}"):
        score_command(LMScoreConfig(tmp_path / "model", bad, tmp_path / "s2.jsonl"))


@pytest.mark.parametrize("index", [0, 1], ids=["lstm", "transformer"])
def test_sample_shapes_seed_and_greedy(index):
    model = models()[index].eval()
    prompts = [[1, 2, 3], [4], [1, 2, 3], []]
    a = sample_continuations(model, prompts, length=7, seed=5)
    assert [len(s) for s in a] == [10, 8, 10, 7]
    assert all(s[: len(p)] == p for s, p in zip(a, prompts)) and all(0 <= u < K for s in a for u in s)
    assert a == sample_continuations(model, prompts, length=7, seed=5)
    greedy = sample_continuations(model, [[1, 2, 3]], length=5, top_k=1, seed=0)
    assert greedy == sample_continuations(model, [[1, 2, 3]], length=5, top_k=1, seed=99)


def test_count_baselines():
    seqs = [np.array([0, 0, 1, 2]), np.array([2, 1, 0])]
    lp = KneserNeyBigramLM(3).fit(seqs).log_probs()
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0)
    assert np.exp(UnigramLM(3).fit(seqs).log_probs()).sum() == pytest.approx(1.0)
    ppl = baseline_perplexities(lambda: seqs, lambda: seqs, 3)
    assert 1.0 < ppl["bigram_ppl"] < ppl["unigram_ppl"] < 3.0 + 1e-9


def test_split_is_deterministic_and_on_the_fly_equals_ram(tmp_path):
    files = write_unit_corpus(tmp_path, "synth", num_utterances=60, k=K, num_words=8, seed=6)
    a, b = scan_units(files.units_txt, 0.2), scan_units(files.units_txt, 0.2)
    assert a.is_val.tolist() == b.is_val.tolist() and 0 < a.is_val.sum() < 60
    assert scan_units(files.units_txt, 0.2, salt="x").is_val.tolist() != a.is_val.tolist()
    assert resolve_k(0, [a]) == K  # from the timestamped corpus's "k"
    with pytest.raises(ValueError, match="pass --k"):
        resolve_k(3, [a])
    ram = UnitSequences(a, ~a.is_val, max_len=50)
    lazy = UnitSequences(a, ~a.is_val, max_len=50, on_the_fly=True)
    assert len(ram) == len(lazy) and ram.truncated == lazy.truncated > 0
    assert all(np.array_equal(ram[i], lazy[i]) for i in range(len(ram)))
    assert max(len(ram[i]) for i in range(len(ram))) == 50
