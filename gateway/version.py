"""The gateway's version, as installed (pyproject.toml) or, from a source tree, as written there."""

from __future__ import annotations

import re
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "acme-gateway"


@cache
def version() -> str:
    """The version string, e.g. ``0.1.0`` (``unknown`` if neither source says)."""
    # A source checkout run with PYTHONPATH may differ from an older installed copy:
    # the pyproject.toml next to the package is the truth for the code running.
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
