"""An aiohttp-like session that sends each request to the next of several gateway nodes.

The nodes share one ``server.base_url``, so every URL they hand out starts
with it; the session swaps that prefix for the next node's own address, as a
round-robin load balancer would. A nonce from one node is thus always spent
at another. A POST that cannot reach a node (refused, or cut off when the
node died) marks the node down and goes to the next one, as a balancer's
health check would; the request may have reached the dead node first, so the
client must cope with a spent nonce (badNonce) like any ACME client.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp


class AlternatingSession:
    """Round-robin over ``nodes``: (session, that node's base URL, or "" for a TestClient)."""

    def __init__(self, base_url: str, nodes: Sequence[tuple[Any, str]]) -> None:
        self.base_url = base_url.rstrip("/")
        self.nodes = list(nodes)
        self.down: set[int] = set()
        self.sent = [0] * len(self.nodes)
        self._turn = 0

    def _route(self, url: str) -> tuple[int, Any, str]:
        live = [i for i in range(len(self.nodes)) if i not in self.down]
        if not live:
            raise aiohttp.ClientConnectionError("every node is down")
        index = live[self._turn % len(live)]
        self._turn += 1
        self.sent[index] += 1
        session, node_base = self.nodes[index]
        path = url[len(self.base_url):] if url.startswith(self.base_url) else url
        return index, session, node_base + path

    def get(self, url: str, **kwargs: Any) -> Any:
        """GET at the next node."""
        _, session, target = self._route(url)
        return session.get(target, **kwargs)

    def head(self, url: str, **kwargs: Any) -> Any:
        """HEAD at the next node."""
        _, session, target = self._route(url)
        return session.head(target, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Any:
        """POST at the next node that answers."""
        while True:
            index, session, target = self._route(url)
            try:
                return await session.post(target, **kwargs)
            except aiohttp.ClientConnectionError:
                self.down.add(index)
