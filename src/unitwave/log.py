"""Logging for the ``unitwave`` logger: one line per message on stderr."""

from __future__ import annotations

import logging
import sys


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else (logging.ERROR if quiet else logging.INFO)
    root = logging.getLogger("unitwave")
    root.setLevel(level)
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("unitwave: %(levelname)s: %(message)s"))
        root.addHandler(handler)
    root.propagate = False
