"""Config precedence (command line > YAML > defaults), strict YAML, --print-config, saved config."""

from __future__ import annotations

import dataclasses as dc
import typing as tp
from pathlib import Path

import pytest
import tyro
import yaml

from unitwave.config import ConfigError, from_dict, parse, save_config, to_dict


@dc.dataclass(frozen=True)
class Inner:
    workers: int = 2
    """Workers."""
    mode: tp.Literal["a", "b"] = "a"


@dc.dataclass(frozen=True)
class Outer:
    """A test config."""

    input: tyro.conf.Positional[Path]
    rate: int = 16000
    ratio: float = 0.5
    names: tuple[str, ...] = ("x", "y")
    flag: bool = False
    limit: tp.Optional[int] = None
    inner: tp.Annotated[Inner, tyro.conf.OmitArgPrefixes] = Inner()


def write_yaml(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_defaults_then_yaml_then_flags(tmp_path):
    assert parse(Outer, ["in"], "t").rate == 16000
    y = write_yaml(tmp_path, {"rate": 8000, "ratio": 0.25, "inner": {"workers": 7}})
    cfg = parse(Outer, ["in", "--config", str(y)], "t")
    assert (cfg.rate, cfg.ratio, cfg.inner.workers, cfg.inner.mode) == (8000, 0.25, 7, "a")
    cfg = parse(Outer, ["in", "--config", str(y), "--rate", "22050", "--workers", "3"], "t")
    assert (cfg.rate, cfg.ratio, cfg.inner.workers) == (22050, 0.25, 3)
    # the flag wins wherever it stands relative to --config
    cfg = parse(Outer, ["--rate", "1", "in", "--config", str(y)], "t")
    assert cfg.rate == 1


def test_yaml_can_supply_positionals_and_kebab_keys(tmp_path):
    y = write_yaml(tmp_path, {"input": "from_yaml", "limit": 3, "flag": True, "names": ["a"]})
    cfg = parse(Outer, ["--config", str(y)], "t")
    assert cfg.input == Path("from_yaml") and cfg.limit == 3 and cfg.flag and cfg.names == ("a",)


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'inner.workres'.*'workers'"):
        from_dict(Outer, {"inner": {"workres": 3}})
    y = write_yaml(tmp_path, {"rat": 3})
    with pytest.raises(SystemExit, match=r"c.yaml.*unknown config key 'rat'.*did you mean 'rate'"):
        parse(Outer, ["in", "--config", str(y)], "t")


@pytest.mark.parametrize(
    "data, message",
    [
        ({"rate": "fast"}, "rate: expected an integer"),
        ({"flag": "yes"}, "flag: expected true or false"),
        ({"inner": {"mode": "c"}}, "inner.mode: 'c' is not one of"),
        ({"names": "abc"}, "names: expected a list"),
        ({"inner": 3}, "inner: expected a mapping"),
    ],
)
def test_bad_yaml_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_print_config_round_trips(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        parse(Outer, ["in", "--rate", "123", "--print-config"], "t")
    assert e.value.code == 0
    printed = capsys.readouterr().out
    data = yaml.safe_load(printed)
    assert data["rate"] == 123 and data["inner"]["workers"] == 2
    y = tmp_path / "printed.yaml"
    y.write_text(printed)
    assert parse(Outer, ["--config", str(y)], "t") == parse(Outer, ["in", "--rate", "123"], "t")


def test_save_config_is_loadable(tmp_path):
    cfg = parse(Outer, ["in", "--ratio", "0.75", "--names", "p", "q", "--flag"], "t")
    path = save_config(cfg, tmp_path / "out")
    saved = yaml.safe_load(path.read_text())
    assert saved == {**to_dict(cfg), "input": str(Path("in").absolute())}  # means the same from any folder
    assert parse(Outer, ["--config", str(path)], "t") == dc.replace(cfg, input=Path("in").absolute())


def test_cli_help_lists_commands_without_heavy_imports(cli):
    proc = cli("--help", check=True)
    assert "convert" in proc.stdout and "status" in proc.stdout
    assert cli("--version", check=True).stdout.startswith("unitwave ")
    probe = "import sys, unitwave.cli as c; c.main(['--help']); print(sorted(m for m in ('torch', 'numpy', 'tyro') if m in sys.modules))"
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]")


def test_command_groups_list_their_sub_commands(cli):
    proc = cli("lm", "--help", check=True)
    assert "unitwave lm sub-commands: train, score, sample, grid" in proc.stdout
    proc = cli("units", "--help", check=True)  # the group's own one-go command follows
    assert "sub-commands: fit, encode, quality, import-kmeans" in proc.stdout and "--k" in proc.stdout
    proc = cli("lm")
    assert proc.returncode != 0 and "give a sub-command" in proc.stderr


def test_cli_unknown_flag_and_command(cli, tmp_path):
    proc = cli("convert", tmp_path, tmp_path / "o", "--sampel-rate", "8000")
    assert proc.returncode != 0 and "--sample-rate" in proc.stdout + proc.stderr
    proc = cli("convrt")
    assert proc.returncode != 0 and "did you mean 'convert'" in proc.stderr


@dc.dataclass(frozen=True)
class WithNestedDefault:
    inner: tp.Annotated[Inner, tyro.conf.OmitArgPrefixes] = Inner(workers=9, mode="b")


def test_partial_nested_yaml_keeps_the_parents_defaults():
    cfg = from_dict(WithNestedDefault, {"inner": {"mode": "a"}})
    assert cfg.inner == Inner(workers=9, mode="a")


def test_positional_fields_are_found():
    from unitwave.config import positional_fields

    assert positional_fields(Outer) == ["input"]


def test_a_key_written_outside_its_section_is_shown_where_it_belongs():
    from unitwave.lm.commands import LMTrainConfig
    from unitwave.prepare.convert import ConvertConfig

    with pytest.raises(ConfigError, match=r"'epochs'; it belongs in section 'train': write train: \{epochs: ...\}"):
        from_dict(LMTrainConfig, {"epochs": 2})
    with pytest.raises(ConfigError, match=r"write engine: \{slurm: \{partition: ...\}\}"):
        from_dict(ConvertConfig, {"partition": "gpu"})
