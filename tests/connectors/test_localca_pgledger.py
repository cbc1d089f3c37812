"""The local CA's ledger in PostgreSQL: two hosts signing with one key share it and its CRL."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from connectors.base import CAConfigError, Issued, RevocationReason
from connectors.localca.connector import LocalCAConnector
from connectors.localca.pgledger import PgCALedger
from tests.pgserver import PostgresServer
from tests.pkix.localca_support import issue_request, settings


@pytest.fixture
async def hosts(tmp_path: Path, postgres_server: PostgresServer
                ) -> AsyncIterator[tuple[LocalCAConnector, LocalCAConnector]]:
    """The same CA (key and certificate copied) on two hosts' directories, one ledger."""
    url = await postgres_server.new_database()
    a = LocalCAConnector("test", settings(tmp_path / "a", ledger_url=url))
    await a.start()
    key_dir = tmp_path / "a" / "ca" / "test"
    (tmp_path / "b" / "ca" / "test").mkdir(parents=True)
    for name in ("ca.key.pem", "ca.pem"):
        shutil.copy(key_dir / name, tmp_path / "b" / "ca" / "test" / name)
    b = LocalCAConnector("test", settings(tmp_path / "b", ledger_url=url))
    await b.start()
    assert isinstance(a.ledger, PgCALedger) and isinstance(b.ledger, PgCALedger)
    yield a, b
    await a.aclose()
    await b.aclose()


def _crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


@pytest.mark.external("postgres")
async def test_a_serial_issued_on_one_host_is_known_on_the_other(
        hosts: tuple[LocalCAConnector, LocalCAConnector]) -> None:
    a, b = hosts
    issued = await a.issue(issue_request())
    assert isinstance(issued, Issued)
    serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
    assert (await b.ledger.status(serial)).state == "good"
    assert (await b.ledger.status(serial + 1)).state == "unknown"


@pytest.mark.external("postgres")
async def test_a_request_run_again_on_the_other_host_gets_the_same_certificate(
        hosts: tuple[LocalCAConnector, LocalCAConnector]) -> None:
    a, b = hosts
    request = issue_request()
    first, again = await a.issue(request), await b.issue(request)
    assert isinstance(first, Issued) and isinstance(again, Issued)
    assert again.leaf_der == first.leaf_der
    assert await a.ledger.counts() == (1, 0)


@pytest.mark.external("postgres")
async def test_a_revocation_on_one_host_is_on_both_hosts_crls_and_ocsp(
        hosts: tuple[LocalCAConnector, LocalCAConnector]) -> None:
    a, b = hosts
    before = _crl_number(await a.crl_der())
    issued = await a.issue(issue_request())
    assert isinstance(issued, Issued)
    await b.revoke(issued.leaf_der, RevocationReason.KEY_COMPROMISE)
    serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
    assert (await a.ledger.status(serial)).state == "revoked"
    crls = [await host.crl_der() for host in (a, b)]
    assert crls[0] == crls[1]  # A took the CRL B signed from the ledger
    assert x509.load_der_x509_crl(crls[0]).get_revoked_certificate_by_serial_number(serial)
    assert _crl_number(crls[0]) > before
    assert await b.ledger.counts() == (1, 1)


@pytest.mark.external("postgres")
async def test_a_forged_shared_crl_is_not_served(
        hosts: tuple[LocalCAConnector, LocalCAConnector]) -> None:
    a, b = hosts
    held = await a.crl_der()
    await b.refresh_crl()  # a higher CRL number, shared
    await b.ledger.share_crl(10**6, b"not a CRL")  # and garbage above it
    served = await a.crl_der()
    assert served != held and _crl_number(served) > _crl_number(held)
    x509.load_der_x509_crl(served)  # a CRL a signed itself, not the garbage


@pytest.mark.parametrize("url,fragment", [
    ("mysql://db/ca", "postgresql://"),
    ("postgresql://ca:secret@db/ca", "never inline"),
])
def test_ledger_url_is_checked(tmp_path: Path, url: str, fragment: str) -> None:
    with pytest.raises(CAConfigError, match=fragment):
        settings(tmp_path, ledger_url=url)
