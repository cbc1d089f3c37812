"""EST simpleenroll load (RFC 7030 §4.2), sent the way routers send it.

Each enrollment sends a fresh key's PKCS#10 request (made before the measured
window, ``EstFlow.prepare``), POSTs it base64
encoded as ``application/pkcs10``, re-POSTs the same request after
``Retry-After`` while the server answers 202, and parses the PKCS#7
certs-only answer (base64, or DER from servers that send binary).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from dataclasses import dataclass

import aiohttp
from cryptography.hazmat.primitives.serialization import pkcs7

from loadtest.acme import AcmeError
from loadtest.prepare import CsrStock
from loadtest.stats import Recorder

WELL_KNOWN = "/.well-known/est"


def enroll_url(base: str, label: str = "") -> str:
    """The simpleenroll URL for ``base`` (a host URL or an ``.../.well-known/est[/label]`` URL)."""
    base = base.rstrip("/")
    if WELL_KNOWN not in base:
        base += WELL_KNOWN
    if label:
        base += f"/{label}"
    return f"{base}/simpleenroll"


def decode_certs_only(body: bytes) -> int:
    """How many certificates a PKCS#7 certs-only answer holds (base64, any whitespace, or DER)."""
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        der = body
    try:
        certs = pkcs7.load_der_pkcs7_certificates(der)
    except ValueError as exc:
        raise AcmeError("bad-pkcs7", str(exc)) from exc
    if not certs:
        raise AcmeError("bad-pkcs7", "no certificate in the answer")
    return len(certs)


@dataclass(frozen=True)
class EstOptions:
    """What each enrollment sends and how long it waits for a pending one."""

    url: str
    key_type: str = "ec"
    # Device names are unique per enrollment, as each router asks for its own certificate.
    name_prefix: str = "device"
    max_wait_seconds: float = 60.0


class EstFlow:
    """Runs single enrollments against one EST label."""

    def __init__(
        self, http: aiohttp.ClientSession, options: EstOptions, recorder: Recorder
    ) -> None:
        self.http = http
        self.options = options
        self.recorder = recorder
        self.csrs = CsrStock(options.key_type, self.names_for, recorder.counters)

    def names_for(self, index: int) -> list[str]:
        """The one device name of enrollment ``index`` (also its CN)."""
        return [f"{self.options.name_prefix}-{index}.loadtest.test"]

    def prepare(self, count: int) -> None:
        """Make the keys and CSRs of enrollments ``0..count-1`` now, before the measured window."""
        self.csrs.fill(count)

    def _csr_body(self, index: int) -> bytes:
        # 76-column lines, as OpenSSL-based clients send
        return base64.encodebytes(self.csrs.take(index))

    async def run(self, index: int) -> int:
        """Enroll once; returns the number of certificates received."""
        body = self._csr_body(index)
        headers = {"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64"}
        waited = 0.0
        while True:
            self.recorder.counters["requests"] += 1
            with self.recorder.timed("simpleenroll"):
                async with self.http.post(self.options.url, data=body, headers=headers) as resp:
                    answer, status = await resp.read(), resp.status
                    retry_after = resp.headers.get("Retry-After", "")
            if status == 200:
                return decode_certs_only(answer)
            if status != 202:
                raise AcmeError(f"http-{status}", answer[:200].decode(errors="replace"))
            self.recorder.counters["pending_202"] += 1
            delay = float(retry_after) if retry_after.strip().isdigit() else 1.0
            waited += delay
            if waited > self.options.max_wait_seconds:
                raise AcmeError("pending-too-long", f"still 202 after {waited:.0f} s")
            await asyncio.sleep(delay)
