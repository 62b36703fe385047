"""Two tiny real models that exercise the training layer end to end (tests, and templates for new models).

- :class:`ToyRegressor`: an MLP with dropout fitting ``y = sin(3x)`` (automatic optimisation).
- :class:`ToyGAN`: a 1-D generator/discriminator pair learning a Gaussian mixture (manual optimisation);
  ``val_w1`` is the 1-D Wasserstein distance between generated and real samples.

Their datasets are generated from a seed; nothing is downloaded.
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn
from torch.utils.data import TensorDataset

from unitwave.train.config import TrainConfig
from unitwave.train.gan import GANModule
from unitwave.train.module import Scalars, TrainModule


def regression_data(n: int, seed: int) -> TensorDataset:
    """``n`` pairs ``(x (1,), y (1,))`` with ``y = sin(3x) + noise``, x uniform in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 2 - 1
    y = torch.sin(3 * x) + 0.05 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


class ToyRegressor(TrainModule):
    def __init__(self, train: TrainConfig, hidden: int = 32, dropout: float = 0.2) -> None:
        super().__init__(train)
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def training_loss(self, batch: tp.Any) -> tuple[torch.Tensor, Scalars]:
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y), {}

    def validation_metrics(self, batch: tp.Any) -> Scalars:
        x, y = batch
        pred = self.net(x)
        return {"loss": nn.functional.mse_loss(pred, y), "mae": (pred - y).abs().mean()}


def mixture_data(n: int, seed: int, noise_dim: int = 4) -> TensorDataset:
    """``n`` pairs ``(real (1,), noise (noise_dim,))``; real samples from 0.5 N(-2, 0.3) + 0.5 N(2, 0.3)."""
    g = torch.Generator().manual_seed(seed)
    sign = torch.where(torch.rand(n, 1, generator=g) < 0.5, -1.0, 1.0)
    real = 2.0 * sign + 0.3 * torch.randn(n, 1, generator=g)
    return TensorDataset(real, torch.randn(n, noise_dim, generator=g))


class ToyGAN(GANModule):
    """Generator noise ``(B, noise_dim)`` -> sample ``(B, 1)``; discriminator sample -> logit ``(B, 1)``."""

    def __init__(self, train: TrainConfig, noise_dim: int = 4, hidden: int = 32) -> None:
        super().__init__(train)
        self.generator = nn.Sequential(nn.Linear(noise_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        self.discriminator = nn.Sequential(nn.Linear(1, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Linear(hidden, 1))
        self.bce = nn.BCEWithLogitsLoss()
        self.saved_epochs: list[tuple[int, tuple[str, ...]]] = []

    def generator_parameters(self) -> tp.Iterable[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> tp.Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def generate(self, batch: tp.Any) -> torch.Tensor:
        _, noise = batch
        return self.generator(noise)

    def discriminator_loss(self, batch: tp.Any, generated: torch.Tensor) -> tuple[torch.Tensor, Scalars]:
        real, _ = batch
        real_logit, fake_logit = self.discriminator(real), self.discriminator(generated)
        loss = self.bce(real_logit, torch.ones_like(real_logit)) + self.bce(fake_logit, torch.zeros_like(fake_logit))
        return loss, {"d_real": torch.sigmoid(real_logit).mean()}

    def generator_loss(self, batch: tp.Any, generated: torch.Tensor) -> tuple[torch.Tensor, Scalars]:
        logit = self.discriminator(generated)
        return self.bce(logit, torch.ones_like(logit)), {}

    def validation_metrics(self, batch: tp.Any) -> Scalars:
        real, noise = batch
        fake = self.generator(noise)
        w1 = (torch.sort(real.flatten()).values - torch.sort(fake.flatten()).values).abs().mean()
        return {"w1": w1, "fake_abs_mean": fake.abs().mean()}

    def on_epoch_saved(self, out_dir: tp.Any, epoch: int, saved: tuple[str, ...]) -> None:
        # what a vocoder does here is write sample WAVs; drawing noise must not disturb training
        torch.randn(8)
        self.saved_epochs.append((epoch, saved))
