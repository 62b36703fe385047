"""Self-supervised speech encoders from transformers: wav2vec2 / XLS-R / MMS, HuBERT / mHuBERT, WavLM,
data2vec-audio, and w2v-BERT 2.0 (with its SeamlessM4T fbank frontend); fairseq HuBERT checkpoints go
through :mod:`unitwave.units.fairseq_checkpoint` to the same model.

Batching never changes a result:

- every batch passes an attention mask, so attention and w2v-BERT's convolution modules ignore padding;
- base-size models (``feat_extract_norm="group"``: HuBERT base, mHuBERT, wav2vec2 base) normalise the
  first conv layer's output per channel over *time*, so padding would shift those statistics; a hook
  on that GroupNorm recomputes them over each item's valid frames only. (Without it, such models could
  only be run item by item or in equal-length buckets.)

Only the layers up to the one read are kept, and that layer's output is captured by a forward hook:
layer L is the raw output of transformer layer L (fairseq's ``output_layer=L``), never normalised by
the encoder's final layer norm.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import typing as tp
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from unitwave.errors import UserError
from unitwave.units.encoders import Encoder, context_frames_for, resolve_device
from unitwave.units.presets import EncoderSpec

if tp.TYPE_CHECKING:
    import torch

log = logging.getLogger("unitwave")

#: transformers model types whose input is a waveform and whose frontend is the wav2vec2 conv stack
WAVEFORM_MODELS = ("wav2vec2", "hubert", "wavlm", "data2vec-audio", "wav2vec2-conformer")
FBANK_MODELS = ("wav2vec2-bert",)


class ModelUnavailableError(UserError, FileNotFoundError):
    """The encoder's weights are neither local nor downloadable from here."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``) answers a TCP connection, unless offline mode is set."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _unavailable(model: str, why: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"cannot load encoder {model!r}: {why}. On a machine with network run "
        f"`huggingface-cli download {model} --local-dir DIR`, copy DIR here and pass --model-path DIR "
        f"(with a preset) or --encoder DIR"
    )


def load_pretrained(model: str) -> tp.Any:
    """``AutoModel.from_pretrained`` of a local folder or a hub id (cache first, hub only if reachable)."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a transformers model folder (no config.json)")
        return AutoModel.from_pretrained(str(path))
    if path.is_absolute() or model.startswith("."):
        raise FileNotFoundError(f"encoder folder not found: {path}")
    try:
        return AutoModel.from_pretrained(model, local_files_only=True)
    except OSError:
        pass
    if not hub_reachable():
        raise _unavailable(model, "it is not in the local Hugging Face cache and the hub is unreachable")
    try:
        return AutoModel.from_pretrained(model)
    except OSError as e:
        raise _unavailable(model, f"download failed ({str(e).splitlines()[0]})") from None


def read_preprocessor(model: str) -> dict[str, tp.Any]:
    """The model's ``preprocessor_config.json`` (local folder or cache), or ``{}``."""
    path = Path(model).expanduser()
    if path.is_dir():
        file = path / "preprocessor_config.json"
        return json.loads(file.read_text()) if file.is_file() else {}
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "preprocessor_config.json")
        return json.loads(Path(cached).read_text()) if isinstance(cached, str) else {}
    except (ImportError, OSError, ValueError):  # no readable preprocessor config: the defaults apply
        return {}


class TransformersEncoder(Encoder):
    """Features of one transformer layer of a speech SSL model."""

    def __init__(self, spec: EncoderSpec, device: str = "auto", precision: str = "fp32") -> None:
        import torch

        self.device = torch.device(resolve_device(device))
        self.dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        if self.device.type == "cpu":
            self.dtype = torch.float32  # bf16/fp16 matmuls are ~100x slower than fp32 on CPU
        if spec.kind == "fairseq":
            from unitwave.units.fairseq_checkpoint import load_fairseq_hubert

            model, normalize = load_fairseq_hubert(Path(spec.model))
            self.normalize_eps = 1e-5  # fairseq: F.layer_norm(wave, wave.shape)
            preprocessor: dict[str, tp.Any] = {}
        else:
            model = load_pretrained(spec.model)
            preprocessor = read_preprocessor(spec.model)
            normalize = bool(
                preprocessor.get("do_normalize", getattr(model.config, "feat_extract_norm", "") == "layer")
            )
            self.normalize_eps = 1e-7  # transformers' Wav2Vec2FeatureExtractor
        self.model_type = model.config.model_type
        self.normalize = normalize if spec.normalize is None else spec.normalize
        self._setup_geometry(model, spec, preprocessor)
        self.model = self._truncate(model, spec.layer).to(self.device, self.dtype).eval()
        self.dim = int(model.config.hidden_size)
        self._captured: list[torch.Tensor] = []
        self.model.encoder.layers[-1].register_forward_hook(self._capture)
        self._valid_conv0: torch.Tensor | None = None
        self.batchable = True
        if getattr(model.config, "feat_extract_norm", None) == "group" and self.model_type in WAVEFORM_MODELS:
            norm = self.model.feature_extractor.conv_layers[0].layer_norm
            if not isinstance(norm, torch.nn.GroupNorm) or norm.num_groups != norm.num_channels:
                self.batchable = False  # unknown normalisation: equal lengths only
            else:
                norm.register_forward_hook(self._masked_group_norm)

    # ------------------------------------------------------------------------------------------ set-up
    def _setup_geometry(self, model: tp.Any, spec: EncoderSpec, preprocessor: dict[str, tp.Any]) -> None:
        import dataclasses as dc

        cfg = model.config
        if self.model_type in WAVEFORM_MODELS:
            hop, field = 1, 1
            for k, s in zip(cfg.conv_kernel, cfg.conv_stride):
                field += (k - 1) * hop
                hop *= s
            self.step_hop, self.step_field, self.samples_per_step = hop, field, 1
            self.fbank = None
        elif self.model_type in FBANK_MODELS:
            from transformers import SeamlessM4TFeatureExtractor

            keep = ("feature_size", "num_mel_bins", "stride", "sampling_rate")
            self.fbank = SeamlessM4TFeatureExtractor(**{k: v for k, v in preprocessor.items() if k in keep})
            stride = int(self.fbank.stride)
            hop, field = 160 * stride, 400 + 160 * (stride - 1)  # Kaldi fbank: 25 ms every 10 ms
            self.step_hop, self.step_field, self.samples_per_step = 1, 1, hop
        else:
            raise ValueError(
                f"{spec.model}: model type {self.model_type!r} is not a supported speech encoder "
                f"({', '.join(WAVEFORM_MODELS + FBANK_MODELS)})"
            )
        layers = int(cfg.num_hidden_layers)
        if not 1 <= spec.layer <= layers:
            raise ValueError(
                f"{spec.model}: --layer {spec.layer} is out of range; the model has layers 1..{layers}"
            )
        if spec.preset and (spec.frame_hop, spec.receptive_field) != (hop, field):
            log.warning(
                "%s: frame hop %d / field %d differ from preset %s (%d / %d); using the model's",
                spec.model,
                hop,
                field,
                spec.preset,
                spec.frame_hop,
                spec.receptive_field,
            )
        self.spec = dc.replace(
            spec,
            frame_hop=hop,
            receptive_field=field,
            normalize=self.normalize if self.fbank is None else None,
        )
        self.context_frames = context_frames_for(self.spec)

    @staticmethod
    def _truncate(model: tp.Any, layer: int) -> tp.Any:
        """Drop the transformer layers after ``layer``: they cannot change its output."""
        model.encoder.layers = model.encoder.layers[:layer]
        return model

    def _capture(self, module: tp.Any, inputs: tp.Any, output: tp.Any) -> None:
        self._captured.append(output[0] if isinstance(output, tuple) else output)

    def _masked_group_norm(
        self, module: torch.nn.GroupNorm, inputs: tp.Any, output: torch.Tensor
    ) -> torch.Tensor:
        """Padded items of ``x (B, C, T0)`` normalised over their valid frames only (same kernel as alone)."""
        import torch.nn.functional as F

        valid = self._valid_conv0
        if valid is None:
            return output
        x = inputs[0]
        for row, frames in enumerate(valid.tolist()):
            if frames < x.shape[-1]:
                output[row : row + 1, :, :frames] = F.group_norm(
                    x[row : row + 1, :, :frames], module.num_groups, module.weight, module.bias, module.eps
                )
        return output

    # ------------------------------------------------------------------------------------------ running
    def frontend(self, wave: np.ndarray) -> torch.Tensor:
        """Waveform models: ``(N, 1)`` samples, normalised per utterance when the model expects it.
        w2v-BERT: ``(N_frames, 160)`` stacked fbanks, normalised per mel bin over the utterance."""
        import torch

        if self.fbank is None:
            x = wave.astype(np.float64)
            if self.normalize and x.size:
                x = (x - x.mean()) / np.sqrt(x.var() + self.normalize_eps)
            return torch.from_numpy(x.astype(np.float32))[:, None]
        if wave.size < 400:
            return torch.zeros((0, 80 * int(self.fbank.stride)))
        feats = self.fbank(wave, sampling_rate=self.spec.sample_rate, return_tensors="np")["input_features"][
            0
        ]
        frames = self.count_fbank(wave.size)
        return torch.from_numpy(np.ascontiguousarray(feats[:frames], dtype=np.float32))

    def count_fbank(self, n_samples: int) -> int:
        """Valid stacked fbank frames of ``n_samples`` (the extractor pads an odd frame count)."""
        fbank_frames = 0 if n_samples < 400 else 1 + (n_samples - 400) // 160
        return fbank_frames // int(self.fbank.stride)

    def forward_batch(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        import torch

        lengths = [int(x.shape[0]) for x in inputs]
        counts = [self.count(n) for n in lengths]
        out: list[torch.Tensor | None] = [None] * len(inputs)
        run = [i for i, c in enumerate(counts) if c > 0]
        for i, c in enumerate(counts):
            if c == 0:
                out[i] = torch.zeros((0, self.dim), device=self.device)
        if run:
            longest = max(lengths[i] for i in run)
            channels = inputs[run[0]].shape[1]
            batch = torch.zeros((len(run), longest, channels), dtype=torch.float32)
            mask = torch.zeros((len(run), longest), dtype=torch.long)
            for row, i in enumerate(run):
                batch[row, : lengths[i]] = inputs[i]
                mask[row, : lengths[i]] = 1
            feats = self._run(
                batch.to(self.device, self.dtype),
                mask.to(self.device),
                torch.tensor([lengths[i] for i in run]),
            )
            for row, i in enumerate(run):
                out[i] = feats[row, : counts[i]].float()
        return tp.cast(list, out)

    def _run(self, batch: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Padded inputs ``(B, L, C)`` + mask ``(B, L)`` -> the read layer's output ``(B, T, D)``."""
        import torch

        self._captured.clear()
        with torch.inference_mode(), warnings.catch_warnings():
            # WavLM hands torch's attention a long padding mask next to a float bias; the result is right
            warnings.filterwarnings("ignore", message=".*mismatched key_padding_mask.*")
            if self.fbank is None:
                first = self.model.feature_extractor.conv_layers[0].conv
                k, s = first.kernel_size[0], first.stride[0]
                self._valid_conv0 = (lengths - k) // s + 1
                try:
                    self.model(input_values=batch[..., 0], attention_mask=mask)
                finally:
                    self._valid_conv0 = None
            else:
                self.model(input_features=batch, attention_mask=mask)
        if len(self._captured) != 1:
            raise RuntimeError(f"expected one captured layer output, got {len(self._captured)}")
        return self._captured.pop()
