"""Which encoder turns speech into frames: named presets, and the spec a k-means folder records.

An :class:`EncoderSpec` is everything needed to rebuild an encoder on another machine: its kind, the
model (hub id, local folder or fairseq ``.pt``), the layer read, and the frame geometry. Frame ``t`` of
every encoder covers samples ``[t * frame_hop, t * frame_hop + receptive_field)`` of its input, so frame
times are exact and known without running the model.

Facts of the presets (16 kHz input): the wav2vec2 / HuBERT conv stack has kernels (10, 3, 3, 3, 3, 2, 2)
and strides (5, 2, 2, 2, 2, 2, 2): 320-sample hop (20 ms), 400-sample receptive field (25 ms).
w2v-BERT 2.0 reads 80-bin Kaldi fbanks (25 ms windows every 10 ms) stacked by two: 320-sample hop and
560 samples (35 ms) per stacked frame. Layers are 1-based: layer L is the output of transformer layer L
(fairseq's ``output_layer=L``, transformers' ``hidden_states[L]``), before any final encoder layer norm.
"""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

SAMPLE_RATE = 16000
SSL_KINDS = ("transformers", "fairseq")
FEATURE_KINDS = ("mfcc", "logmel")


@dc.dataclass(frozen=True)
class Preset:
    """A named, commonly used encoder."""

    kind: str
    model: str  # hub id
    layer: int
    frame_hop: int  # samples at 16 kHz
    receptive_field: int  # samples at 16 kHz
    note: str = ""
    dim: int = 0  # feature dimension of the layer read (0: depends on options); known without the weights


#: preset name -> encoder (a plain dict: add an entry to add a preset)
PRESETS: dict[str, Preset] = {
    "mms-300m": Preset(
        "transformers", "facebook/mms-300m", 14, 320, 400, "wav2vec2 large, 24 layers, the users' default", 1024
    ),
    "xlsr-53": Preset(
        "transformers", "facebook/wav2vec2-large-xlsr-53", 14, 320, 400, "wav2vec2 large, 24 layers", 1024
    ),
    "hubert-base": Preset(
        "transformers", "facebook/hubert-base-ls960", 6, 320, 400, "HuBERT base, 12 layers", 768
    ),
    "mhubert-147": Preset(
        "transformers", "utter-project/mHuBERT-147", 9, 320, 400, "HuBERT base, 12 layers, 147 languages", 768
    ),
    "w2v-bert-2": Preset(
        "transformers", "facebook/w2v-bert-2.0", 17, 320, 560, "conformer, 24 layers, fbank input", 1024
    ),
    "mfcc": Preset("mfcc", "", 0, 160, 400, "13 MFCC + deltas + delta-deltas (39-d), HuBERT iteration 0"),
    "logmel": Preset("logmel", "", 0, 160, 400, "80 Kaldi log-mel bins"),
}


@dc.dataclass(frozen=True)
class EncoderSpec:
    """How to rebuild an encoder: written to ``model_card.json`` under ``"encoder"``."""

    kind: str
    """mfcc | logmel | transformers | fairseq"""
    model: str = ""
    """Hub id, local folder or fairseq .pt (SSL kinds)."""
    layer: int = 0
    """Transformer layer read (1-based); 0 for signal features."""
    preset: str = ""
    """The preset it was made from, if any."""
    sample_rate: int = SAMPLE_RATE
    """Input sample rate in Hz."""
    frame_hop: int = 320
    """Samples between frames."""
    receptive_field: int = 400
    """Samples that one frame sees (of the frontend)."""
    n_mels: int = 80
    """Mel bins of the logmel kind."""
    chunk_seconds: float = 30.0
    """Audio longer than this is encoded in chunks (SSL kinds)."""
    context_seconds: float = 2.0
    """Audio each SSL chunk sees on both sides beyond the frames it keeps."""
    normalize: tp.Optional[bool] = None
    """Waveform models: zero-mean unit-variance waveform per utterance. None: as the model's preprocessor
    config (or fairseq task) says; the encoder records what it used, so a card rebuilds the same one
    whether or not that config is in this machine's cache."""

    @property
    def frame_hop_s(self) -> float:
        return self.frame_hop / self.sample_rate

    @property
    def frame_offset_s(self) -> float:
        """Start of frame 0's interval: frames are the hop-long intervals centred on their receptive field."""
        return (self.receptive_field - self.frame_hop) / 2 / self.sample_rate

    @property
    def label(self) -> str:
        """Short human name: the preset, or the model's last path component."""
        return self.preset or (Path(self.model).name if self.model else self.kind)

    def to_dict(self) -> dict[str, tp.Any]:
        return dc.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, tp.Any], where: str = "model_card.json") -> EncoderSpec:
        known = {f.name for f in dc.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"{where}: unknown encoder fields {unknown}; this unitwave knows {sorted(known)}"
            )
        if "kind" not in data:
            raise ValueError(f"{where}: the encoder entry has no 'kind'")
        return cls(**data)


@dc.dataclass(frozen=True)
class EncoderOptions:
    """Which encoder and layer (fit and the one-go command)."""

    encoder: str = "mms-300m"
    """A preset (mms-300m, xlsr-53, hubert-base, mhubert-147, w2v-bert-2, mfcc, logmel), a hub id, a local
    transformers folder or a fairseq HuBERT checkpoint (.pt)."""
    layer: tp.Optional[int] = None
    """Transformer layer to read, 1-based (default: the preset's)."""
    model_path: tp.Optional[Path] = None
    """Local folder (or .pt) with the preset's weights, for machines that cannot reach the hub."""
    frame_rate: tp.Literal[100, 50] = 100
    """Frames per second of mfcc/logmel (SSL encoders have their own)."""
    chunk_seconds: float = 30.0
    """Longer audio is encoded in chunks of this length, with context on both sides."""
    device: str = "auto"
    """cpu, cuda, cuda:1, ... (auto: cuda when available)."""
    precision: tp.Literal["fp32", "fp16", "bf16"] = "fp32"
    """Model precision on a GPU (CPU always runs fp32)."""


def resolve_spec(opts: EncoderOptions) -> EncoderSpec:
    """The :class:`EncoderSpec` that ``opts`` name, with paths made absolute.

    Raises:
        ValueError: an unknown name, a missing layer, or a layer on an encoder that has none.
    """
    name = opts.encoder
    preset = PRESETS.get(name)
    if preset is not None and preset.kind in FEATURE_KINDS:
        if opts.layer not in (None, 0):
            raise ValueError(f"--layer does not apply to --encoder {name} (signal features have no layers)")
        hop = SAMPLE_RATE // opts.frame_rate
        return EncoderSpec(
            kind=preset.kind,
            preset=name,
            frame_hop=hop,
            receptive_field=preset.receptive_field,
            chunk_seconds=opts.chunk_seconds,
        )
    if preset is not None:
        model = str(Path(opts.model_path).absolute()) if opts.model_path else preset.model
        kind = "fairseq" if model.endswith(".pt") else "transformers"
        return EncoderSpec(
            kind=kind,
            model=model,
            layer=opts.layer or preset.layer,
            preset=name,
            frame_hop=preset.frame_hop,
            receptive_field=preset.receptive_field,
            chunk_seconds=opts.chunk_seconds,
        )
    path = Path(name).expanduser()
    if path.suffix == ".pt" or path.exists():
        model = str(path.absolute())
        kind = "fairseq" if path.suffix == ".pt" else "transformers"
    elif "/" in name and not name.startswith((".", "/", "~")):
        model, kind = name, "transformers"  # a hub id
    else:
        raise ValueError(
            f"--encoder {name!r} is not a preset ({', '.join(PRESETS)}), an existing folder or .pt file, "
            f"or a hub id like 'facebook/hubert-base-ls960'"
        )
    if opts.model_path is not None:
        raise ValueError("--model-path goes with a preset name; pass the folder itself as --encoder")
    if not opts.layer:
        raise ValueError(f"--encoder {name}: pass --layer (1-based transformer layer to read)")
    # hop and receptive field are read from the model's config when it is built
    return EncoderSpec(
        kind=kind,
        model=model,
        layer=opts.layer,
        frame_hop=0,
        receptive_field=0,
        chunk_seconds=opts.chunk_seconds,
    )
