"""The one entry point: ``unitwave <command> ...`` (also ``python -m unitwave``).

Each command is a frozen config dataclass plus a library function ``run(config)``, both imported only
when the command runs, so ``unitwave --help`` stays instant. Commands are listed in ``commands.py``.
"""

from __future__ import annotations

import importlib
import os
import sys
import typing as tp

from unitwave.commands import COMMANDS, Command, iter_commands
from unitwave.errors import UserError
from unitwave.log import setup_logging

#: user-facing errors: printed as one line, exit status 2 (anything else shows its traceback)
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    FileNotFoundError,
    NotADirectoryError,
    ValueError,
    PermissionError,
)


def _usage() -> str:
    from unitwave import __version__

    lines = [
        f"unitwave {__version__}: speech and music corpora to discrete units, LMs, vocoders and features.",
        "",
        "usage: unitwave <command> [options]     unitwave <command> --help",
        "       unitwave --version",
        "",
        "Every command takes --config FILE.yaml (flags win over it) and --print-config.",
        "",
        "commands:",
    ]
    for full, cmd in iter_commands():
        lines.append(f"  {full:<21} {cmd.help}")
    return "\n".join(lines)


def resolve(argv: list[str]) -> tuple[str, Command, list[str]]:
    """Find the command named by the leading words of ``argv``; returns (name, command, remaining args)."""
    import difflib

    name = argv[0]
    entry = COMMANDS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise SystemExit(f"unitwave: unknown command '{name}'{hint} (unitwave --help lists them)")
    if isinstance(entry, Command):
        return name, entry, argv[1:]
    if len(argv) > 1 and argv[1] in entry and argv[1]:
        return f"{name} {argv[1]}", entry[argv[1]], argv[2:]
    subs = ", ".join(s for s in entry if s)
    asks_help = len(argv) > 1 and argv[1] in ("-h", "--help")
    if asks_help:
        print(f"unitwave {name} sub-commands: {subs} (unitwave {name} <sub-command> --help)")
    if "" in entry:
        return name, entry[""], argv[1:]
    if asks_help:
        raise SystemExit(0)
    raise SystemExit(f"unitwave {name}: give a sub-command: {subs}")


def main(argv: tp.Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    if args[0] in ("-V", "--version"):
        from unitwave import __version__

        print(f"unitwave {__version__}")
        return
    # OpenMP threads that spin while waiting make small-op CPU work (an LSTM step is many tiny parallel
    # regions) up to ~150x slower once cores are shared (measured: 33 s vs 0.2 s per epoch on 2 busy
    # cores); passive waiting cost nothing measurable. Must be set before torch loads; users' setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    setup_logging(verbose)
    name, cmd, rest = resolve(args)
    from unitwave.config import parse

    module = importlib.import_module(cmd.module)
    config_cls = getattr(module, cmd.config)
    cfg = parse(config_cls, rest, prog=f"unitwave {name}", description=cmd.help)
    try:
        result = getattr(module, cmd.function)(cfg)
    except USER_ERRORS as exc:
        if verbose:
            raise
        print(f"unitwave {name}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"unitwave {name}: interrupted; rerun the same command to resume (finished work is kept)",
              file=sys.stderr)
        raise SystemExit(130) from None
    code = getattr(result, "exit_code", 0)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
