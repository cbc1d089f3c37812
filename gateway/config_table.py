"""A typed reader over one TOML table: every error names the file and the full key.

Each section of the config (``gateway.config``) and each settings module that
parses a section of its own (EST, SCEP, rate limits, retention) reads its
table through :class:`Table`, so a mistake reads the same wherever it is.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import ConfigError

T = TypeVar("T")


class Table:
    """A typed reader over one TOML table that reports errors with their full key."""

    def __init__(self, source: builtins.str, prefix: builtins.str, data: Mapping[str, Any]) -> None:
        self.source = source
        self.prefix = prefix
        self.data = data
        self._read: set[str] = set()

    def key(self, name: builtins.str) -> builtins.str:
        """The dotted path of ``name`` in this table, for messages."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: builtins.str, expected: builtins.str) -> ConfigError:
        """A ConfigError about key ``name``."""
        return ConfigError(self.source, self.key(name), expected)

    def _get(self, name: builtins.str, default: T, kinds: tuple[type, ...],
             expected: builtins.str) -> T:
        self._read.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(name, f"expected {expected}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.error(name, f"expected {expected}, got {value!r}")
        return value  # type: ignore[return-value]

    def str(self, name: builtins.str, default: builtins.str = "") -> builtins.str:
        """A string value."""
        return self._get(name, default, (str,), "a string")

    def bool(self, name: builtins.str, default: bool = False) -> bool:
        """A boolean value."""
        return self._get(name, default, (bool,), "true or false")

    def int(self, name: builtins.str, default: int, minimum: int | None = 0,
            maximum: int | None = None) -> int:
        """An integer within bounds."""
        value = self._get(name, default, (int,), "an integer")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self.error(name, f"expected an integer from {minimum} to {maximum}, got {value}")
        return value

    def float(self, name: builtins.str, default: float, minimum: float = 0.0) -> float:
        """A non-negative number."""
        value = self._get(name, default, (int, float), "a number")
        if value < minimum:
            raise self.error(name, f"expected a number ≥ {minimum}, got {value}")
        return float(value)

    def strs(self, name: builtins.str,
             default: tuple[builtins.str, ...] = ()) -> tuple[builtins.str, ...]:
        """A list of strings."""
        value = self._get(name, list(default), (list,), "a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise self.error(name, "expected a list of strings")
        return tuple(value)

    def ints(self, name: builtins.str,
             default: tuple[builtins.int, ...] = ()) -> tuple[builtins.int, ...]:
        """A list of integers."""
        value = self._get(name, list(default), (list,), "a list of integers")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise self.error(name, "expected a list of integers")
        return tuple(value)

    def table(self, name: builtins.str) -> Table:
        """A sub-table (empty when absent)."""
        value: dict[builtins.str, Any] = self._get(name, {}, (dict,), "a table")
        return Table(self.source, self.key(name), value)

    def secret(self, name: builtins.str) -> builtins.str | None:
        """A secret given as ``NAME_file`` (a path) or ``NAME_env`` (a variable), never inline."""
        if name in self.data:
            raise self.error(name, f"secrets are never inline: use {name}_file or {name}_env")
        path = self.str(f"{name}_file")
        env = self.str(f"{name}_env")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise self.error(f"{name}_file", f"cannot read {path}: {exc.strerror}") from exc
        if env:
            if env not in os.environ:
                raise self.error(f"{name}_env", f"environment variable {env} is not set")
            return os.environ[env]
        return None

    def check_unknown(self) -> None:
        """Refuse keys that nothing read: a typo must not be silently ignored."""
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise self.error(unknown[0],
                             "unknown option (check the spelling against config/gateway.toml)")
