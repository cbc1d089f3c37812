"""Issuance benchmark of the local CA: ``python -m connectors.localca.bench``.

Measures issue() (CSR parse, leaf build, signature, ledger commit) with a file
key and, with ``--softhsm``, with the key in a throwaway SoftHSM2 token, for
each key type asked. Prints per key type: issuances per second with
``--concurrency`` requests in flight, and process CPU time (all threads) per
issuance. Also times one OCSP answer and one CRL with ``--revoked`` entries.
Bounded by ``--count``; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from connectors.base import CAProfile, Issued, IssueRequest
from connectors.localca.admin import init_ca
from connectors.localca.connector import LocalCAConnector
from connectors.localca.settings import DEFAULT_PKCS11_LIBRARY, LocalCASettings

PIN = "1234"


@dataclass(frozen=True)
class Result:
    """One benchmark row."""

    backend: str
    key_type: str
    per_second: float
    cpu_ms: float
    ocsp_ms: float
    crl_ms: float


def _request() -> IssueRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    der = csr.public_bytes(serialization.Encoding.DER)
    return IssueRequest("bench", der, CAProfile("bench"), dns_names=("bench.example.org",))


def _softhsm_env(root: Path) -> None:
    """A private SoftHSM2 directory with one token; must run before the library is loaded."""
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    cmd = ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin", "12345678"]
    subprocess.run([*cmd, "--pin", PIN], check=True, capture_output=True)
    os.environ["LOCALCA_BENCH_PIN"] = PIN


def _settings(root: Path, backend: str, key_type: str) -> LocalCASettings:
    options: dict[str, object] = {
        "type": "local",
        "key_type": key_type,
        "public_base_url": "http://127.0.0.1",
    }
    if backend == "pkcs11":
        options |= {
            "key_backend": "pkcs11",
            "pkcs11_library": DEFAULT_PKCS11_LIBRARY,
            "token_label": "bench",
            "key_label": f"bench-{key_type}",
            "pin_env": "LOCALCA_BENCH_PIN",
        }
    return LocalCASettings.from_options(options, root / backend / key_type, "bench")


async def _bench(
    root: Path, backend: str, key_type: str, count: int, concurrency: int, revoked: int
) -> Result:
    settings = _settings(root, backend, key_type)
    if backend == "pkcs11":
        await init_ca(settings, "bench", csr=False, force=True)
    ca = LocalCAConnector("bench", settings)
    await ca.start()
    try:
        req = _request()
        await ca.issue(req)  # warm-up: first-use costs are not the steady state
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                await ca.issue(replace(req, request_id=f"bench-{i}"))

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        ocsp_ms = await _ocsp_ms(ca, req)
        crl_ms = await _crl_ms(ca, req, revoked)
    finally:
        await ca.aclose()
    return Result(backend, key_type, count / wall, cpu / count * 1000, ocsp_ms, crl_ms)


async def _ocsp_ms(ca: LocalCAConnector, req: IssueRequest, rounds: int = 200) -> float:
    issued = await ca.issue(req)
    assert isinstance(issued, Issued)
    leaf = x509.load_der_x509_certificate(issued.leaf_der)
    issuer = x509.load_der_x509_certificate(issued.chain_der[0])
    der = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, issuer, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    start = time.perf_counter()
    for _ in range(rounds):
        await ca.ocsp_response(der)
    return (time.perf_counter() - start) / rounds * 1000


async def _crl_ms(ca: LocalCAConnector, req: IssueRequest, revoked: int) -> float:
    now = ca.clock()
    for i in range(revoked):
        issued = await ca.issue(replace(req, request_id=f"crl-{i}"))
        assert isinstance(issued, Issued)
        serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
        await ca.ledger.revoke(serial, 1, now, now + req.profile.validity)
    start = time.perf_counter()
    await ca.refresh_crl()
    return (time.perf_counter() - start) * 1000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m connectors.localca.bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--count", type=int, default=2000, help="issuances per key type (default 2000)")
    p.add_argument("--concurrency", type=int, default=32, help="issuances in flight (default 32)")
    p.add_argument(
        "--revoked", type=int, default=1000, help="CRL entries for the CRL timing (default 1000)"
    )
    p.add_argument("--key-types", default="ec-p256,rsa-2048", help="comma-separated CA key types")
    p.add_argument(
        "--softhsm", action="store_true", help="also run with the key in a SoftHSM2 token"
    )
    return p


async def _main(args: argparse.Namespace) -> list[Result]:
    root = Path(tempfile.mkdtemp(prefix="localca-bench-"))
    try:
        backends = ["file"]
        if args.softhsm:
            _softhsm_env(root)
            backends.append("pkcs11")
        results = []
        for backend in backends:
            for key_type in args.key_types.split(","):
                results.append(
                    await _bench(
                        root, backend, key_type, args.count, args.concurrency, args.revoked
                    )
                )
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a Markdown table."""
    args = _parser().parse_args(argv)
    try:
        import uvloop

        results = uvloop.run(_main(args))
    except ImportError:
        results = asyncio.run(_main(args))
    print(f"count={args.count} concurrency={args.concurrency} revoked={args.revoked}", end=" ")
    print(f"cpus={os.cpu_count()}")
    print("| backend | CA key | issuances/s | CPU ms/issuance | OCSP ms | CRL ms |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results:
        cells = [r.backend, r.key_type, f"{r.per_second:.0f}", f"{r.cpu_ms:.3f}"]
        cells += [f"{r.ocsp_ms:.3f}", f"{r.crl_ms:.1f}"]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
