"""ACME load for the end-to-end tests of several nodes: patient clients and whole orders."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any, ClassVar

from cryptography import x509

from tests.acmeclient import AcmeClient, b64, make_csr
from tests.e2e.harness import ChallTestSrv, GatewayProcess

# The nodes' common server.base_url: the URLs they hand out, whichever answered.
BASE = "https://acme.test"
# Tries of one request refused with 503 or a spent nonce (a 30 s database outage at most).
PATIENCE = 120


class Node(GatewayProcess):
    """A gateway process with its own config and log, on the data directory all nodes share."""

    def __init__(self, workdir: Path, doc: dict[str, Any]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(workdir, doc)

    @property
    def tls_cert(self) -> Path:
        return Path(self.doc["server"]["data_dir"]) / "tls" / "server.pem"


class PatientClient(AcmeClient):
    """An ACME client that retries a spent nonce and a 503, as certbot and lego do.

    Every status it saw goes into ``statuses`` (shared by all clients of a test).
    """

    statuses: ClassVar[list[int]] = []

    async def post(self, url: str, payload: Any = None, **kw: Any) -> Any:
        for _ in range(PATIENCE):
            resp, body = await super().post(url, payload, **kw)
            self.statuses.append(resp.status)
            if resp.status == 503:
                assert resp.headers["Retry-After"], body
                await asyncio.sleep(0.25)  # sooner than Retry-After: the test is in a hurry
                continue
            if resp.status != 400 or not str(body.get("type", "")).endswith(":badNonce"):
                return resp, body
        raise AssertionError(f"{url}: still refused after {PATIENCE} tries: {body}")


class Load:
    """What the clients did, for the test to act on midway and check at the end."""

    def __init__(self) -> None:
        self.orders: list[str] = []  # every order URL a client was given
        self.finalized = 0
        self.progress = asyncio.Event()

    def finalize_done(self) -> None:
        self.finalized += 1
        self.progress.set()

    async def wait_finalized(self, count: int) -> None:
        while self.finalized < count:
            self.progress.clear()
            await self.progress.wait()


async def poll(c: AcmeClient, url: str, done: set[str], timeout: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, body = await c.post(url)
        if body["status"] in done:
            return body  # type: ignore[no-any-return]
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.2)


async def one_order(c: AcmeClient, dns: ChallTestSrv, name: str, load: Load) -> str:
    """An order up to its finalize; its URL."""
    order_url, order = await c.new_order([name])
    load.orders.append(order_url)
    _, authz = await c.post(order["authorizations"][0])
    chall = next(ch for ch in authz["challenges"] if ch["type"] == "dns-01")
    digest = hashlib.sha256(c.key_authorization(chall["token"]).encode()).digest()
    await dns.set_txt(f"_acme-challenge.{name}.",
                      base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
    resp, body = await c.post(chall["url"], {})
    assert resp.status == 200, body
    await poll(c, order["authorizations"][0], {"valid", "invalid"})
    csr, _ = make_csr([name])
    resp, _ = await c.post(order["finalize"], {"csr": b64(csr)})
    assert resp.status == 200
    load.finalize_done()
    return order_url


async def client_run(session: Any, dns: ChallTestSrv, index: int, load: Load,
                     orders: int) -> dict[str, x509.Certificate]:
    """One client's orders, each followed to its end; their certificates by order id."""
    c = PatientClient(session, f"{BASE}/acme/directory")
    await c.start()
    await c.register()
    urls = []
    for n in range(orders):
        urls.append(await one_order(c, dns, f"c{index}-o{n}.nodes.example", load))
    certs = {}
    for order_url in urls:
        order = await poll(c, order_url, {"valid", "invalid"})
        assert order["status"] == "valid", order  # the local CA refuses nothing here
        resp, pem = await c.post(order["certificate"])
        assert resp.status == 200
        certs[order_url.rsplit("/", 1)[1]] = x509.load_pem_x509_certificates(pem.encode())[0]
    return certs


