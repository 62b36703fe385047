"""unitwave.train parts without a Trainer: schedules, the epoch-seeded sampler, exported weights."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from unitwave.train import data as train_data
from unitwave.train.data import EpochBatchSampler
from unitwave.train.portable import export, load_exported, load_weights
from unitwave.train.schedule import LRSchedule


def test_schedules():
    cos = LRSchedule("cosine", total_steps=110, steps_per_epoch=11, warmup_steps=10, min_lr_ratio=0.1)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)  # linear warm-up to the peak
    assert cos(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 50 / 100)))
    assert cos(110) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
    exp = LRSchedule("exponential", total_steps=100, steps_per_epoch=10, lr_decay=0.5)
    assert [exp(s) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]  # per epoch, not per step
    assert LRSchedule("constant", 10, 5, warmup_steps=2)(0) == 0.5
    assert all(isinstance(v, (int, float, str)) for v in vars(cos).values())  # weights_only-safe state


def test_epoch_sampler_order_depends_only_on_seed_and_epoch(monkeypatch):
    lengths = np.random.default_rng(0).integers(5, 500, size=103)
    a = EpochBatchSampler(103, 8, seed=3, lengths=lengths)
    b = EpochBatchSampler(103, 8, seed=3, lengths=lengths)
    a.set_epoch(5)
    b.set_epoch(4)
    b.set_epoch(5)  # whatever came before, epoch 5 is epoch 5
    assert list(a) == list(b)
    assert a.batches(5) != a.batches(6)
    assert sorted(i for batch in a for i in batch) == list(range(103)) and len(list(a)) == len(a) == 13
    # grouping by length: far less padding than random batches
    plain = EpochBatchSampler(103, 8, seed=3)

    def padding(batches):
        return sum(max(lengths[i] for i in bt) * len(bt) - sum(lengths[i] for i in bt) for bt in batches)

    assert padding(a.batches(5)) < 0.3 * padding(plain.batches(5))
    # DDP: each rank gets its own equal share of the same epoch's batches
    shares = []
    for rank in range(3):
        monkeypatch.setattr(train_data, "_dist_rank_world", lambda r=rank: (r, 3))
        shares.append(list(a))
        assert len(shares[-1]) == len(a) == 5
    flat = [i for share in shares for bt in share for i in bt]
    assert set(flat) == set(range(103))


def test_loader_generator_is_reseeded_per_epoch():
    dataset = torch.utils.data.TensorDataset(torch.arange(20.0))
    loader = train_data.make_loader(dataset, 4, shuffle=True, seed=1)
    loader.batch_sampler.set_epoch(2)
    first = [b[0].tolist() for b in loader]
    torch.manual_seed(123)  # the global RNG has no say
    loader.batch_sampler.set_epoch(0)
    list(loader)
    loader.batch_sampler.set_epoch(2)
    assert [b[0].tolist() for b in loader] == first


def test_export_loads_with_torch_and_safetensors_only(tmp_path):
    from unitwave.lm.model import LSTMUnitLM

    torch.manual_seed(0)
    model = LSTMUnitLM(12, 8, 16, 2, 0.0)
    card = export(model, tmp_path / "model", arch=model.config, card={"metrics": {"val_ppl": 3.0}})
    assert card.name == "model_card.json" and (tmp_path / "model" / "model.safetensors").is_file()
    loaded = load_exported(tmp_path / "model")
    x = torch.tensor([[12, 3, 4, 5]])
    assert torch.equal(loaded.step(x)[0], model.eval().step(x)[0])
    state, meta = load_weights(tmp_path / "model")
    assert meta["metrics"]["val_ppl"] == 3.0 and meta["class"] == "unitwave.lm.model.LSTMUnitLM"
    assert set(state) == set(model.state_dict())
    code = (
        "import sys; from unitwave.train import load_exported; "
        f"m = load_exported({str(tmp_path / 'model')!r}); "
        "assert 'lightning' not in sys.modules and 'unitwave.train.trainer' not in sys.modules, sorted(sys.modules); "
        "print(type(m).__name__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "LSTMUnitLM"


def test_a_card_naming_a_foreign_class_is_not_imported(tmp_path):
    import json

    from unitwave.lm.model import LSTMUnitLM

    export(LSTMUnitLM(12, 8, 16, 1, 0.0), tmp_path / "model", arch={"k": 12})
    card_path = tmp_path / "model" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["class"] = "os.system"  # a downloaded card must never make us import whatever it names
    card_path.write_text(json.dumps(card))
    with pytest.raises(ValueError, match="not a unitwave model"):
        load_exported(tmp_path / "model")
