"""Checkpoint files: atomic writes, RNG states as plain tensors, ``weights_only`` loading, resume lookup.

A unitwave checkpoint is Lightning's (``state_dict``, ``optimizer_states``, ``lr_schedulers``, the
precision plugin's scaler state, ``loops``, ``epoch``, ``global_step``, callback states) plus
``config`` (the resolved command config), ``history`` (one dict per epoch) and ``rng_states``
(python, numpy, torch, cuda). Everything in it is a tensor, number, string, list or dict, so
``torch.load(path, weights_only=True)`` reads it: :func:`load_checkpoint` always does.
"""

from __future__ import annotations

import random
import shutil
import typing as tp
from pathlib import Path

import numpy as np

from unitwave.config import ConfigError
from unitwave.data.atomic import atomic_path

CHECKPOINT_DIR = "checkpoints"
LATEST, BEST, FINAL = "latest.ckpt", "best.ckpt", "final.ckpt"


def periodic_name(epochs_done: int) -> str:
    """``epoch_0025.ckpt`` after the 25th epoch."""
    return f"epoch_{epochs_done:04d}.ckpt"


def atomic_torch_save(obj: tp.Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` so that ``dst`` is always either the old or the complete new file."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def load_checkpoint(path: Path, map_location: tp.Any = "cpu") -> dict[str, tp.Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no code runs while loading)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised as one error that says what to do
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({type(e).__name__}: {e}); "
            "it was not written by unitwave.train, or it holds objects other than tensors and plain data"
        ) from None


def resume_path(resume: str, out_dir: Path) -> Path | None:
    """The checkpoint ``--resume`` names (None: start from scratch); errors name the missing file."""
    ckpt_dir = Path(out_dir) / CHECKPOINT_DIR
    key = resume.strip()
    if key == "none":
        return None
    if key == "auto":
        latest = ckpt_dir / LATEST
        return latest if latest.is_file() else None
    if key in ("latest", "best", "final"):
        path = ckpt_dir / f"{key}.ckpt"
        if not path.is_file():
            have = sorted(p.name for p in ckpt_dir.glob("*.ckpt")) if ckpt_dir.is_dir() else []
            raise ConfigError(
                f"--resume {key}: {path} does not exist"
                + (f" (the folder has {', '.join(have)})" if have else " (no checkpoints there yet; use --resume auto)")
            )
        return path
    path = Path(key)
    if not path.is_file():
        raise ConfigError(f"--resume {key}: no such checkpoint file; use auto, none, latest, best, final or a .ckpt path")
    return path


def refuse_other_model(
    cfg: tp.Any, out_dir: Path, resume: str, model_keys: tp.Iterable[str], data_keys: tp.Iterable[str] = ()
) -> None:
    """Before resuming ``out_dir``: ValueError when the ``config.yaml`` saved there differs from ``cfg`` (the
    command's config) in a setting that shapes the weights, so the user hears why instead of a failed
    ``load_state_dict``, or in the training data (``data_keys``: resuming would train on two data sets and
    compare validation losses of two splits). Keys are dotted; a section name covers the whole section."""
    from unitwave.config import changed_settings

    saved = Path(out_dir) / "config.yaml"
    if not saved.is_file() or resume_path(resume, out_dir) is None:
        return
    changes = changed_settings(saved, cfg)

    def under(keys: tp.Iterable[str]) -> list[str]:
        keys = tuple(keys)
        return [c for c in changes if any(c.startswith((f"{k}:", f"{k}.")) for k in keys)]

    differ = [c for c in changes if "not a config" in c] + under(model_keys)
    if differ:
        raise ValueError(f"{out_dir} holds a run of another model ({'; '.join(differ)}); resuming it cannot work: "
                         "use a new output folder, or --resume none to start this one over")
    differ = under(data_keys)
    if differ:
        raise ValueError(f"{out_dir} was trained on other data ({'; '.join(differ)}); resuming would mix two data "
                         "sets and compare validation losses of two splits: use a new output folder, or "
                         "--resume none to start this one over")


# ---------------------------------------------------------------------------------------------- RNG


def capture_rng() -> dict[str, tp.Any]:
    """Python, numpy, torch and CUDA generator states, as tensors and plain numbers."""
    import torch

    version, py_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, tp.Any] = {
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, tp.Any]) -> None:
    """Inverse of :func:`capture_rng` (CUDA states only when the device count matches)."""
    import torch

    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch (all devices): call before building a model for a fresh run."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_checkpoint_io() -> tp.Any:
    """A Lightning CheckpointIO that writes every checkpoint atomically (temporary file + rename)."""
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint: dict[str, tp.Any], path: tp.Any, storage_options: tp.Any = None) -> None:
            if storage_options is not None:
                raise TypeError("AtomicCheckpointIO takes no storage_options")
            atomic_torch_save(checkpoint, Path(path))

    return AtomicCheckpointIO()
