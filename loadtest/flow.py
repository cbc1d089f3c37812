"""The full ACME order flow (RFC 8555 §7.4), timed step by step.

newOrder → for each authorization (concurrently): fetch, publish the answer,
POST ``{}`` to the challenge, poll until valid → finalize with a fresh key and
CSR → poll the order (honouring Retry-After) → download the certificate.

The keys and CSRs are made before the measured window (``OrderFlow.prepare``),
as names are known in advance; only the protocol work runs per order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from loadtest import ari
from loadtest.acme import Account, AcmeError, AcmeSession, Reply
from loadtest.jose import b64url, dns01_txt
from loadtest.prepare import CsrStock
from loadtest.responders import DnsResponder, Http01Responder
from loadtest.stats import Recorder

CHALLENGES = ("http-01", "dns-01")
PEM_CHAIN = "application/pem-certificate-chain"


@dataclass(frozen=True)
class FlowOptions:
    """What each order looks like and how the client polls."""

    challenge: str = "http-01"
    names_per_order: int = 1
    domain: str = "loadtest.test"
    profile: str = ""
    key_type: str = "ec"
    poll_interval: float = 0.2
    # Poll every poll_interval whatever Retry-After says, as badly behaved clients do.
    ignore_retry_after: bool = False
    # After each certificate, ask renewalInfo (RFC 9773) about it, as ARI clients do.
    ari: bool = False
    # A random label per run keeps names unique, so no server reuses an earlier authorization.
    run_label: str = field(default_factory=lambda: secrets.token_hex(3))


class OrderFlow:
    """Runs single orders against one session; challenge answers go to the given responders."""

    def __init__(
        self,
        session: AcmeSession,
        options: FlowOptions,
        http01: Http01Responder | None = None,
        dns: DnsResponder | None = None,
    ) -> None:
        if options.challenge not in CHALLENGES:
            raise ValueError(
                f"unknown challenge type {options.challenge!r}; use one of {CHALLENGES}"
            )
        self.session = session
        self.options = options
        self.http01 = http01
        self.dns = dns
        self.recorder = session.recorder
        self.csrs = CsrStock(options.key_type, self.names_for, self.recorder.counters)

    def prepare(self, count: int) -> None:
        """Make the keys and CSRs of orders ``0..count-1`` now, before the measured window."""
        self.csrs.fill(count)

    def record_into(self, recorder: Recorder) -> None:
        """Measure into ``recorder`` from now on: the preparation kept its own figures."""
        self.recorder = self.session.recorder = recorder
        self.csrs.counters = recorder.counters

    def names_for(self, index: int) -> list[str]:
        """The DNS names of order ``index``: unique per run and per order."""
        base = f"o{index}-{self.options.run_label}.{self.options.domain}"
        return [base] + [f"n{k}.{base}" for k in range(1, self.options.names_per_order)]

    async def run(self, account: Account, index: int) -> int:
        """Run order ``index`` to a downloaded certificate; returns the chain length."""
        names = self.names_for(index)
        order, order_url = await self._new_order(account, names)
        urls = order["authorizations"]
        if len(urls) == 1:
            await self._authorize(account, urls[0])  # no task to make for the common case
        else:
            # A TaskGroup, not gather: when one authorization fails the others stop polling.
            async with asyncio.TaskGroup() as group:
                for url in urls:
                    group.create_task(self._authorize(account, url))
        order = await self._finalize(account, order, order_url, index)
        chain = await self._download(account, order)
        if self.options.ari:
            await self._renewal_info(chain[0])
        return len(chain)

    async def _new_order(self, account: Account, names: list[str]) -> tuple[dict[str, Any], str]:
        payload: dict[str, Any] = {"identifiers": [{"type": "dns", "value": n} for n in names]}
        if self.options.profile:
            payload["profile"] = self.options.profile
        with self.recorder.timed("newOrder"):
            reply = await self.session.post(
                self.session.directory["newOrder"], account.key, payload, account.url
            )
        return reply.json(), reply.location

    async def _authorize(self, account: Account, authz_url: str) -> None:
        with self.recorder.timed("authz"):
            authz = (await self.session.post(authz_url, account.key, None, account.url)).json()
        if authz.get("status") == "valid":
            self.recorder.counters["authz_reused"] += 1
            return
        challenge = next(
            (c for c in authz.get("challenges", []) if c.get("type") == self.options.challenge),
            None,
        )
        if challenge is None:
            raise AcmeError("no-challenge", f"authorization offers no {self.options.challenge}")
        name = authz["identifier"]["value"]
        key_authz = account.key.key_authorization(challenge["token"])
        self._publish(name, challenge["token"], key_authz)
        try:
            with self.recorder.timed("challenge"):
                await self.session.post(challenge["url"], account.key, {}, account.url)
            with self.recorder.timed("validation"):
                await self._poll(account, authz_url, "authz-invalid")
        finally:
            self._withdraw(name, challenge["token"], key_authz)

    def _publish(self, name: str, token: str, key_authz: str) -> None:
        if self.options.challenge == "http-01" and self.http01:
            self.http01.tokens[token] = key_authz
        elif self.options.challenge == "dns-01" and self.dns:
            self.dns.publish(name, dns01_txt(key_authz))

    def _withdraw(self, name: str, token: str, key_authz: str) -> None:
        if self.http01:
            self.http01.tokens.pop(token, None)
        if self.dns and self.options.challenge == "dns-01":
            self.dns.withdraw(name, dns01_txt(key_authz))

    def _poll_delay(self, reply: Reply) -> float:
        """Seconds before the next poll: Retry-After, unless told to ignore it."""
        if self.options.ignore_retry_after:
            return self.options.poll_interval
        return reply.retry_after(self.options.poll_interval)

    async def _poll(self, account: Account, url: str, failure: str) -> dict[str, Any]:
        """POST-as-GET ``url`` until its status leaves pending/processing; invalid raises."""
        while True:
            reply = await self.session.post(url, account.key, None, account.url)
            resource = reply.json()
            status = resource.get("status")
            if status == "valid":
                return resource
            if status == "invalid":
                raise AcmeError(failure, _error_detail(resource))
            self.recorder.counters["polls"] += 1
            await asyncio.sleep(self._poll_delay(reply))

    async def _finalize(
        self, account: Account, order: dict[str, Any], order_url: str, index: int
    ) -> dict[str, Any]:
        csr = b64url(self.csrs.take(index))
        with self.recorder.timed("finalize"):
            reply = await self.session.post(
                order["finalize"], account.key, {"csr": csr}, account.url
            )
        order = reply.json()
        if order.get("status") == "valid":
            return order
        if order.get("status") == "invalid":
            raise AcmeError("order-invalid", _error_detail(order))
        # "issuance" spans the whole wait after the finalize answer, first Retry-After included.
        with self.recorder.timed("issuance"):
            await asyncio.sleep(self._poll_delay(reply))
            return await self._poll(account, order_url, "order-invalid")

    async def _renewal_info(self, leaf: x509.Certificate) -> None:
        base = self.session.directory.get("renewalInfo")
        if not base:
            raise AcmeError("no-renewal-info", "the directory offers no renewalInfo (RFC 9773)")
        with self.recorder.timed("renewalInfo"):
            reply = await self.session.get(f"{base}/{ari.cert_id(leaf)}")
        self.recorder.counters[ari.judge(reply.json(), leaf, dt.datetime.now(dt.UTC))] += 1

    async def _download(self, account: Account, order: dict[str, Any]) -> list[x509.Certificate]:
        with self.recorder.timed("certificate"):
            reply = await self.session.post(
                order["certificate"], account.key, None, account.url, PEM_CHAIN
            )
        try:
            chain = x509.load_pem_x509_certificates(reply.body)
        except ValueError as exc:
            raise AcmeError("bad-certificate", str(exc)) from exc
        return chain


def _error_detail(resource: dict[str, Any]) -> str:
    """The most specific error text an invalid authorization or order carries."""
    for challenge in resource.get("challenges", []):
        if challenge.get("error"):
            return str(challenge["error"].get("detail", challenge["error"]))
    error = resource.get("error") or {}
    return str(error.get("detail", "")) if isinstance(error, dict) else str(error)
