"""strongSwan ``pki --scepca`` / ``pki --scep`` (the real client) against the gateway on loopback.

pki needs its curl fetcher (Debian ``libstrongswan-extra-plugins``) for HTTP and
enrolls RSA keys. It fetches the CA and RA certificates, enrolls with the
label's challenge password, renews with the certificate it got (RenewalReq
signed by the old key), and polls a request held for an approver until the
approval, with CertPoll.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography import x509

from tests.conftest import require_tool
from tests.est.test_clients import _output, run
from tests.scep.support import PASSWORD, ScepGateway


def _written(work: Path) -> list[Path]:
    work.mkdir(exist_ok=True)
    return sorted(work.glob("*.der"))


async def _ca_and_ra(gw: ScepGateway, label: str, work: Path) -> tuple[Path, Path]:
    """``pki --scepca``; the files it wrote, told apart by content (CA, RA)."""
    _written(work)
    await run("pki", "--scepca", "--url", f"{gw.base}/{label}/pkiclient.exe",
              "--caout", "ca.der", "--raout", "ra.der", cwd=work)
    written = _written(work)
    ra = [p for p in written if p.read_bytes() == gw.ra_cert]
    # The issuing CA; a two-tier CA's self-signed root comes too, and is not it.
    ca = [p for p in written if p not in ra and not _self_signed(p)] or \
        [p for p in written if p not in ra]
    assert len(ra) == 1 and len(ca) == 1, written
    return ca[0], ra[0]


def _self_signed(path: Path) -> bool:
    cert = x509.load_der_x509_certificate(path.read_bytes())
    return cert.issuer == cert.subject


def _scep_args(gw: ScepGateway, label: str, ca: Path, ra: Path, key: str, cn: str) -> list[str]:
    return ["pki", "--scep", "--url", f"{gw.base}/{label}/pkiclient.exe", "--in", key,
            "--dn", f"CN={cn}", "--san", cn, "--cacert-enc", str(ra), "--cacert-sig", str(ra),
            "--cacert", str(ca), "--interval", "1", "--maxpolltime", "30"]


async def _new_key(work: Path, name: str) -> str:
    (work / name).write_bytes(await _output("pki", "--gen", "--type", "rsa", "--size", "2048",
                                            cwd=work))
    return name


async def test_enroll_with_password_then_renew(gw: ScepGateway, tmp_path: Path) -> None:
    require_tool("pki")
    work = tmp_path / "pki"
    ca, ra = await _ca_and_ra(gw, "routers", work)
    cn = "sw1.routers.example.net"
    args = _scep_args(gw, "routers", ca, ra, await _new_key(work, "key.der"), cn)
    (work / "cert.der").write_bytes(await _output(*args, "--password", PASSWORD, cwd=work))
    cert = x509.load_der_x509_certificate((work / "cert.der").read_bytes())
    issuer = x509.load_der_x509_certificate(ca.read_bytes())
    cert.verify_directly_issued_by(issuer)
    assert cert.subject.rfc4514_string() == f"CN={cn}"

    renew = _scep_args(gw, "routers", ca, ra, await _new_key(work, "key2.der"), cn)
    renewed = x509.load_der_x509_certificate(await _output(
        *renew, "--cert", "cert.der", "--key", "key.der", cwd=work))
    assert renewed.serial_number != cert.serial_number
    assert renewed.public_key() != cert.public_key()
    assert renewed.subject == cert.subject


async def test_pending_request_is_polled_until_approved(gw: ScepGateway,
                                                        tmp_path: Path) -> None:
    require_tool("pki")
    work = tmp_path / "pki"
    ca, ra = await _ca_and_ra(gw, "held", work)
    args = _scep_args(gw, "held", ca, ra, await _new_key(work, "key.der"),
                      "held1.example.net")
    proc = await asyncio.create_subprocess_exec(
        *args, "--password", PASSWORD, cwd=work, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    held = []
    for _ in range(200):  # until pki's PKCSReq has been answered PENDING
        held = await gw.core.approvals.pending()
        if held or proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    assert len(held) == 1, "the request never waited for an approver"
    await gw.core.approvals.approve(held[0].id, "officer")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"polling every 1 seconds" in err
    cert = x509.load_der_x509_certificate(out)
    assert cert.subject.rfc4514_string() == "CN=held1.example.net"
