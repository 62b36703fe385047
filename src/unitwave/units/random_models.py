"""Randomly initialised speech SSL models saved as local transformers folders, for tests and benchmarks.

No weights are downloaded: a config is built, the model initialised from a seed and written with
``save_pretrained`` next to the preprocessor config its family uses, so the folder loads exactly like
a downloaded checkpoint (``--encoder FOLDER --layer L``). ``"tiny"`` models (hidden 32, 2 layers) keep
tests fast; ``"base"`` has HuBERT-base's shape (95M parameters) for throughput benchmarks.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

Family = tp.Literal["hubert", "wav2vec2", "wavlm", "w2v-bert"]
FAMILIES: tuple[str, ...] = ("hubert", "wav2vec2", "wavlm", "w2v-bert")

_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
_TINY_CONV = {"conv_dim": (32,) * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}


def random_config(family: Family, size: tp.Literal["tiny", "base"] = "tiny") -> tp.Any:
    """A transformers config of ``family``: base-size norms as the real models have them (HuBERT base,
    wav2vec2 base and WavLM base use a group-norm conv frontend; XLS-R/MMS-like wav2vec2 large use layer
    norms, which the tiny wav2vec2 mimics)."""
    from transformers import HubertConfig, Wav2Vec2BertConfig, Wav2Vec2Config, WavLMConfig

    shape = {**_TINY, **_TINY_CONV} if size == "tiny" else {}
    if family == "hubert":
        return HubertConfig(**shape, feat_extract_norm="group")
    if family == "wav2vec2":
        norm = (
            {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}
            if size == "tiny"
            else {}
        )
        return Wav2Vec2Config(**shape, **norm)
    if family == "wavlm":
        extra = {"num_buckets": 16, "max_bucket_distance": 50} if size == "tiny" else {}
        return WavLMConfig(**shape, **extra, feat_extract_norm="group")
    if family == "w2v-bert":
        tiny = dict(
            _TINY,
            output_hidden_size=32,
            conv_depthwise_kernel_size=5,
            position_embeddings_type="relative_key",
            left_max_position_embeddings=16,
            right_max_position_embeddings=4,
        )
        return Wav2Vec2BertConfig(**(tiny if size == "tiny" else {}))
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


def save_random_model(
    folder: Path, family: Family, size: tp.Literal["tiny", "base"] = "tiny", seed: int = 0
) -> Path:
    """Initialise a ``family`` model from ``seed``; save it with its preprocessor config to ``folder``."""
    import torch
    from transformers import AutoModel, SeamlessM4TFeatureExtractor, Wav2Vec2FeatureExtractor
    from transformers.utils import logging as hf_logging

    config = random_config(family, size)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    folder = Path(folder)
    hf_logging.disable_progress_bar()
    model.save_pretrained(folder)
    if family == "w2v-bert":
        SeamlessM4TFeatureExtractor().save_pretrained(folder)
    else:
        layer_norm = getattr(config, "feat_extract_norm", "group") == "layer"
        Wav2Vec2FeatureExtractor(do_normalize=layer_norm, return_attention_mask=layer_norm).save_pretrained(
            folder
        )
    return folder
