"""Generators by name, and vocoder model folders: ``generator.safetensors`` + ``model_card.json``.

A model folder never holds pickles. The card records the resolved :class:`VocoderConfig` (so the
generator can be rebuilt exactly), the speaker/style tables, the unit frame hop, and whatever the
writer adds (training data, seed, metrics, where an imported checkpoint came from).
"""

from __future__ import annotations

import json
import typing as tp
from pathlib import Path

import torch
from torch import nn

from unitwave.data.atomic import atomic_path, atomic_write_text
from unitwave.vocoder.config import VocoderConfig
from unitwave.vocoder.hifigan import HifiganGenerator, has_weight_norm, remove_weight_norm
from unitwave.vocoder.simple import SimpleGenerator

WEIGHTS = "generator.safetensors"
CARD = "model_card.json"
CARD_FORMAT = "unitwave-vocoder"
CARD_VERSION = 1

#: generator architectures by name; each builds an ``nn.Module`` from the whole vocoder config
GENERATORS: dict[str, tp.Callable[[VocoderConfig], nn.Module]] = {
    "hifigan": lambda cfg: HifiganGenerator(cfg.hifigan),
    "simple": lambda cfg: SimpleGenerator(cfg.simple),
}


def build_generator(cfg: VocoderConfig) -> nn.Module:
    """A freshly initialised generator for ``cfg`` (weight norm attached for training)."""
    try:
        factory = GENERATORS[cfg.generator]
    except KeyError:
        raise ValueError(f"unknown generator {cfg.generator!r}; known: {', '.join(GENERATORS)}") from None
    return factory(cfg)


def save_vocoder(
    out_dir: Path,
    generator: nn.Module,
    cfg: VocoderConfig,
    *,
    speakers: tp.Sequence[str] | None = None,
    styles: tp.Sequence[str] | None = None,
    frame_hop_s: float | None = None,
    extra: dict[str, tp.Any] | None = None,
) -> Path:
    """Write ``generator.safetensors`` and ``model_card.json`` into ``out_dir`` (atomically); returns it.

    Args:
        generator: weight norm attached or removed; the card says which.
        speakers: name of each row of the speaker lookup table (index = speaker id).
        styles: name of each row of the style table.
        frame_hop_s: seconds per unit frame (default: ``hop / sample_rate``).
        extra: more card fields (training data, seed, metrics, source of an import...).
    """
    from safetensors.torch import save_file

    from unitwave import __version__
    from unitwave.config import to_dict

    if getattr(generator, "channels_last", False):
        raise ValueError("save the generator before converting it for CPU inference (vocoder.fast)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    card = {
        "format": CARD_FORMAT,
        "format_version": CARD_VERSION,
        "generator": cfg.generator,
        "sample_rate": cfg.sample_rate,
        "hop_samples": cfg.hop,
        "frame_hop_s": frame_hop_s if frame_hop_s is not None else cfg.hop / cfg.sample_rate,
        "weight_norm": has_weight_norm(generator),
        "parameters": sum(p.numel() for p in generator.parameters()),
        "speakers": list(speakers) if speakers is not None else None,
        "styles": list(styles) if styles is not None else None,
        "code_version": __version__,
        "config": to_dict(cfg),
        **(extra or {}),
    }
    atomic_write_text(out / CARD, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    return out


def read_card(voc_dir: Path) -> dict[str, tp.Any]:
    """The model card of a vocoder folder, checked for format."""
    path = Path(voc_dir) / CARD
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a unitwave vocoder folder (no {CARD})")
    card = json.loads(path.read_text(encoding="utf-8"))
    if card.get("format") != CARD_FORMAT:
        raise ValueError(f"{path}: 'format' is {card.get('format')!r}, expected {CARD_FORMAT!r}")
    if int(card.get("format_version", 0)) > CARD_VERSION:
        raise ValueError(f"{path}: format_version {card['format_version']} is newer than this unitwave reads")
    return card


def config_from_card(card: dict[str, tp.Any], where: str = CARD) -> VocoderConfig:
    from unitwave.config import ConfigError, from_dict

    try:
        return from_dict(VocoderConfig, card["config"], where=f"{where}: config")
    except (KeyError, ConfigError, TypeError) as e:
        raise ValueError(f"{where}: invalid vocoder config ({e})") from None


def load_state(generator: nn.Module, state: dict[str, torch.Tensor], where: str) -> nn.Module:
    """Load ``state`` into ``generator``; weight norm is removed first when the weights were saved without."""
    if has_weight_norm(generator) and not any(".parametrizations." in k for k in state):
        remove_weight_norm(generator)
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{where}: weights do not fit the configured generator; missing {sorted(missing)[:8]}, "
            f"unexpected {sorted(unexpected)[:8]} (was the folder written by another architecture?)"
        )
    return generator


def load_vocoder(
    voc_dir: Path, for_inference: bool = True
) -> tuple[nn.Module, VocoderConfig, dict[str, tp.Any]]:
    """``(generator, config, card)`` from a folder; ``for_inference`` removes weight norm and sets eval()."""
    from safetensors.torch import load_file

    voc_dir = Path(voc_dir)
    card = read_card(voc_dir)
    cfg = config_from_card(card, str(voc_dir / CARD))
    weights = voc_dir / WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing generator weights")
    generator = load_state(build_generator(cfg), load_file(str(weights)), str(weights))
    if for_inference:
        remove_weight_norm(generator).eval()
    return generator, cfg, card
