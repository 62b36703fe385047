"""``UnitExtractor``: waveforms to discrete units with a fitted k-means folder (the library entry point).

A k-means folder holds ``kmeans.safetensors`` and ``model_card.json``; the card's ``"encoder"`` entry
rebuilds the encoder (preset, hub id, local folder or fairseq ``.pt``, layer, feature parameters), so
any stage can turn audio into the same units the corpus was encoded with::

    extractor = UnitExtractor.from_dir("runs/units/kmeans", device="auto")
    units = extractor.encode([wave_a, wave_b])   # 16 kHz float32 (N,) each -> int64 (T,) each
    times = extractor.frame_times(len(units[0]))  # (T, 2) seconds
"""

from __future__ import annotations

import dataclasses as dc
import json
import typing as tp
from pathlib import Path

import numpy as np

from unitwave.units.encoders import Encoder, build_encoder, resolve_device
from unitwave.units.kmeans import KMeansModel
from unitwave.units.presets import EncoderSpec

CARD_FILE = "model_card.json"


def default_batch_seconds(device: str) -> float:
    """Padded audio seconds per forward pass: on a GPU what 80% of its free memory holds; on a CPU 0,
    i.e. one utterance (or chunk) at a time, since batching gains nothing there and padding costs."""
    if not device.startswith("cuda"):
        return 0.0
    from unitwave.engine.batching import initial_batch_seconds

    return initial_batch_seconds(seconds_per_gib=40.0, default=60.0, device=device)


def read_model_card(folder: Path) -> dict[str, tp.Any]:
    """``model_card.json`` of a k-means folder, checked for the fields that rebuild its extractor."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {folder} is not a k-means folder (run `unitwave units fit`)"
        )
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    for field in ("encoder", "k"):
        if field not in card:
            raise ValueError(f"{path}: missing field {field!r}")
    return card


def kmeans_id(folder: Path) -> str:
    """Short digest of a k-means folder's centroids: which unit ids mean which clusters. Unit corpora and
    the vocoders trained on them carry it, so a different k-means of the same k is recognised."""
    from unitwave.data.paths import files_signature
    from unitwave.units.kmeans import CENTROIDS_FILE

    return files_signature([Path(folder) / CENTROIDS_FILE])


class UnitExtractor:
    """Encoder + k-means: ``encode(waveforms)`` gives one unit id per encoder frame.

    Batched internally (length-sorted, chunked when long); the result for a waveform does not depend
    on what it is batched with.
    """

    def __init__(
        self,
        encoder: Encoder,
        kmeans: KMeansModel,
        card: dict[str, tp.Any] | None = None,
        max_batch_seconds: float | None = None,
    ) -> None:
        if kmeans.dim != encoder.dim:
            raise ValueError(
                f"k-means centroids have dimension {kmeans.dim} but encoder {encoder.spec.label} layer "
                f"{encoder.spec.layer} gives {encoder.dim}: the folder was fitted on another encoder"
            )
        self.encoder = encoder
        self.kmeans = kmeans
        self.card = card or {}
        if max_batch_seconds is None:
            max_batch_seconds = default_batch_seconds(str(encoder.device))
        self.max_batch_seconds = max_batch_seconds

    @classmethod
    def from_dir(
        cls,
        km_dir: str | Path,
        device: str = "auto",
        model_path: str | Path | None = None,
        precision: str = "fp32",
        max_batch_seconds: float | None = None,
    ) -> UnitExtractor:
        """Rebuild the extractor a k-means folder was fitted with.

        Args:
            km_dir: folder with ``kmeans.safetensors`` and ``model_card.json``.
            device: ``auto`` (cuda when available), ``cpu``, ``cuda:0``...
            model_path: where the encoder's weights are on this machine, when not where the card says.
            precision: ``fp32``, ``fp16`` or ``bf16`` for SSL models on a GPU.
            max_batch_seconds: padded audio seconds per forward pass (default: :func:`default_batch_seconds`).
        """
        card = read_model_card(Path(km_dir))
        spec = EncoderSpec.from_dict(card["encoder"], where=str(Path(km_dir) / CARD_FILE))
        if model_path is not None:
            path = Path(model_path).expanduser().absolute()
            spec = dc.replace(
                spec, model=str(path), kind="fairseq" if path.suffix == ".pt" else "transformers"
            )
        device = resolve_device(device)
        encoder = build_encoder(spec, device, precision)
        return cls(encoder, KMeansModel.load(Path(km_dir), device), card, max_batch_seconds)

    # -------------------------------------------------------------------------------------- geometry
    @property
    def spec(self) -> EncoderSpec:
        return self.encoder.spec

    @property
    def sample_rate(self) -> int:
        """Hz the waveforms must have."""
        return self.spec.sample_rate

    @property
    def frame_hop_s(self) -> float:
        """Seconds between units."""
        return self.spec.frame_hop_s

    @property
    def frame_offset_s(self) -> float:
        """Start of frame 0's interval in seconds (frames are hop-long, centred on their receptive field)."""
        return self.spec.frame_offset_s

    @property
    def k(self) -> int:
        return self.kmeans.k

    def num_frames(self, n_samples: int) -> int:
        """Units an ``n_samples`` waveform gives."""
        return self.encoder.num_frames(n_samples)

    def frame_times(self, num_frames: int) -> np.ndarray:
        """``(T, 2)`` start and end of each frame in seconds: ``offset + t * hop`` to ``+ hop``."""
        start = self.frame_offset_s + np.arange(num_frames) * self.frame_hop_s
        return np.stack([start, start + self.frame_hop_s], axis=1)

    # -------------------------------------------------------------------------------------- encoding
    def features(self, waveforms: tp.Sequence[np.ndarray]) -> list[np.ndarray]:
        """Encoder features ``(T_i, D)`` float32 of mono waveforms ``(N_i,)`` at :attr:`sample_rate`."""
        return [f.cpu().numpy() for f in self.encoder.features(list(waveforms), self.max_batch_seconds)]

    def encode(self, waveforms: tp.Sequence[np.ndarray]) -> list[np.ndarray]:
        """Unit ids ``(T_i,)`` int64 of mono waveforms ``(N_i,)`` at :attr:`sample_rate`.

        ``T_i = num_frames(N_i)``; a waveform shorter than one receptive field gives ``(0,)``.
        Assignment is a matmul on the encoder's device (the GPU when there is one).
        """
        feats = self.encoder.features(list(waveforms), self.max_batch_seconds)
        return [self.kmeans.assign(f) for f in feats]
