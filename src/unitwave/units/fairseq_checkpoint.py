"""fairseq HuBERT / mHuBERT checkpoints (``.pt``) as transformers ``HubertModel``s, without fairseq.

Loading safely. A fairseq checkpoint pickles its config as an omegaconf ``DictConfig`` (or, before
2021, an ``argparse.Namespace``) next to the weights, and sometimes enums, numpy scalars and other
objects in its training state. ``torch.load(weights_only=True)`` refuses those classes, and allow-listing
them is not enough: its unpickler fills only real ``dict`` types, while omegaconf and fairseq containers
are filled item by item. So the checkpoint goes through :class:`RestrictedUnpickler` instead, which
gives the same guarantee (nothing the file names is executed): a name resolves to the real object only
if torch's own ``weights_only`` allowlist holds it (tensor rebuild functions, ``OrderedDict``, dtypes...)
or it is a plain builtin type; a class or function from a config module (argparse, omegaconf, fairseq,
typing, enum, numpy, collections, pathlib) resolves to an :class:`Inert` stand-in that only records what
pickle hands it (so do typing subscripts such as ``List[str]``, which pickle as ``operator.getitem``,
and ``type(None)``); anything else (``os.system``, ``builtins.eval``...) stops the load with an error naming it.

Converting. Keys are renamed from fairseq's module tree to transformers' (both weight-norm layouts of
the positional convolution, ``weight_g/weight_v`` and ``parametrizations.weight.original0/1``, are
accepted); every model weight must be used and every HubertModel weight filled, else the error lists
the keys.
"""

from __future__ import annotations

import ast
import pickle
import re
import types
import typing as tp
from pathlib import Path

#: modules whose classes may appear in a checkpoint's config or training state; they become Inert
INERT_PREFIXES = (
    "argparse",
    "omegaconf",
    "fairseq",
    "typing",
    "enum",
    "numpy",
    "collections",
    "pathlib",
    "datetime",
)
PLAIN_BUILTINS = (
    "set",
    "frozenset",
    "dict",
    "list",
    "tuple",
    "int",
    "float",
    "str",
    "bool",
    "bytes",
    "bytearray",
    "complex",
    "slice",
    "object",
    "NoneType",
)
#: fairseq keys that are training heads, not encoder weights
IGNORED = re.compile(r"^(final_proj\..*|label_embs_concat|label_embs|target_glu\..*|w2v_encoder\.proj\..*)$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded or converted; the message names the file and the problem."""


class Inert:
    """Stands in for a class or function a checkpoint names: records what it is given, runs nothing."""

    qualified_name = ""

    def __new__(cls, *args: tp.Any, **kwargs: tp.Any) -> tp.Self:
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items, obj.elements = args, kwargs, None, {}, []
        return obj

    def __init__(self, *args: tp.Any, **kwargs: tp.Any) -> None:
        pass

    def __setstate__(self, state: tp.Any) -> None:
        self.state = state

    def __setitem__(self, key: tp.Any, value: tp.Any) -> None:
        self.items[key] = value

    def append(self, value: tp.Any) -> None:
        self.elements.append(value)

    def extend(self, values: tp.Iterable[tp.Any]) -> None:
        self.elements.extend(values)

    def __repr__(self) -> str:
        return f"<inert {self.qualified_name}>"


def _allowed_torch_globals() -> dict[str, tp.Any]:
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return dict(_get_allowed_globals())
    except (ImportError, AttributeError):  # the private API moved: fall back to the tensor essentials
        import collections

        import torch

        return {
            "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter,
            "collections.OrderedDict": collections.OrderedDict,
            "torch.Size": torch.Size,
        }


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` resolves only safe names (see the module doc)."""

    _torch_globals: dict[str, tp.Any] | None = None

    def find_class(self, module: str, name: str) -> tp.Any:
        import _compat_pickle

        # protocol 2 writes Python 2 names (__builtin__.dict, copy_reg...), as pickle's own find_class maps
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        full = f"{module}.{name}"
        if RestrictedUnpickler._torch_globals is None:
            RestrictedUnpickler._torch_globals = _allowed_torch_globals()
        if full in RestrictedUnpickler._torch_globals:
            return RestrictedUnpickler._torch_globals[full]
        if module == "builtins" and name in PLAIN_BUILTINS:
            return getattr(__import__("builtins"), name)
        if full == "copyreg._reconstructor":
            return _reconstructor
        if full in ("_operator.getitem", "operator.getitem"):
            return _inert_getitem
        if full == "builtins.type":
            return _type_of_none
        if module.split(".")[0] in INERT_PREFIXES:
            return _inert_class(full)
        raise pickle.UnpicklingError(
            f"refusing to load global {full!r}: a fairseq checkpoint needs only tensors and config objects"
        )


_INERT_CLASSES: dict[str, type[Inert]] = {}


def _inert_class(full_name: str) -> type[Inert]:
    if full_name not in _INERT_CLASSES:
        _INERT_CLASSES[full_name] = type(
            full_name.rsplit(".", 1)[-1], (Inert,), {"qualified_name": full_name}
        )
    return _INERT_CLASSES[full_name]


def _reconstructor(cls: tp.Any, base: tp.Any, state: tp.Any) -> tp.Any:
    """Protocol 0/1 object rebuilding (``copyreg._reconstructor``), for Inert classes only."""
    if isinstance(cls, type) and issubclass(cls, Inert):
        return cls(state) if state is not None else cls()
    raise pickle.UnpicklingError(f"refusing copyreg._reconstructor for {cls!r}")


def _inert_getitem(container: tp.Any, key: tp.Any) -> Inert:
    """``typing.List[str]``-style subscripts (pickled as ``operator.getitem(typing.List, str)``, e.g. in
    omegaconf metadata): an Inert record, for Inert containers only."""
    if isinstance(container, Inert) or (isinstance(container, type) and issubclass(container, Inert)):
        return _inert_class("typing.subscript")(container, key)
    raise pickle.UnpicklingError(f"refusing operator.getitem on {type(container).__name__}")


def _type_of_none(obj: tp.Any) -> type:
    """``type(None)``, how ``typing.Optional[X]`` pickles its ``NoneType``; nothing else."""
    if obj is None:
        return type(None)
    raise pickle.UnpicklingError("refusing builtins.type other than type(None)")


#: what ``torch.load(pickle_module=...)`` needs: an Unpickler class and a load function
RESTRICTED_PICKLE = types.SimpleNamespace(
    Unpickler=RestrictedUnpickler,
    load=lambda f, **kw: RestrictedUnpickler(f, **kw).load(),
    __name__="unitwave_restricted_pickle",
)


def load_checkpoint(path: Path) -> dict[str, tp.Any]:
    """The checkpoint's top-level dict, loaded through :class:`RestrictedUnpickler` onto the CPU."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"fairseq checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", pickle_module=RESTRICTED_PICKLE, weights_only=False)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({e})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state


def plain(obj: tp.Any, depth: int = 0) -> tp.Any:
    """Inert config objects (DictConfig, ListConfig, their nodes, Namespace, enums) as plain Python data."""
    if depth > 50:
        return None
    if isinstance(obj, dict):
        return {k: plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v, depth + 1) for v in obj]
    if not isinstance(obj, Inert):
        return obj
    state = obj.state[0] if isinstance(obj.state, tuple) and len(obj.state) == 2 else obj.state
    if isinstance(state, dict) and "_content" in state:  # omegaconf DictConfig / ListConfig
        return plain(state["_content"], depth + 1)
    if isinstance(state, dict) and "_val" in state:  # omegaconf value nodes
        return plain(state["_val"], depth + 1)
    if obj.qualified_name == "argparse.Namespace" and isinstance(state, dict):
        return plain(state, depth + 1)
    if obj.args and not obj.items and state is None:  # enums: EnumClass(value)
        return plain(obj.args[0], depth + 1)
    if obj.items:
        return plain(obj.items, depth + 1)
    return plain(state, depth + 1) if isinstance(state, dict) else None


def _eval_layers(spec: str) -> list[tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` string (``"[(512,10,5)] + [(512,3,2)] * 4"``), evaluated safely."""

    def ev(node: ast.AST) -> tp.Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = ev(node.left), ev(node.right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise CheckpointError(f"conv_feature_layers: unsupported expression {ast.dump(node)[:80]}")

    layers = ev(ast.parse(spec, mode="eval"))
    return [tuple(int(v) for v in layer) for layer in layers]  # type: ignore[misc]


def fairseq_model_config(state: dict[str, tp.Any]) -> tuple[dict[str, tp.Any], bool]:
    """``(model config, normalize waveform)`` from ``cfg`` (hydra era) or ``args`` (argparse era)."""
    cfg = plain(state.get("cfg"))
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict):
        model, task = cfg["model"], cfg.get("task") or {}
        if isinstance(model.get("w2v_args"), dict) and isinstance(model["w2v_args"].get("model"), dict):
            task = model["w2v_args"].get("task") or task  # a fine-tuned model: the pretraining config
            model = model["w2v_args"]["model"]
        return model, bool(task.get("normalize", False))
    args = plain(state.get("args"))
    if isinstance(args, dict):
        return args, bool(args.get("normalize", False))
    raise CheckpointError("no model config found (neither 'cfg.model' nor 'args')")


def hubert_config(fs: dict[str, tp.Any]) -> tp.Any:
    """A ``HubertConfig`` equal to a fairseq HuBERT model config (fairseq's defaults for absent keys)."""
    from transformers import HubertConfig

    layers = _eval_layers(
        str(fs.get("conv_feature_layers", "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"))
    )
    mode = str(fs.get("extractor_mode", "default"))
    if mode not in ("default", "layer_norm"):
        raise CheckpointError(f"extractor_mode {mode!r} is not supported (default or layer_norm)")
    return HubertConfig(
        hidden_size=int(fs.get("encoder_embed_dim", 768)),
        num_hidden_layers=int(fs.get("encoder_layers", 12)),
        num_attention_heads=int(fs.get("encoder_attention_heads", 12)),
        intermediate_size=int(fs.get("encoder_ffn_embed_dim", 3072)),
        hidden_act=str(fs.get("activation_fn", "gelu")),
        conv_dim=[c for c, _, _ in layers],
        conv_kernel=[k for _, k, _ in layers],
        conv_stride=[s for _, _, s in layers],
        conv_bias=bool(fs.get("conv_bias", False)),
        feat_extract_norm="layer" if mode == "layer_norm" else "group",
        num_conv_pos_embeddings=int(fs.get("conv_pos", 128)),
        num_conv_pos_embedding_groups=int(fs.get("conv_pos_groups", 16)),
        do_stable_layer_norm=bool(fs.get("layer_norm_first", False)),
        feat_proj_layer_norm=True,
        layer_norm_eps=1e-5,
    )


_RENAMES: tuple[tuple[str, str], ...] = (
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (
        r"feature_extractor\.conv_layers\.(\d+)\.2(?:\.1)?\.(weight|bias)",
        r"feature_extractor.conv_layers.\1.layer_norm.\2",
    ),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"encoder\.pos_conv\.0\.bias", r"encoder.pos_conv_embed.conv.bias"),
    (r"encoder\.pos_conv\.0\.(?:weight_g|parametrizations\.weight\.original0)", "WN_G"),
    (r"encoder\.pos_conv\.0\.(?:weight_v|parametrizations\.weight\.original1)", "WN_V"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (
        r"encoder\.layers\.(\d+)\.self_attn\.(q|k|v|out)_proj\.(weight|bias)",
        r"encoder.layers.\1.attention.\2_proj.\3",
    ),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_emb", "masked_spec_embed"),
)


def convert_state_dict(weights: dict[str, tp.Any], target_keys: tp.Iterable[str]) -> dict[str, tp.Any]:
    """fairseq weight names -> HubertModel's; raises CheckpointError listing unknown or missing keys."""
    target = set(target_keys)
    wn_g, wn_v = (
        (
            "encoder.pos_conv_embed.conv.parametrizations.weight.original0",
            "encoder.pos_conv_embed.conv.parametrizations.weight.original1",
        )
        if "encoder.pos_conv_embed.conv.parametrizations.weight.original0" in target
        else ("encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.weight_v")
    )
    out: dict[str, tp.Any] = {}
    unknown = []
    for name, value in weights.items():
        name = name.removeprefix("w2v_encoder.w2v_model.")
        if IGNORED.match(name):
            continue
        for pattern, repl in _RENAMES:
            if re.fullmatch(pattern, name):
                new = {"WN_G": wn_g, "WN_V": wn_v}.get(repl) or re.sub(f"^{pattern}$", repl, name)
                out[new] = value
                break
        else:
            unknown.append(name)
    missing = sorted(target - set(out) - {"masked_spec_embed"})
    stray = sorted(set(out) - target)
    if unknown or missing or stray:
        raise CheckpointError(
            f"weights do not match a HuBERT model: unknown {unknown[:8]}, missing {missing[:8]}, "
            f"unexpected {stray[:8]} (is this a HuBERT/mHuBERT checkpoint?)"
        )
    return out


def load_fairseq_hubert(path: Path) -> tuple[tp.Any, bool]:
    """``(HubertModel in eval mode, normalize waveform)`` from a fairseq HuBERT/mHuBERT ``.pt``."""
    from transformers import HubertModel

    state = load_checkpoint(path)
    try:
        fs_cfg, normalize = fairseq_model_config(state)
        model = HubertModel(hubert_config(fs_cfg))
        converted = convert_state_dict(state["model"], model.state_dict().keys())
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    result = model.load_state_dict(converted, strict=False)
    if result.unexpected_keys or set(result.missing_keys) - {"masked_spec_embed"}:
        raise CheckpointError(
            f"{path}: weights left unset {result.missing_keys} / unused {result.unexpected_keys}"
        )
    return model.eval(), normalize


def convert_fairseq_checkpoint(path: Path, out_dir: Path) -> Path:
    """Write a transformers folder (weights, config, preprocessor config) for a fairseq HuBERT ``.pt``."""
    from transformers import Wav2Vec2FeatureExtractor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model, normalize = load_fairseq_hubert(path)
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    Wav2Vec2FeatureExtractor(
        do_normalize=normalize, return_attention_mask=model.config.feat_extract_norm == "layer"
    ).save_pretrained(out_dir)
    return out_dir
