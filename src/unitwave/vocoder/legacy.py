"""Legacy fairseq / textlesslib / speech-resynthesis "code HiFi-GAN" vocoders, without fairseq.

Such a vocoder is a ``config.json`` (HiFi-GAN hyper-parameters + ``num_embeddings``, ``embedding_dim``,
``f0``, ``f0_quant_num_bin``, ``multispkr``, ``embedder_params``, ``multistyle``, ``dur_predictor_params``)
and a torch checkpoint, usually ``g_XXXXXXXX`` holding ``{"generator": state_dict}``. The state dict uses
fairseq's names (``dict.weight``, ``f0_quant_embed.weight``, ``spkr.*``, ``style.weight``,
``dur_predictor.*``, ``conv_pre``, ``ups.N``, ``resblocks.N.convs1/convs2/convs``, ``conv_post``) with
weight norm stored as ``weight_g``/``weight_v`` (old ``torch.nn.utils.weight_norm``) or
``parametrizations.weight.original0/1`` (new API), or already folded into ``weight``.

:func:`load_legacy` maps all of it onto :class:`~unitwave.vocoder.hifigan.HifiganGenerator` (same
computation: unit embedding, then F0, speaker and style features concatenated and repeated to the faster
rate, HiFi-GAN decoder); :func:`import_legacy` writes it as a unitwave model folder. Checkpoints are read
with ``torch.load(weights_only=True)``: no code from the file runs.
"""

from __future__ import annotations

import json
import pickle
import re
import typing as tp
from pathlib import Path

import torch
from torch import nn

from unitwave.vocoder.config import HifiganConfig, MelConfig, PitchConfig, VocoderConfig

#: config keys of generators this loader cannot express, and what they are
UNSUPPORTED_KEYS = {
    "lambda_commit": "an F0 VQ-VAE trained inside the generator (speech-resynthesis)",
    "lambda_commit_code": "a unit VQ-VAE inside the generator (speech-resynthesis)",
    "f0_quantizer_path": "an external F0 VQ-VAE quantiser (speech-resynthesis)",
}
REQUIRED_KEYS = (
    "upsample_rates",
    "upsample_kernel_sizes",
    "upsample_initial_channel",
    "resblock_kernel_sizes",
    "resblock_dilation_sizes",
    "num_embeddings",
    "embedding_dim",
)
_RENAMES = (  # (legacy prefix, unitwave prefix)
    ("dict.", "unit_embed."),
    ("f0_quant_embed.", "f0_embed."),
    ("style.", "style_embed."),
)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The generator state dict of a legacy checkpoint (``{"generator": ...}`` or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"legacy vocoder checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, AttributeError) as e:
        # a pickle that wants to run code, or not a torch file at all
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({type(e).__name__}: {e}); "
            f"a generator checkpoint holds only tensors"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("generator"), dict):
        obj = obj["generator"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: expected a 'generator' state dict of tensors, found {keys}")
    return {str(k): v for k, v in obj.items()}


def _conv_pre_in_channels(state: dict[str, torch.Tensor]) -> int | None:
    for key in ("conv_pre.weight_v", "conv_pre.parametrizations.weight.original1", "conv_pre.weight"):
        if key in state:
            return int(state[key].shape[1])
    return None


def legacy_config(
    cfg: dict[str, tp.Any], state: dict[str, torch.Tensor], where: str = "config.json"
) -> VocoderConfig:
    """The :class:`VocoderConfig` that reproduces a legacy generator (its table sizes read from ``state``)."""
    for key, what in UNSUPPORTED_KEYS.items():
        if cfg.get(key):
            raise ValueError(f"{where}: '{key}' means {what}; unitwave cannot run such a vocoder")
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"{where}: missing HiFi-GAN key(s) {missing}; is this a code HiFi-GAN config?")
    emb = int(cfg["embedding_dim"])
    f0_mode: tp.Literal["none", "bins", "continuous"] = "none"
    f0_bins = 33
    if cfg.get("f0"):
        n = int(cfg.get("f0_quant_num_bin", 0) or 0)
        f0_mode, f0_bins = ("bins", n) if n > 0 else ("continuous", 33)
    speaker: tp.Literal["none", "lookup", "vector"] = "none"
    num_speakers = vector_dim = 0
    if cfg.get("embedder_params"):
        speaker, vector_dim = "vector", int(cfg.get("embedder_dim", 256))
    elif cfg.get("multispkr"):
        speaker = "lookup"
        num_speakers = (
            int(state["spkr.weight"].shape[0])
            if "spkr.weight" in state
            else int(cfg.get("num_speakers", 200))
        )
    num_styles = 0
    if cfg.get("multistyle"):
        num_styles = (
            int(state["style.weight"].shape[0])
            if "style.weight" in state
            else int(cfg.get("num_styles", 100))
        )
    dur = cfg.get("dur_predictor_params") or {}
    if dur and int(dur.get("encoder_embed_dim", emb)) != emb:
        raise ValueError(f"{where}: dur_predictor_params.encoder_embed_dim must equal embedding_dim ({emb})")
    resblock = str(cfg.get("resblock", "1"))
    if resblock not in ("1", "2"):
        raise ValueError(f"{where}: 'resblock' is {cfg['resblock']!r}; HiFi-GAN has types '1' and '2'")
    try:
        hifigan = HifiganConfig(
            num_units=int(cfg["num_embeddings"]),
            unit_dim=emb,
            f0=f0_mode,
            f0_bins=f0_bins,
            f0_dim=emb,
            speaker=speaker,
            num_speakers=num_speakers,
            speaker_vector_dim=vector_dim,
            speaker_dim=emb,
            num_styles=num_styles,
            style_dim=emb,
            upsample_rates=tuple(int(u) for u in cfg["upsample_rates"]),
            upsample_kernel_sizes=tuple(int(k) for k in cfg["upsample_kernel_sizes"]),
            upsample_initial_channel=int(cfg["upsample_initial_channel"]),
            resblock=tp.cast(tp.Literal["1", "2"], resblock),
            resblock_kernel_sizes=tuple(int(k) for k in cfg["resblock_kernel_sizes"]),
            resblock_dilation_sizes=tuple(tuple(int(d) for d in ds) for ds in cfg["resblock_dilation_sizes"]),
            duration_hidden_dim=int(dur.get("var_pred_hidden_dim", 0)) if dur else 0,
            duration_kernel_size=int(dur.get("var_pred_kernel_size", 3)) if dur else 3,
            duration_dropout=float(dur.get("var_pred_dropout", 0.5)) if dur else 0.5,
        )
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    in_ch = _conv_pre_in_channels(state)
    if in_ch is not None and in_ch != hifigan.in_channels:
        raise ValueError(
            f"{where}: conv_pre takes {in_ch} channels but the config's embeddings add up to "
            f"{hifigan.in_channels} (units {emb}, f0 {f0_mode}, speaker {speaker}, styles {num_styles}); "
            f"model_in_dim is {cfg.get('model_in_dim')!r}: config and checkpoint do not belong together"
        )
    sample_rate = int(cfg.get("sampling_rate", 16000))
    pitch = PitchConfig(voiced_bins=max(1, hifigan.f0_bins - 1), quantizer="external")
    fmax = cfg.get("fmax_for_loss")
    mel = MelConfig(
        n_fft=int(cfg.get("n_fft", 1024)),
        hop_length=int(cfg.get("hop_size", 256)),
        win_length=int(cfg.get("win_size", 1024)),
        n_mels=int(cfg.get("num_mels", 80)),
        fmin_hz=float(cfg.get("fmin", 0.0)),
        fmax_hz=float(fmax) if fmax else None,
    )
    return VocoderConfig(generator="hifigan", sample_rate=sample_rate, hifigan=hifigan, pitch=pitch, mel=mel)


def convert_state_dict(
    state: dict[str, torch.Tensor], cfg: VocoderConfig, where: str
) -> dict[str, torch.Tensor]:
    """Legacy names -> unitwave names; weight norm (either layout) -> ``parametrizations.weight.*``."""
    out: dict[str, torch.Tensor] = {}
    speaker_prefix = "speaker_proj." if cfg.hifigan.speaker == "vector" else "speaker_embed."
    renames = (*_RENAMES, ("spkr.", speaker_prefix))
    for key, value in state.items():
        new = key
        for old, repl in renames:
            if key.startswith(old):
                new = repl + key[len(old) :]
                break
        new = re.sub(r"\.weight_g$", ".parametrizations.weight.original0", new)
        new = re.sub(r"\.weight_v$", ".parametrizations.weight.original1", new)
        out[new] = value
    plain = [
        k
        for k in out
        if k.endswith(".weight") and k.split(".")[0] in ("conv_pre", "ups", "resblocks", "conv_post")
    ]
    normed = [k for k in out if ".parametrizations.weight." in k]
    if plain and normed:
        raise ValueError(
            f"{where}: mixes weight-normed and plain convolution weights ({plain[0]}, {normed[0]})"
        )
    return out


def load_legacy(
    checkpoint: Path, config_json: Path, for_inference: bool = True
) -> tuple[nn.Module, VocoderConfig, dict[str, tp.Any]]:
    """``(generator, config, card)`` of a legacy vocoder; ``for_inference`` removes weight norm, eval()."""
    from unitwave.vocoder.hifigan import remove_weight_norm
    from unitwave.vocoder.models import build_generator, load_state

    config_json = Path(config_json)
    try:
        raw = json.loads(config_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"legacy vocoder config not found: {config_json}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_json}: not valid JSON ({e})") from None
    state = read_checkpoint(checkpoint)
    cfg = legacy_config(raw, state, str(config_json))
    generator = load_state(
        build_generator(cfg), convert_state_dict(state, cfg, str(checkpoint)), str(checkpoint)
    )
    if for_inference:
        remove_weight_norm(generator).eval()
    code_hop = raw.get("code_hop_size")
    card = {
        "generator": "hifigan",
        "sample_rate": cfg.sample_rate,
        "hop_samples": cfg.hop,
        "frame_hop_s": (int(code_hop) if code_hop else cfg.hop) / cfg.sample_rate,
        "speakers": None,
        "styles": None,
        "source": {"kind": "fairseq-code-hifigan", "checkpoint": str(checkpoint), "config": str(config_json)},
    }
    return generator, cfg, card


def find_legacy_files(folder: Path) -> tuple[Path, Path] | None:
    """``(checkpoint, config.json)`` in a folder holding a legacy vocoder, or None.

    The checkpoint is the newest ``g_XXXXXXXX`` (highest step), else the only ``*.pt``/``*.pth``/``*.ckpt``.
    """
    folder = Path(folder)
    config = folder / "config.json"
    if not config.is_file():
        return None
    steps = sorted(folder.glob("g_*"), key=lambda p: (len(p.name), p.name))
    if steps:
        return steps[-1], config
    others = [p for ext in ("*.pt", "*.pth", "*.ckpt") for p in folder.glob(ext)]
    if len(others) == 1:
        return others[0], config
    if others:
        names = ", ".join(sorted(p.name for p in others))
        raise ValueError(f"{folder}: several checkpoints ({names}); pass the one to use")
    return None


def _read_names(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def import_legacy(
    checkpoint: Path,
    config_json: Path,
    out_dir: Path,
    speakers_file: Path | None = None,
    styles_file: Path | None = None,
) -> Path:
    """Convert a legacy vocoder into a unitwave model folder (safetensors + model card); returns it.

    ``speakers_file``/``styles_file``: textlesslib's one-name-per-line tables (row order = id).
    """
    from unitwave.vocoder.models import save_vocoder

    generator, cfg, card = load_legacy(checkpoint, config_json, for_inference=False)
    return save_vocoder(
        out_dir,
        generator,
        cfg,
        speakers=_read_names(speakers_file),
        styles=_read_names(styles_file),
        frame_hop_s=card["frame_hop_s"],
        extra={"source": card["source"]},
    )
