"""Typed configs: defaults < YAML (``--config``) < command line.

Every command's config is a frozen dataclass. YAML is checked strictly against it (an unknown key is an
error that names the file, the key and the closest valid key); flags are parsed by tyro, which turns
field names into ``--kebab-case`` flags and docstrings into help. The resolved config is saved as
``config.yaml`` into every output folder and can be fed back with ``--config``.
"""

from __future__ import annotations

import argparse
import dataclasses as dc
import difflib
import os
import sys
import types
import typing as tp
from pathlib import Path

import yaml

T = tp.TypeVar("T")


class ConfigError(ValueError):
    """A config file or value that does not fit its dataclass."""


# ----------------------------------------------------------------------------------------------------
# dict -> dataclass, strictly


def _unwrap(tp_: tp.Any) -> tp.Any:
    while tp.get_origin(tp_) is tp.Annotated:
        tp_ = tp.get_args(tp_)[0]
    return tp_


def _type_name(tp_: tp.Any) -> str:
    tp_ = _unwrap(tp_)
    return getattr(tp_, "__name__", None) or str(tp_).replace("typing.", "")


def _convert(value: tp.Any, tp_: tp.Any, where: str, base: tp.Any = None) -> tp.Any:
    """Coerce one YAML value to ``tp_`` or raise ConfigError naming ``where``.

    ``base``: for a nested dataclass, the instance whose values the mapping's missing keys keep.
    """
    tp_ = _unwrap(tp_)
    origin = tp.get_origin(tp_)
    if tp_ is tp.Any:
        return value
    if dc.is_dataclass(tp_):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp_.__name__}, got {value!r}")
        return from_dict(tp_, value, where, base=base)
    if origin in (tp.Union, types.UnionType):
        args = tp.get_args(tp_)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} is not a valid {_type_name(tp_)}")
    if origin is tp.Literal:
        if value not in tp.get_args(tp_):
            choices = ", ".join(repr(a) for a in tp.get_args(tp_))
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = tp.get_args(tp_)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = [_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item_tp = args[0] if args else tp.Any
            items = [_convert(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        k_tp, v_tp = tp.get_args(tp_) or (tp.Any, tp.Any)
        return {_convert(k, k_tp, where): _convert(v, v_tp, f"{where}.{k}") for k, v in value.items()}
    if tp_ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp_ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp_ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp_ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp_ in (Path, os.PathLike):
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(f"{where}: unsupported config type {_type_name(tp_)}")


def _default_of(f: dc.Field) -> tp.Any:
    if f.default is not dc.MISSING:
        return f.default
    if f.default_factory is not dc.MISSING:
        return f.default_factory()
    return dc.MISSING


def from_dict(cls: type[T], data: dict[str, tp.Any], where: str = "", base: tp.Any = None) -> T:
    """Build ``cls`` from a (possibly partial) mapping; missing required fields become ``tyro.MISSING``.

    Keys may be written ``snake_case`` or ``kebab-case``. An unknown key raises ConfigError naming it
    and the closest known key. Keys a mapping leaves out keep the value of ``base`` (an instance of
    ``cls``) or else the field's default; a nested section thus keeps the defaults its parent gave it
    (``SegmentConfig.vad = VadOptions(min_silence_s=0.5)``), not only its class's.
    """
    import tyro

    hints = tp.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dc.fields(cls) if f.init}
    kwargs: dict[str, tp.Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key).replace("-", "_")
        path = f"{where}.{raw_key}" if where else str(raw_key)
        if key not in fields:
            nested = _nested_home(cls, key)
            close = difflib.get_close_matches(key, list(fields), n=1)
            if nested:
                form = f"{key}: ..."
                for part in reversed(nested.split(".")):
                    form = f"{part}: {{{form}}}"
                hint = f"; it belongs in section {nested!r}: write {form}"
            else:
                hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"unknown config key {path!r}{hint}")
        inner_base = getattr(base, key) if base is not None else _default_of(fields[key])
        kwargs[key] = _convert(value, hints[key], path, None if inner_base is dc.MISSING else inner_base)
    for name, f in fields.items():
        if name in kwargs:
            continue
        value = getattr(base, name) if base is not None else _default_of(f)
        kwargs[name] = tyro.MISSING if value is dc.MISSING else value
    return cls(**kwargs)


def _nested_home(cls: type, key: str) -> str | None:
    """The dotted section of ``cls`` (searched depth first) that has a field named ``key``, if any."""
    hints = tp.get_type_hints(cls, include_extras=True)
    for f in dc.fields(cls):
        inner = _unwrap(hints[f.name])
        if not (isinstance(inner, type) and dc.is_dataclass(inner)):
            continue
        if key in {g.name for g in dc.fields(inner)}:
            return f.name
        deeper = _nested_home(inner, key)
        if deeper:
            return f"{f.name}.{deeper}"
    return None


def positional_fields(cls: type) -> list[str]:
    """Names of the fields a command takes as positional arguments (``tyro.conf.Positional``)."""
    import tyro

    hints = tp.get_type_hints(cls, include_extras=True)
    return [
        f.name
        for f in dc.fields(cls)
        if tp.get_origin(hints[f.name]) is tp.Annotated
        and any(m is tyro.conf.Positional for m in tp.get_args(hints[f.name])[1:])
    ]


def to_dict(cfg: tp.Any) -> dict[str, tp.Any]:
    """A dataclass as plain YAML-able data (paths as strings, tuples as lists)."""

    def plain(v: tp.Any) -> tp.Any:
        if dc.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dc.fields(v)}
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def with_absolute_paths(cfg: T) -> T:
    """``cfg`` with every path made absolute (against the working directory): a saved config then means
    the same files from any directory (SLURM tasks, a rerun from elsewhere, ``--config`` later)."""

    def absolute(v: tp.Any) -> tp.Any:
        if dc.is_dataclass(v) and not isinstance(v, type):
            changes = {f.name: absolute(getattr(v, f.name)) for f in dc.fields(v)}
            return dc.replace(v, **{k: x for k, x in changes.items() if x is not getattr(v, k)})
        if isinstance(v, Path):
            return Path(os.path.abspath(v))
        if isinstance(v, tuple) and any(isinstance(x, Path) for x in v):
            return tuple(absolute(x) for x in v)
        return v

    return absolute(cfg)


def _flatten(data: tp.Any, prefix: str = "") -> dict[str, tp.Any]:
    if isinstance(data, dict):
        out: dict[str, tp.Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def changed_settings(saved: Path, cfg: tp.Any, ignore: tp.Iterable[str] = ()) -> list[str]:
    """``"key: old -> new"`` for each setting of ``cfg`` that differs from the config saved at ``saved``.

    Keys in ``ignore`` (dotted; a section name ignores the whole section) are not compared. A saved
    file that no longer parses as this config counts as one change.
    """
    try:
        old = to_dict(with_absolute_paths(from_dict(type(cfg), read_yaml(saved))))
    except (ConfigError, TypeError):
        return [f"{saved} is not a config of this command"]
    return diff_settings(old, to_dict(with_absolute_paths(cfg)), ignore)


def diff_settings(old: dict[str, tp.Any], new: dict[str, tp.Any], ignore: tp.Iterable[str] = ()) -> list[str]:
    """``"key: old -> new"`` (dotted keys) for every setting that differs between two config dicts;
    keys in ``ignore`` (a section name ignores the whole section) are not compared."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    skip = tuple(ignore)

    def ignored(key: str) -> bool:
        return any(key == i or key.startswith(i + ".") for i in skip)

    return [
        f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}"
        for k in sorted(set(old_flat) | set(new_flat))
        if not ignored(k) and old_flat.get(k) != new_flat.get(k)
    ]


def to_yaml(cfg: tp.Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True)


def save_config(cfg: tp.Any, out_dir: Path, name: str = "config.yaml") -> Path:
    """Write the resolved config next to the outputs it produced (atomically), paths made absolute."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    tmp = path.with_name(f".{name}.tmp")
    tmp.write_text(to_yaml(with_absolute_paths(cfg)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_yaml(path: Path) -> dict[str, tp.Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return data


def _deep_merge(base: dict[str, tp.Any], over: dict[str, tp.Any]) -> dict[str, tp.Any]:
    out = dict(base)
    for k, v in over.items():
        k = str(k).replace("-", "_")
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse(cls: type[T], argv: tp.Sequence[str], prog: str, description: str | None = None) -> T:
    """Resolve ``cls`` from defaults, ``--config`` files (later ones win) and flags (win over all).

    ``--print-config`` prints the resolved config as YAML and exits.
    """
    import tyro

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", action="append", type=Path, default=[])
    pre.add_argument("--print-config", action="store_true")
    known, rest = pre.parse_known_args(list(argv))
    data: dict[str, tp.Any] = {}
    source = ""
    try:
        for path in known.config:
            data = _deep_merge(data, read_yaml(path))
            source = str(path)
        default = from_dict(cls, data)
    except ConfigError as e:
        raise SystemExit(f"{prog}: {source + ': ' if source else ''}{e}") from None
    desc = (description or (cls.__doc__ or "")).strip()
    desc += "\n\nAlso: --config FILE.yaml (repeatable; flags win over it), --print-config."
    try:
        cfg = tyro.cli(cls, args=rest, default=default, prog=prog, description=desc)
    except AssertionError as e:  # tyro's way of saying two flattened fields share a flag name
        raise ConfigError(f"{prog}: the config of this command maps two fields to one flag ({e}); "
                          "rename one of them (a bug in the command, not in your input)") from None
    if known.print_config:
        sys.stdout.write(to_yaml(cfg))
        raise SystemExit(0)
    return cfg
