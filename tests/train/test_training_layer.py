"""unitwave.train: bit-for-bit resume (automatic and GAN), checkpoint contents, early stopping, bad configs."""

from __future__ import annotations

import dataclasses as dc
import json
from pathlib import Path

import pytest
import torch

from unitwave.config import ConfigError, from_dict
from unitwave.train import TrainConfig, fit, load_checkpoint, make_loader
from unitwave.train.toy import ToyGAN, ToyRegressor, mixture_data, regression_data

torch.set_num_threads(1)


class Crash(Exception):
    pass


def crash_before_epoch(index: int):
    """A callback that kills the run at the start of epoch ``index`` (0-based): an interrupted job."""
    import lightning.pytorch as pl

    class CrashAt(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == index:
                raise Crash(f"simulated crash before epoch {index}")

    return CrashAt()


def base_config(**changes) -> TrainConfig:
    cfg = TrainConfig(epochs=4, batch_size=16, lr=1e-2, warmup_steps=3, grad_accum=2, save_every=2, patience=0,
                      progress_bar=False, precision="32", device="cpu")
    return dc.replace(cfg, **changes)


def train_toy(kind: str, out: Path, cfg: TrainConfig, crash_at: int | None = None):
    torch.manual_seed(0)
    if kind == "regressor":
        model, train, val = ToyRegressor(cfg), regression_data(100, 1), regression_data(40, 2)
    else:
        model, train, val = ToyGAN(cfg), mixture_data(96, 1), mixture_data(48, 2)
    callbacks = [crash_before_epoch(crash_at)] if crash_at is not None else []
    result = fit(model, make_loader(train, cfg.batch_size, shuffle=True, seed=cfg.seed),
                 make_loader(val, 32, shuffle=False), out, config={"toy": kind, "cfg": dc.asdict(cfg)},
                 echo=False, callbacks=callbacks)
    return result, model


def without_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same_training(a, b, ckpt_a: Path, ckpt_b: Path) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"weights differ after resume: {k}"
    ca, cb = load_checkpoint(ckpt_a), load_checkpoint(ckpt_b)
    for oa, ob in zip(ca["optimizer_states"], cb["optimizer_states"]):
        for pa, pb in zip(oa["state"].values(), ob["state"].values()):
            assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert ca["lr_schedulers"] == cb["lr_schedulers"]
    assert without_time(ca["history"]) == without_time(cb["history"])
    assert ca["global_step"] == cb["global_step"] and ca["epoch"] == cb["epoch"]


@pytest.fixture(scope="module")
def regressor_runs(tmp_path_factory):
    """4 epochs straight, and 2 epochs + a crash + a resumed run of the same command."""
    root = tmp_path_factory.mktemp("regressor")
    cfg = base_config()
    straight = train_toy("regressor", root / "straight", cfg)
    with pytest.raises(Crash):
        train_toy("regressor", root / "resumed", cfg, crash_at=2)
    resumed = train_toy("regressor", root / "resumed", cfg)
    return root, straight, resumed


def test_resume_is_bit_for_bit(regressor_runs):
    root, (r1, m1), (r2, m2) = regressor_runs
    assert [row["epoch"] for row in r2.history] == [1, 2, 3, 4]
    assert_same_training(m1, m2, root / "straight/checkpoints/final.ckpt", root / "resumed/checkpoints/final.ckpt")
    assert r1.best == r2.best and r1.best_epoch == r2.best_epoch
    assert r1.history[-1]["val_loss"] < r1.history[0]["val_loss"]  # it learns


def test_checkpoint_files_and_contents(regressor_runs):
    root, (result, _), _ = regressor_runs
    ckpts = root / "straight" / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["best.ckpt", "epoch_0002.ckpt", "epoch_0004.ckpt", "final.ckpt", "latest.ckpt"]
    for path in ckpts.iterdir():
        ckpt = torch.load(path, weights_only=True)  # plain data and tensors only
        for key in ("state_dict", "optimizer_states", "lr_schedulers", "rng_states", "history", "config", "epoch",
                    "global_step", "loops", "callbacks"):
            assert key in ckpt, (path.name, key)
        assert set(ckpt["rng_states"]) >= {"python", "numpy", "torch"}
    periodic = torch.load(ckpts / "epoch_0002.ckpt", weights_only=True)
    assert len(periodic["history"]) == 2 and periodic["config"]["toy"] == "regressor"
    final = torch.load(ckpts / "final.ckpt", weights_only=True)
    history = json.loads((root / "straight" / "training_history.json").read_text())
    assert without_time(history) == without_time(final["history"]) and len(history) == 4
    assert {"epoch", "step", "train_loss", "val_loss", "val_mae", "lr", "best", "best_epoch", "seconds"} <= set(history[0])
    assert final["global_step"] == 4 * 4  # 7 batches per epoch, accumulated by 2 -> 4 optimizer steps
    assert list((root / "straight" / "tensorboard").glob("events.out.tfevents.*"))
    log_lines = (root / "straight" / "train.log").read_text().splitlines()
    assert len(log_lines) == 4 and log_lines[-1].startswith("epoch 4/4") and "val_loss" in log_lines[-1]
    assert result.best_path == ckpts / "best.ckpt" and result.best_epoch == max(
        history, key=lambda r: -r["val_loss"])["epoch"]


def test_gan_manual_optimisation_resumes_bit_for_bit_and_learns(tmp_path):
    cfg = base_config(epochs=6, schedule="exponential", lr_decay=0.9, monitor="val_w1", lr=5e-3, save_every=3)
    r1, m1 = train_toy("gan", tmp_path / "straight", cfg)
    with pytest.raises(Crash):
        train_toy("gan", tmp_path / "resumed", cfg, crash_at=3)
    _, m2 = train_toy("gan", tmp_path / "resumed", cfg)
    assert_same_training(m1, m2, tmp_path / "straight/checkpoints/final.ckpt", tmp_path / "resumed/checkpoints/final.ckpt")
    first, last = r1.history[0], r1.history[-1]
    assert last["val_w1"] < first["val_w1"] and last["val_fake_abs_mean"] > first["val_fake_abs_mean"]
    assert {"train_loss", "train_d_loss", "lr", "lr_1"} <= set(last)
    # exponential decay: lr x 0.9 per epoch, for both optimisers
    assert last["lr"] == pytest.approx(5e-3 * 0.9**6) and last["lr_1"] == pytest.approx(5e-3 * 0.9**6)
    assert [e for e, _ in m1.saved_epochs] == list(range(1, 7))
    assert "periodic" in dict(m1.saved_epochs)[3] and "latest" in dict(m1.saved_epochs)[1]


def test_early_stopping_and_rerun_of_a_finished_run(tmp_path):
    # lr so small that the validation loss cannot improve by min_delta: stop after 1 + patience epochs
    cfg = base_config(epochs=20, lr=1e-9, warmup_steps=0, patience=2, min_delta=0.01, save_every=0)
    result, _ = train_toy("regressor", tmp_path / "run", cfg)
    assert result.stopped_early and result.epochs_done == 3 and len(result.history) == 3
    assert (tmp_path / "run/checkpoints/final.ckpt").is_file()
    assert "early stop" in (tmp_path / "run/train.log").read_text()
    again, _ = train_toy("regressor", tmp_path / "run", cfg)  # rerun: resumes, sees it stopped, trains nothing
    assert again.epochs_done == 3 and again.stopped_early


def test_bad_configs_fail_with_the_flag_named(tmp_path):
    with pytest.raises(ConfigError, match="--grad-accum"):
        base_config(grad_accum=0).check()
    with pytest.raises(ConfigError, match="--lr-decay"):
        base_config(lr_decay=1.5).check()
    with pytest.raises(ConfigError, match="did you mean 'grad_accum'"):
        from_dict(TrainConfig, {"grad_acum": 2})
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(TrainConfig, {"schedule": "linear"})
    with pytest.raises(ConfigError, match="--resume best"):
        train_toy("regressor", tmp_path / "none", base_config(resume="best"))
    with pytest.raises(ConfigError, match="--precision 16 needs a CUDA GPU"):
        train_toy("regressor", tmp_path / "fp16", base_config(precision="16"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="--device cuda"):
            train_toy("regressor", tmp_path / "cuda", base_config(device="cuda"))
    with pytest.raises(ValueError, match=r"--monitor 'val_acc' was not logged; logged epoch metrics: .*val_loss"):
        train_toy("regressor", tmp_path / "monitor", base_config(epochs=1, monitor="val_acc"))


def test_gan_optimisers_keep_their_own_peak_learning_rates(tmp_path):
    cfg = base_config(epochs=2, schedule="exponential", lr_decay=0.5, monitor="val_w1", warmup_steps=0,
                      grad_accum=1, save_every=0)
    model = ToyGAN(cfg)
    model.generator_lr, model.discriminator_lr = 2e-3, 5e-4  # what GANModule(train, generator_lr=..., ...) sets
    result = fit(model, make_loader(mixture_data(64, 1), 16, shuffle=True), make_loader(mixture_data(32, 2), 32, shuffle=False),
                 tmp_path / "run", echo=False)
    opt_g, opt_d = model.optimizers()
    assert [g["initial_lr"] for g in opt_g.param_groups] == [2e-3] and [g["initial_lr"] for g in opt_d.param_groups] == [5e-4]
    # the schedule scales both alike: x0.5 per epoch
    assert [(row["lr"], row["lr_1"]) for row in result.history] == [
        pytest.approx((1e-3, 2.5e-4)), pytest.approx((5e-4, 1.25e-4))]
