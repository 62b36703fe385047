"""Logging for the ``unitwave`` logger: one line per message on stderr."""

from __future__ import annotations

import logging
import sys
import typing as tp


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (tests and notebooks replace it), not the
    stream that was current when logging was set up."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> tp.TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: tp.Any) -> None:
        pass


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else (logging.ERROR if quiet else logging.INFO)
    root = logging.getLogger("unitwave")
    root.setLevel(level)
    if not root.handlers:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("unitwave: %(levelname)s: %(message)s"))
        root.addHandler(handler)
    root.propagate = False
