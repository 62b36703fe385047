"""fairseq HuBERT checkpoints without fairseq: a small checkpoint in fairseq's layout (omegaconf config
or argparse args, both weight-norm key layouts, group- and layer-norm frontends) converts to the model it
was made from; a checkpoint naming anything unsafe is refused without running it."""

from __future__ import annotations

import argparse
import collections
import enum
import sys
import types
import typing as tp
from pathlib import Path

import numpy as np
import pytest
import torch

from unitwave.units.encoders import build_encoder
from unitwave.units.fairseq_checkpoint import CheckpointError, convert_fairseq_checkpoint, load_checkpoint
from unitwave.units.presets import EncoderSpec

FAKE_MODULES = (
    "omegaconf",
    "omegaconf.dictconfig",
    "omegaconf.nodes",
    "omegaconf.base",
    "fairseq",
    "fairseq.models",
    "fairseq.models.hubert",
    "fairseq.models.hubert.hubert",
)


def _fake(module: str, cls: type) -> type:
    """Give ``cls`` the import path ``module.Name`` (as if omegaconf/fairseq were installed) for pickling."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    mod = sys.modules[module]
    cls.__module__, cls.__qualname__ = module, cls.__name__
    setattr(mod, cls.__name__, cls)
    return cls


class ContainerMetadata:
    def __init__(self) -> None:
        self.ref_type, self.object_type, self.key, self.optional = tp.Any, dict, None, True


class Metadata(ContainerMetadata):
    pass


class AnyNode:
    def __init__(self, value: tp.Any, parent: tp.Any) -> None:
        self._val, self._parent, self._metadata, self._flags_cache = value, parent, Metadata(), None


class EnumNode(AnyNode):
    pass


class DictConfig:
    """Pickles like omegaconf's: NEWOBJ then a state dict whose ``_content`` holds nodes or configs."""

    def __init__(self, content: dict[str, tp.Any], parent: tp.Any = None) -> None:
        self._metadata, self._parent, self._flags_cache = ContainerMetadata(), parent, None
        self._content = {
            k: DictConfig(v, self)
            if isinstance(v, dict)
            else (EnumNode if isinstance(v, enum.Enum) else AnyNode)(v, self)
            for k, v in content.items()
        }


class ExtractorMode(enum.Enum):
    default = "default"
    layer_norm = "layer_norm"


HF_TO_FAIRSEQ = (  # fairseq's module tree, written out: (transformers name, fairseq name)
    (r"feature_extractor.conv_layers.(\d+).conv.", r"feature_extractor.conv_layers.\1.0."),
    (r"feature_projection.layer_norm.", "layer_norm."),
    (r"feature_projection.projection.", "post_extract_proj."),
    (r"encoder.pos_conv_embed.conv.", "encoder.pos_conv.0."),
    (r"encoder.layers.(\d+).attention.", r"encoder.layers.\1.self_attn."),
    (r"encoder.layers.(\d+).layer_norm.", r"encoder.layers.\1.self_attn_layer_norm."),
    (r"feed_forward.intermediate_dense.", "fc1."),
    (r"feed_forward.output_dense.", "fc2."),
    (r"^masked_spec_embed$", "mask_emb"),
)


def fairseq_state_dict(
    model: tp.Any, layer_norm_mode: bool, old_weight_norm: bool
) -> dict[str, torch.Tensor]:
    import re

    out = {}
    for name, value in model.state_dict().items():
        fs = name
        m = re.match(r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(\w+)", name)
        if m:
            fs = f"feature_extractor.conv_layers.{m[1]}.2.{'1.' if layer_norm_mode else ''}{m[2]}"
        else:
            for pattern, repl in HF_TO_FAIRSEQ:
                fs = re.sub(pattern, repl, fs)
        if old_weight_norm:
            fs = fs.replace("parametrizations.weight.original0", "weight_g").replace(
                "parametrizations.weight.original1", "weight_v"
            )
        out[fs] = value.clone()
    out["final_proj.weight"] = torch.randn(8, 32)
    out["label_embs_concat"] = torch.randn(10, 8)
    return out


def write_checkpoint(path: Path, model: tp.Any, style: str) -> Path:
    cfg = model.config
    fs_model = {
        "_name": "hubert",
        "extractor_mode": ExtractorMode.layer_norm
        if cfg.feat_extract_norm == "layer"
        else ExtractorMode.default,
        "encoder_layers": cfg.num_hidden_layers,
        "encoder_embed_dim": cfg.hidden_size,
        "encoder_ffn_embed_dim": cfg.intermediate_size,
        "encoder_attention_heads": cfg.num_attention_heads,
        "activation_fn": "gelu",
        "layer_norm_first": cfg.do_stable_layer_norm,
        "conv_bias": cfg.conv_bias,
        "conv_feature_layers": "[(32,10,5)] + [(32,3,2)] * 4 + [(32,2,2)] * 2",
        "conv_pos": cfg.num_conv_pos_embeddings,
        "conv_pos_groups": cfg.num_conv_pos_embedding_groups,
    }
    normalize = cfg.feat_extract_norm == "layer"
    weights = fairseq_state_dict(model, cfg.feat_extract_norm == "layer", old_weight_norm=style == "args")
    for module, cls in (
        ("omegaconf.dictconfig", DictConfig),
        ("omegaconf.nodes", AnyNode),
        ("omegaconf.nodes", EnumNode),
        ("omegaconf.base", ContainerMetadata),
        ("omegaconf.base", Metadata),
        ("fairseq.models.hubert.hubert", ExtractorMode),
    ):
        _fake(module, cls)
    try:
        if style == "cfg":
            state = {
                "cfg": DictConfig(
                    {"model": fs_model, "task": {"_name": "hubert_pretraining", "normalize": normalize}}
                ),
                "args": None,
            }
        else:
            state = {
                "args": argparse.Namespace(
                    **{**fs_model, "extractor_mode": fs_model["extractor_mode"].value}, normalize=normalize
                )
            }
        stats = collections.defaultdict(list)
        stats["loss"].append(np.float64(1.5))
        state.update(
            model=weights, extra_state={"metrics": stats, "best": np.float32(0.3)}, optimizer_history=[]
        )
        torch.save(state, path)
    finally:
        for name in FAKE_MODULES:  # loading must work without omegaconf and fairseq installed
            sys.modules.pop(name, None)
    return path


@pytest.mark.parametrize("style,norm", [("cfg", "group"), ("args", "layer")])
def test_fairseq_checkpoint_converts_to_the_model_it_came_from(tmp_path, style, norm):
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    cfg = HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        conv_bias=norm == "layer",
    )
    reference = HubertModel(cfg).eval()
    pt = write_checkpoint(tmp_path / "hubert.pt", reference, style)
    converted = convert_fairseq_checkpoint(pt, tmp_path / "converted")
    from transformers import AutoModel

    back = AutoModel.from_pretrained(converted).state_dict()
    for name, value in reference.state_dict().items():
        assert torch.equal(back[name], value), name

    wave = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    from_pt = build_encoder(
        EncoderSpec(kind="fairseq", model=str(pt), layer=2, frame_hop=0, receptive_field=0), "cpu"
    )
    captured = []  # layer 2's own output (fairseq output_layer=2: before any final encoder layer norm)
    reference.encoder.layers[1].register_forward_hook(
        lambda m, i, o: captured.append(o[0] if isinstance(o, tuple) else o)
    )
    with torch.no_grad():
        x = torch.from_numpy(wave)[None]
        if norm == "layer":  # fairseq's task.normalize: layer norm over the waveform
            x = torch.nn.functional.layer_norm(x, x.shape)
        reference(x)
    assert torch.allclose(from_pt.features([wave])[0], captured[0][0], atol=1e-4)


def test_unsafe_globals_are_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    torch.save({"model": {}, "cfg": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"refusing to load global '(posix|os)\.system'"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_wrong_architecture_lists_the_keys(tmp_path):
    torch.save(
        {
            "model": {"decoder.embed_tokens.weight": torch.zeros(2, 2)},
            "args": argparse.Namespace(encoder_layers=1),
        },
        tmp_path / "mt.pt",
    )
    with pytest.raises(CheckpointError, match=r"unknown \['decoder.embed_tokens.weight'\].*missing"):
        build_encoder(EncoderSpec(kind="fairseq", model=str(tmp_path / "mt.pt"), layer=1), "cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")


def test_typing_subscripts_in_config_metadata_load_and_stay_inert(tmp_path):
    """omegaconf metadata of typed config fields holds ``List[str]`` / ``Optional[int]``, which pickle as
    ``operator.getitem(typing.List, str)`` and ``type(None)``: a real checkpoint must not be refused for them."""
    import operator

    state = {"model": {}, "args": argparse.Namespace(encoder_layers=1),
             "metadata": {"labels": tp.List[str], "max_keep_size": tp.Optional[int]}}  # noqa: UP006, UP045
    torch.save(state, tmp_path / "typed.pt")
    loaded = load_checkpoint(tmp_path / "typed.pt")
    assert set(loaded["metadata"]) == {"labels", "max_keep_size"}

    class Lookup:  # getitem on anything but an inert stand-in is still refused
        def __reduce__(self):
            return (operator.getitem, ({"a": 1}, "a"))

    torch.save({"model": {}, "cfg": Lookup()}, tmp_path / "lookup.pt")
    with pytest.raises(CheckpointError, match="refusing operator.getitem on dict"):
        load_checkpoint(tmp_path / "lookup.pt")
