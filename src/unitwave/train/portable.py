"""Inference weights: ``<name>.safetensors`` + ``model_card.json``, loadable with torch + safetensors only.

The card names the model class (``module.Class``) and the keyword arguments that build it, so
:func:`load_exported` rebuilds the model without Lightning, without training code and without
unpickling anything. A model class exported this way must be constructible from JSON-able keyword
arguments (the ``arch`` given to :func:`export`).

This module imports neither Lightning nor any other part of unitwave.train.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import typing as tp
from pathlib import Path

from unitwave.data.atomic import atomic_path, atomic_write_text

if tp.TYPE_CHECKING:
    import torch

CARD_NAME = "model_card.json"
CARD_FORMAT = "unitwave-model"
CARD_VERSION = 1


def export(
    model: torch.nn.Module,
    out_dir: Path,
    *,
    arch: dict[str, tp.Any],
    card: dict[str, tp.Any] | None = None,
    name: str = "model",
) -> Path:
    """Write ``model``'s weights and card into ``out_dir``; returns the card's path.

    Args:
        model: the inference network (e.g. the generator only, not the discriminators).
        out_dir: folder for ``<name>.safetensors`` and ``model_card.json``.
        arch: keyword arguments that rebuild the model: ``type(model)(**arch)``.
        card: what else the card says: data, config, seed, metrics...
        name: weights file stem.
    """
    import torch
    from safetensors.torch import save_file

    from unitwave import __version__

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json.dumps(arch)  # fail here, not at load time, when arch is not plain data
    # cloned, contiguous, on CPU: safetensors refuses shared storage (tied weights load into both keys)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    weights = out_dir / f"{name}.safetensors"
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    cls = type(model)
    full = {
        "format": CARD_FORMAT,
        "format_version": CARD_VERSION,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "arch": arch,
        "weights": weights.name,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "dtypes": sorted({str(t.dtype).replace("torch.", "") for t in tensors.values()}),
        "code_version": __version__,
        "torch_version": torch.__version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        **(card or {}),
    }
    card_path = out_dir / CARD_NAME
    atomic_write_text(card_path, json.dumps(full, indent=2, default=str) + "\n")
    return card_path


def read_card(path: Path) -> tuple[dict[str, tp.Any], Path]:
    """The card of an exported model (``path``: its folder or the card file) and the folder."""
    path = Path(path)
    card_path = path / CARD_NAME if path.is_dir() else path
    if not card_path.is_file():
        raise FileNotFoundError(f"no {CARD_NAME} at {path}: give the folder an export wrote (e.g. <run>/model)")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if card.get("format") != CARD_FORMAT:
        raise ValueError(f"{card_path}: not a unitwave model card (format is {card.get('format')!r})")
    return card, card_path.parent


def load_weights(path: Path, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, tp.Any]]:
    """The exported state dict and its card (for callers that build the model themselves)."""
    from safetensors.torch import load_file

    card, folder = read_card(path)
    weights = folder / card["weights"]
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} (named by {folder / CARD_NAME}) is missing")
    return load_file(str(weights), device=device), card


def load_exported(path: Path, device: str = "cpu") -> torch.nn.Module:
    """Rebuild the exported model (eval mode, on ``device``) from its card and weights."""
    import torch

    state, card = load_weights(path, device="cpu")
    module_name, _, cls_name = card["class"].rpartition(".")
    if module_name.split(".")[0] != "unitwave":
        # a downloaded card must not make us import (and so run) an arbitrary module
        raise ValueError(f"{path}: model class {card['class']!r} is not a unitwave model; load its weights "
                         "with load_weights() into a model you build yourself")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{path}: model class {card['class']!r} cannot be imported ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ValueError(f"{path}: {card['class']!r} is not a torch.nn.Module")
    model = cls(**card["arch"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit {card['class']}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.to(device).eval()
