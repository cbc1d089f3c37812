"""One generated request and how the battery sends it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

JOSE = "application/jose+json"
MAIN, TRANSPORT, PARSER = "main", "transport", "parser"
"""Case groups: ``main`` cases must all pass; ``transport`` cases are refused by
routing or size limits before any handler (404/405/413/415); ``parser`` cases
break HTTP itself and are answered by aiohttp's parser before any route, so only
"no 5xx, no hang" applies to them."""

Body = bytes | Callable[[str], bytes]
"""A body, or a function of the current nonce that signs one."""


@dataclass(frozen=True)
class Case:
    """A request: where, how, with what, and which group it counts in."""

    family: str
    method: str
    url: str
    body: Body = b""
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": JOSE})
    raw: bytes | None = None
    group: str = MAIN
    status: int | None = None
    """The status the answer must have, where only one is right."""

    @property
    def is_acme(self) -> bool:
        """An ACME request (answered with problem documents); else EST (text)."""
        return "/acme/" in self.url or self.url.endswith("/acme")
