"""Reading a connector's ``[cas.NAME]`` table, secrets included.

Connectors cannot use the gateway's config reader (they never import
``gateway/``), so :class:`OptionReader` offers the same typed getters and turns
every mistake into a :class:`~connectors.base.CAConfigError` that names the key
and the fix.

Secrets (passwords, key passphrases, enrollment codes) are read only from a
file (``NAME_file``) or an environment variable (``NAME_env``). An inline
``NAME = "..."`` is refused, so a secret never lands in a config file that is
copied around, printed or committed. Secret values are never part of a message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from connectors.base import CAConfigError

T = TypeVar("T")


def read_secret(source: str, key: str, path: str | None, env: str | None) -> str | None:
    """The secret in file ``path`` or environment variable ``env`` (file first), else None.

    ``source`` and ``key`` only name where the reference came from in errors.
    A trailing newline in the file is dropped (``echo pw > file`` is the norm).
    """
    if path:
        try:
            return Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise CAConfigError(
                f"{source}: {key}_file: cannot read {path}: {exc.strerror}; "
                "check the path and that the gateway user may read it"
            ) from exc
    if env:
        if env not in os.environ:
            raise CAConfigError(f"{source}: {key}_env: environment variable {env} is not set")
        return os.environ[env]
    return None


class OptionReader:
    """Typed access to one connector's option table; errors name ``[cas.NAME].key``."""

    def __init__(self, name: str, options: Mapping[str, Any], data_dir: Path) -> None:
        self.source = f"[cas.{name}]"
        self.options = options
        self.data_dir = data_dir
        self._read: set[str] = {"type"}

    def error(self, key: str, expected: str) -> CAConfigError:
        """A CAConfigError about ``key``."""
        return CAConfigError(f"{self.source} {key}: {expected}")

    def _get(self, key: str, default: T, kinds: tuple[type, ...], expected: str) -> T:
        self._read.add(key)
        if key not in self.options:
            return default
        value = self.options[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(key, f"expected {expected}, got {value!r}")
        return value  # type: ignore[return-value]

    def string(self, key: str, default: str = "") -> str:
        """A string option."""
        return self._get(key, default, (str,), "a string")

    def required_str(self, key: str, hint: str) -> str:
        """A string option that must be present and non-empty; ``hint`` says what to put."""
        value = self.string(key)
        if not value:
            raise self.error(key, f"is required ({hint})")
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        """A string option from a fixed set."""
        value = self.string(key, default)
        if value not in allowed:
            raise self.error(key, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of strings (empty when absent)."""
        value: list[object] = self._get(key, [], (list,), "a list of strings")
        found = tuple(v for v in value if isinstance(v, str))
        if len(found) != len(value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return found

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean option."""
        return self._get(key, default, (bool,), "true or false")

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int = 1 << 31) -> int:
        """An integer option within bounds."""
        value = self._get(key, default, (int,), "an integer")
        if not minimum <= value <= maximum:
            raise self.error(key, f"expected an integer from {minimum} to {maximum}, got {value}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        """A number option, at least ``minimum``."""
        value = self._get(key, default, (int, float), "a number")
        if value < minimum:
            raise self.error(key, f"expected a number >= {minimum}, got {value}")
        return float(value)

    def path(self, key: str) -> Path | None:
        """A file path that must exist (relative paths from the working directory, as elsewhere
        in the gateway's configuration)."""
        raw = self.string(key)
        if not raw:
            return None
        path = Path(raw)
        if not path.is_file():
            raise self.error(key, f"{path} is not a readable file; fix the path")
        return path

    def secret(self, key: str) -> str | None:
        """A secret from ``KEY_file`` or ``KEY_env``; an inline ``KEY`` is refused."""
        self._read.update({key, f"{key}_file", f"{key}_env"})
        if key in self.options:
            raise self.error(key, f"secrets are never inline: use {key}_file or {key}_env")
        path = self.path(f"{key}_file")
        env = self.string(f"{key}_env")
        return read_secret(self.source, key, str(path) if path else None, env or None)

    def check_unknown(self) -> None:
        """Refuse options nothing read: a typo must not be silently ignored."""
        unknown = sorted(set(self.options) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown option; check its spelling")
