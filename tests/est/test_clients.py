"""Real EST clients on loopback against the gateway started here over HTTPS.

* curl + openssl, as in vendor runbooks: cacerts, a client-certificate
  simpleenroll of a router CSR (manufacturer certificate), ``openssl pkcs7
  -print_certs`` on the decoded answer, then simplereenroll with the issued
  certificate.
* strongSwan ``pki --estca`` / ``pki --est`` with HTTP Basic, then re-enroll
  with ``--cert``/``--key`` (pki always talks to the bare /.well-known/est/ path,
  i.e. the default label).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.conftest import require_tool
from tests.est.support import PASSWORD, Gateway, Manufacturer

TIMEOUT = 60.0


async def run(*args: str | Path, cwd: Path) -> str:
    """Run a program; fail the test with its output when it fails."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, args), cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{args[0]} failed:\n{text}"
    return text


def _eku(cert: x509.Certificate) -> x509.ExtendedKeyUsage:
    return cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


async def _curl_post(gw: Gateway, work: Path, path: str, csr_b64: Path, cert: Path, key: Path,
                     out: Path) -> None:
    await run("curl", "--silent", "--show-error", "--fail", "--cacert", gw.server_cert,
              "--cert", cert, "--key", key, "-H", "Content-Type: application/pkcs10",
              "-H", "Content-Transfer-Encoding: base64", "--data-binary", f"@{csr_b64}",
              f"{gw.url}{path}", "-o", out, cwd=work)


async def _print_certs(work: Path, p7_b64: Path, pem: Path) -> x509.Certificate:
    der = p7_b64.with_suffix(".der")
    await run("openssl", "base64", "-d", "-in", p7_b64, "-out", der, cwd=work)
    await run("openssl", "pkcs7", "-inform", "DER", "-in", der, "-print_certs", "-out", pem,
              cwd=work)
    return _first_certificate(pem)


def _first_certificate(pem: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem.read_bytes())[0]


async def test_curl_and_openssl(gw: Gateway, manufacturer: Manufacturer, tmp_path: Path) -> None:
    require_tool("curl", "openssl")
    work = tmp_path / "curl"
    work.mkdir()
    await run("curl", "--silent", "--fail", "--cacert", gw.server_cert, "-o", "ca.p7",
              f"{gw.url}/certonly/cacerts", cwd=work)
    ca = await _print_certs(work, work / "ca.p7", work / "ca.pem")
    await run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", "device.key", "-out", "device.csr",
              "-subj", "/CN=router01.example.net/O=Example", cwd=work)
    await run("openssl", "req", "-in", "device.csr", "-outform", "DER", "-out", "device.der",
              cwd=work)
    await run("openssl", "base64", "-in", "device.der", "-out", "device.csr.b64", cwd=work)
    idevid, idevid_key = manufacturer.device()
    await _curl_post(gw, work, "/certonly/simpleenroll", work / "device.csr.b64", idevid,
                     idevid_key, work / "out.p7")
    leaf = await _print_certs(work, work / "out.p7", work / "device.pem")
    # cacerts holds the issuing CA and the root, in no set order (a PKCS#7 SET)
    cas = x509.load_pem_x509_certificates((work / "ca.pem").read_bytes())
    assert ca in cas and leaf.issuer in {c.subject for c in cas}
    assert ExtendedKeyUsageOID.CLIENT_AUTH in _eku(leaf)
    await run("openssl", "verify", "-CAfile", "ca.pem", "device.pem", cwd=work)
    # Renew: authenticate with the issued certificate, same key, same CSR.
    await _curl_post(gw, work, "/certonly/simplereenroll", work / "device.csr.b64",
                     work / "device.pem", work / "device.key", work / "renewed.p7")
    renewed = await _print_certs(work, work / "renewed.p7", work / "renewed.pem")
    assert renewed.subject == leaf.subject and renewed.serial_number != leaf.serial_number


async def test_strongswan_pki(gw: Gateway, tmp_path: Path) -> None:
    require_tool("pki")
    work = tmp_path / "pki"
    work.mkdir()
    base = gw.url.removesuffix("/.well-known/est")
    await run("pki", "--estca", "--url", base, "--cacert", gw.server_cert, "--caout", "ca.pem",
              "--outform", "pem", "--force", cwd=work)
    (work / "key.der").write_bytes(await _output("pki", "--gen", "--type", "ecdsa", "--size",
                                                 "256", cwd=work))
    req = await _output("pki", "--req", "--type", "ecdsa", "--in", "key.der", "--dn",
                        "CN=router02.example.net, O=Example", "--san", "router02.example.net",
                        cwd=work)
    (work / "req.der").write_bytes(req)
    common = ("--url", base, "--in", "req.der", "--cacert", gw.server_cert, "--cacert", "ca.pem",
              "--outform", "pem")
    cert = await _output("pki", "--est", *common, "--userpass", f"alice:{PASSWORD}", cwd=work)
    (work / "cert.pem").write_bytes(cert)
    leaf = x509.load_pem_x509_certificate(cert)
    assert ExtendedKeyUsageOID.CLIENT_AUTH in _eku(leaf)
    renewed = x509.load_pem_x509_certificate(await _output(
        "pki", "--est", *common, "--cert", "cert.pem", "--key", "key.der", cwd=work))
    assert renewed.subject == leaf.subject and renewed.serial_number != leaf.serial_number
    assert renewed.public_key() == leaf.public_key()


async def _output(*args: str | Path, cwd: Path) -> bytes:
    """A program's standard output (its diagnostics on stderr are shown on failure)."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, args), cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, f"{args[0]} failed:\n{err.decode(errors='replace')}"
    return out
