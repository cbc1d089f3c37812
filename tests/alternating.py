"""An aiohttp-like session that sends each request to the next of several gateway nodes.

The nodes share one ``server.base_url``, so every URL they hand out starts
with it; the session swaps that prefix for the next node's own address, as a
round-robin load balancer would. A nonce from one node is thus always spent
at another.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any


class AlternatingSession:
    """Round-robin over ``nodes`` (sessions with ``get``/``head``/``post`` on a path or URL)."""

    def __init__(self, base_url: str, nodes: Sequence[tuple[Any, str]]) -> None:
        """``nodes``: (session, that node's base URL or "" for a TestClient taking paths)."""
        self.base_url = base_url.rstrip("/")
        self.nodes = list(nodes)
        self._next = itertools.cycle(range(len(self.nodes)))
        self.sent = [0] * len(self.nodes)

    def _route(self, url: str) -> tuple[Any, str]:
        index = next(self._next)
        self.sent[index] += 1
        session, node_base = self.nodes[index]
        path = url[len(self.base_url):] if url.startswith(self.base_url) else url
        return session, node_base + path

    def get(self, url: str, **kwargs: Any) -> Any:
        """GET at the next node."""
        session, target = self._route(url)
        return session.get(target, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        """HEAD at the next node."""
        session, target = self._route(url)
        return session.head(target, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        """POST at the next node."""
        session, target = self._route(url)
        return session.post(target, **kwargs)
