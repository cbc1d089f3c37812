"""A small, fast RFC 8555 client for load: directory, shared nonce pool, signed POSTs, accounts.

Nonces from every response (``Replay-Nonce``) go into one pool shared by all
concurrent flows, newest used first, so ``newNonce`` is only called when the
pool runs dry; a ``badNonce`` answer is retried once, with the nonce it carries
on top of the pool.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from loadtest.jose import AccountKey, eab_binding
from loadtest.stats import Recorder

JOSE = "application/jose+json"
PROBLEM_PREFIX = "urn:ietf:params:acme:error:"
NONCE_POOL_SIZE = 1024
# Built once: every signed POST sends the same header.
_JOSE_HEADERS = {"Content-Type": JOSE}


class AcmeError(Exception):
    """The server answered with a problem document or an unexpected status.

    ``kind`` is what the run report counts: the short problem type
    (``badNonce``, ``rateLimited``, ...), ``http-<status>`` without a problem
    document, or a flow failure such as ``authz-invalid``.
    """

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read in full."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> dict[str, Any]:
        """The body as a JSON object."""
        value = json.loads(self.body)
        if not isinstance(value, dict):
            raise AcmeError("bad-response", "expected a JSON object")
        return value

    @property
    def location(self) -> str:
        """The Location header (the new resource's URL)."""
        return self.headers.get("Location", "")

    def retry_after(self, default: float) -> float:
        """Retry-After in seconds (integer form, RFC 8555 §8.2), else ``default``."""
        value = self.headers.get("Retry-After", "")
        return float(value) if value.strip().isdigit() else default


def problem_of(reply: Reply) -> AcmeError:
    """An AcmeError naming the problem type of an error answer."""
    try:
        doc = reply.json()
        kind = str(doc.get("type", "")).removeprefix(PROBLEM_PREFIX) or f"http-{reply.status}"
        return AcmeError(kind, str(doc.get("detail", "")))
    except (ValueError, AcmeError):
        return AcmeError(f"http-{reply.status}", reply.body[:200].decode(errors="replace"))


@dataclass(frozen=True)
class Account:
    """A registered account: its key and its URL (the ``kid``)."""

    key: AccountKey
    url: str


class AcmeSession:
    """One ACME server reached through one keep-alive aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, directory_url: str, recorder: Recorder) -> None:
        self.http = http
        self.directory_url = directory_url
        self.recorder = recorder
        self.directory: dict[str, Any] = {}
        # Newest first (LIFO) and bounded: servers keep a limited window of valid nonces.
        self.nonces: deque[str] = deque(maxlen=NONCE_POOL_SIZE)

    async def load_directory(self) -> dict[str, Any]:
        """GET the directory once; its URLs are used for the whole run."""
        async with self.http.get(self.directory_url) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise AcmeError(f"http-{resp.status}", "directory")
            self.directory = json.loads(body)
        return self.directory

    async def get(self, url: str) -> Reply:
        """An unauthenticated GET (e.g. renewalInfo); an error answer raises its problem."""
        self.recorder.counters["requests"] += 1
        async with self.http.get(url) as resp:
            reply = Reply(resp.status, resp.headers, await resp.read())
        if reply.status >= 400:
            raise problem_of(reply)
        return reply

    def _keep_nonce(self, headers: CIMultiDictProxy[str]) -> None:
        nonce = headers.get("Replay-Nonce")
        if nonce:
            self.nonces.append(nonce)

    async def nonce(self) -> str:
        """A fresh nonce: from the pool, else from newNonce (HEAD)."""
        if self.nonces:
            self.recorder.counters["nonce_reused"] += 1
            return self.nonces.pop()
        return await self._new_nonce()

    async def _new_nonce(self) -> str:
        self.recorder.counters["nonce_fetched"] += 1
        async with self.http.head(self.directory["newNonce"]) as resp:
            nonce = resp.headers.get("Replay-Nonce")
        if not nonce:
            raise AcmeError("no-nonce", f"newNonce answered {resp.status} without Replay-Nonce")
        return nonce

    async def open_connections(self, count: int) -> None:
        """Fetch ``count`` nonces at once into the pool.

        ``count`` requests in flight together need ``count`` connections, so
        this also opens (TLS included) the keep-alive connections that the
        same number of concurrent orders will use.
        """
        self.nonces.extend(await asyncio.gather(*(self._new_nonce() for _ in range(count))))

    async def _send(self, url: str, body: bytes, accept: str | None) -> Reply:
        headers = _JOSE_HEADERS if accept is None else {"Content-Type": JOSE, "Accept": accept}
        self.recorder.counters["requests"] += 1
        # encoded=True: the URLs come from the server's own answers; re-quoting them per
        # request was a visible share of the client's CPU.
        async with self.http.post(URL(url, encoded=True), data=body, headers=headers) as resp:
            reply = Reply(resp.status, resp.headers, await resp.read())
        self._keep_nonce(reply.headers)
        return reply

    async def post(
        self,
        url: str,
        key: AccountKey,
        payload: Any | None,
        kid: str | None = None,
        accept: str | None = None,
    ) -> Reply:
        """A signed POST (``payload=None``: POST-as-GET); retried once on badNonce."""
        for attempt in (1, 2):
            reply = await self._send(url, key.jws(url, await self.nonce(), payload, kid), accept)
            if reply.status < 400:
                return reply
            error = problem_of(reply)
            if error.kind != "badNonce" or attempt == 2:
                raise error
            self.recorder.counters["bad_nonce_retries"] += 1
        raise AssertionError("unreachable")

    async def new_account(self, key: AccountKey, eab_kid: str = "", eab_hmac: str = "") -> Account:
        """Register ``key`` (or find its existing account) and return the account."""
        url = self.directory["newAccount"]
        payload: dict[str, Any] = {"termsOfServiceAgreed": True, "contact": []}
        if eab_kid:
            payload["externalAccountBinding"] = eab_binding(key.jwk, eab_kid, eab_hmac, url)
        reply = await self.post(url, key, payload)
        if not reply.location:
            raise AcmeError("no-location", "newAccount answered without a Location header")
        return Account(key, reply.location)
