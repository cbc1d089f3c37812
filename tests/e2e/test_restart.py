"""A gateway restart between order creation and finalize loses nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import aiohttp
from cryptography import x509

from tests.acmeclient import AcmeClient, b64, make_csr
from tests.e2e.harness import ChallTestSrv, GatewayProcess


async def wait_status(c: AcmeClient, url: str, wanted: str, timeout: float = 30.0) -> dict:  # type: ignore[type-arg]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _, body = await c.post(url)
        if body["status"] == wanted:
            return body  # type: ignore[no-any-return]
        assert body["status"] in ("pending", "processing", "ready"), body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.2)


async def test_restart_between_order_and_finalize(gateway: GatewayProcess,
                                                  dns: ChallTestSrv) -> None:
    names = ["restart.example.com"]
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=gateway.ssl_context())) as session:
        c = AcmeClient(session, gateway.directory)
        await c.start()
        await c.register()
        order_url, order = await c.new_order(names)
        _, authz = await c.post(order["authorizations"][0])
        chall = next(ch for ch in authz["challenges"] if ch["type"] == "dns-01")
        digest = hashlib.sha256(c.key_authorization(chall["token"]).encode()).digest()
        await dns.set_txt("_acme-challenge.restart.example.com.",
                          base64.urlsafe_b64encode(digest).rstrip(b"=").decode())

        await gateway.restart()  # between order creation and validation
        c.nonce = None
        await c.start()
        await c.post(chall["url"], {})
        await wait_status(c, order["authorizations"][0], "valid")
        assert (await c.post(order_url))[1]["status"] == "ready"

        await gateway.restart()  # between validation and finalize
        await c.start()
        csr, _ = make_csr(names)
        _, done = await c.post(order["finalize"], {"csr": b64(csr)})
        done = await wait_status(c, order_url, "valid") if done["status"] != "valid" else done
        resp, pem = await c.post(done["certificate"])
        assert resp.status == 200
        leaf = x509.load_pem_x509_certificates(pem.encode())[0]
        assert leaf.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == names

        await gateway.restart()  # after issuance: the account, order and certificate remain
        await c.start()
        _, acct = await c.post(c.kid)
        _, listing = await c.post(acct["orders"])
        assert listing["orders"] == [order_url]
        resp, again = await c.post(done["certificate"])
        assert again == pem
