"""Unit vocoders: speech from discrete units (+ F0, speaker), and legacy fairseq/textlesslib vocoders.

Modules (torch is imported only when one of them is):

- ``config``: :class:`VocoderConfig` and its parts (no torch);
- ``hifigan``: the HiFi-GAN generator with unit/F0/speaker/style conditioning ("V2"), weight-norm removal;
- ``simple``: the transposed-convolution baseline ("V1");
- ``discriminators``, ``losses``, ``mel``: multi-period + multi-scale discriminators, LSGAN + feature
  matching + mel L1, and the ``VocoderObjective`` the training layer calls;
- ``pitch``: WORLD F0 on unit frames, its cache and quantisation;
- ``dataset``: (units, F0, speaker, audio segment) items from a unit corpus + audio manifest;
- ``models``: the generator registry and model folders (``generator.safetensors`` + ``model_card.json``);
- ``inference``: ``Vocoder.from_dir(voc_dir).synthesize(units, f0=None, speaker=None)``;
- ``legacy``: fairseq CodeHiFiGAN checkpoints mapped onto the HiFi-GAN generator.
"""

from __future__ import annotations

import importlib
import typing as tp

_EXPORTS = {
    "VocoderConfig": "unitwave.vocoder.config",
    "HifiganConfig": "unitwave.vocoder.config",
    "SimpleConfig": "unitwave.vocoder.config",
    "PitchConfig": "unitwave.vocoder.config",
    "Vocoder": "unitwave.vocoder.inference",
    "GENERATORS": "unitwave.vocoder.models",
    "build_generator": "unitwave.vocoder.models",
    "save_vocoder": "unitwave.vocoder.models",
    "load_vocoder": "unitwave.vocoder.models",
    "VocoderObjective": "unitwave.vocoder.losses",
    "import_legacy": "unitwave.vocoder.legacy",
    "load_legacy": "unitwave.vocoder.legacy",
}

__all__ = [
    "GENERATORS",
    "HifiganConfig",
    "PitchConfig",
    "SimpleConfig",
    "Vocoder",
    "VocoderConfig",
    "VocoderObjective",
    "build_generator",
    "import_legacy",
    "load_legacy",
    "load_vocoder",
    "save_vocoder",
]


def __getattr__(name: str) -> tp.Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'unitwave.vocoder' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
