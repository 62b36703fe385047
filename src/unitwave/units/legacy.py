"""``unitwave units import-kmeans KM_BIN OUT_DIR --trust-pickle --encoder ... --layer ...``.

textlesslib and fairseq's ``simple_kmeans`` save their k-means as a joblib pickle of a scikit-learn
``MiniBatchKMeans``/``KMeans`` (``km.bin``). Unpickling runs whatever code the file names, so it is
done only when asked with ``--trust-pickle``, once: the centroids are written as
``kmeans.safetensors`` with a ``model_card.json`` naming the encoder the k-means was fitted on, and from
then on the folder is used like any other (``units encode --kmeans OUT_DIR``, ``UnitExtractor``).
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import hashlib
import json
import logging
import typing as tp
from pathlib import Path

import numpy as np
import tyro

from unitwave.units.presets import EncoderOptions

log = logging.getLogger("unitwave")


@dc.dataclass(frozen=True)
class ImportKmeansConfig:
    """Convert a fairseq/textlesslib km.bin (a joblib pickle) into a k-means folder, once."""

    km_bin: tyro.conf.Positional[Path]
    """The joblib file (fairseq simple_kmeans / textlesslib km.bin)."""
    output_dir: tyro.conf.Positional[Path]
    """The k-means folder to write (kmeans.safetensors + model_card.json)."""
    encoder: tp.Annotated[EncoderOptions, tyro.conf.OmitArgPrefixes] = EncoderOptions()
    trust_pickle: bool = False
    """Unpickle KM_BIN. Pickles run code: only for files from a source you trust."""
    check_encoder: bool = True
    """Build the encoder to check its feature dimension against the centroids (skipped with a warning
    when its weights are not on this machine)."""


def read_joblib_centroids(path: Path) -> tuple[np.ndarray, str]:
    """``(centroids (k, D) float32, class name)`` of a pickled scikit-learn k-means. Runs the pickle."""
    import joblib

    model = joblib.load(path)
    centres = getattr(model, "cluster_centers_", None)
    if centres is None:
        raise ValueError(
            f"{path}: the pickle holds a {type(model).__name__}, not a fitted scikit-learn k-means "
            f"(no cluster_centers_)"
        )
    centres = np.asarray(centres, dtype=np.float32)
    if centres.ndim != 2:
        raise ValueError(f"{path}: cluster_centers_ has shape {centres.shape}, expected (k, D)")
    return centres, f"{type(model).__module__}.{type(model).__name__}"


def run(cfg: ImportKmeansConfig) -> dict[str, tp.Any]:
    from unitwave import __version__
    from unitwave.units.encoders import build_encoder
    from unitwave.units.extractor import CARD_FILE
    from unitwave.units.kmeans import KMeansModel
    from unitwave.units.presets import resolve_spec

    path = Path(cfg.km_bin)
    if not path.is_file():
        raise FileNotFoundError(f"k-means file not found: {path}")
    if not cfg.trust_pickle:
        raise ValueError(
            f"{path} is a pickle, and loading a pickle runs code it names; pass --trust-pickle if you trust "
            f"its source (it is converted once to kmeans.safetensors, which is safe to share)"
        )
    spec = resolve_spec(cfg.encoder)
    centroids, source_class = read_joblib_centroids(path)
    if cfg.check_encoder:
        try:
            encoder = build_encoder(spec, "cpu")
        except FileNotFoundError as e:
            from unitwave.units.presets import PRESETS

            known = PRESETS[spec.preset].dim if spec.preset in PRESETS and spec.model == PRESETS[spec.preset].model else 0
            if known and known != centroids.shape[1]:  # a preset's dimension is known without its weights
                raise ValueError(
                    f"{path}: centroids have dimension {centroids.shape[1]} but preset {spec.preset} gives "
                    f"{known}: pass the encoder the k-means was fitted on"
                ) from None
            log.warning("import-kmeans: encoder weights not here (%s); %s", e,
                        f"dimension {known} checked from the preset" if known else "dimension not checked")
        else:
            spec = encoder.spec
            if encoder.dim != centroids.shape[1]:
                raise ValueError(
                    f"{path}: centroids have dimension {centroids.shape[1]} but {spec.label} layer "
                    f"{spec.layer} gives {encoder.dim}: pass the encoder the k-means was fitted on"
                )
    out = Path(cfg.output_dir)
    KMeansModel(centroids).save(out)
    card = {
        "kind": "kmeans",
        "k": int(centroids.shape[0]),
        "dim": int(centroids.shape[1]),
        "encoder": spec.to_dict(),
        "layer": spec.layer or None,
        "sample_rate": spec.sample_rate,
        "frame_hop_s": spec.frame_hop_s if spec.frame_hop else None,
        "frame_offset_s": spec.frame_offset_s if spec.frame_hop else None,
        "imported_from": str(path.absolute()),
        "imported_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "imported_class": source_class,
        "code_version": __version__,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "files": {"centroids": "kmeans.safetensors"},
    }
    tmp = out / f".{CARD_FILE}.tmp"
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / CARD_FILE)
    print(
        f"import-kmeans: k={card['k']}, dim={card['dim']} from {path.name} ({source_class}) -> {out}",
        flush=True,
    )
    return card
