"""The local CA with its key in a file: settings, issuance, revocation, CRL."""

from __future__ import annotations

import asyncio
import ipaddress
import stat
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from connectors.base import (
    AlreadyRevoked,
    CAConfigError,
    CAProfile,
    CAUnavailable,
    Connector,
    Issued,
    Rejected,
    RevocationReason,
)
from connectors.localca.connector import (
    LocalCAConnector,
    LocalCASettings,
    UnknownCertificate,
    make_backend,
)
from tests.pkix.localca_support import (
    BASE_URL,
    csr_der,
    issue_request,
    issued_once,
    ocsp_request_der,
    settings,
    started_ca,
)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"colour": "blue"}, "colour"),
        ({"pin": "1234"}, "pin"),
        ({"key_type": "ec-p521"}, "key_type"),
        ({"key_backend": "tpm"}, "key_backend"),
        ({"public_base_url": "ftp://x"}, "public_base_url"),
        ({"crl_validity_hours": 0}, "crl_validity_hours"),
        ({"ca_validity_days": "ten"}, "ca_validity_days"),
        ({"key_backend": "pkcs11", "pin_env": "X"}, "token_label"),
        ({"token_label": "t"}, "token_label"),
        ({"key_backend": "pkcs11", "token_label": "t"}, "pin_file"),
        ({"key_backend": "pkcs11", "token_label": "t", "pin_env": "NO_SUCH_VARIABLE_X"}, "pin_env"),
    ],
)
def test_bad_options_name_the_key(tmp_path: Path, options: dict[str, object], key: str) -> None:
    with pytest.raises(CAConfigError, match=rf"\[cas\.test\]:? {key}:"):
        LocalCASettings.from_options({"type": "local", **options}, tmp_path, name="test")


def test_defaults(tmp_path: Path) -> None:
    s = LocalCASettings.from_options({"type": "local"}, tmp_path, name="edge")
    assert s.dir == tmp_path / "ca" / "edge"
    assert (s.key_backend, s.key_type, s.pkcs11) == ("file", "ec-p256", None)
    assert s.crl_url("edge") == "" and s.ocsp_url("edge") == ""


def test_pin_from_file_is_kept_out_of_repr(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("s3cret\n")
    opts = {"type": "local", "key_backend": "pkcs11", "token_label": "t", "pin_file": str(pin)}
    s = LocalCASettings.from_options(opts, tmp_path, name="test")
    assert s.pkcs11 is not None and s.pkcs11.pin == "s3cret"
    assert "s3cret" not in repr(s)


async def test_first_start_creates_a_two_tier_hierarchy(tmp_path: Path) -> None:
    ca = await started_ca(tmp_path)
    try:
        assert isinstance(ca, Connector)
        directory = tmp_path / "ca" / "test"
        for key_file in ("ca.key.pem", "root.key.pem"):  # the root key is kept apart
            assert stat.S_IMODE((directory / key_file).stat().st_mode) == 0o600
        assert (directory / "ca.key.pem").read_bytes() != (directory / "root.key.pem").read_bytes()
        issuing_der, root_der = certs = await ca.ca_certs()
        issuing, root = (x509.load_der_x509_certificate(d) for d in certs)
        root_bc = root.extensions.get_extension_for_class(x509.BasicConstraints).value
        issuing_bc = issuing.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert root_bc.ca and root_bc.path_length == 1 and issuing_bc.path_length == 0
        issuing.verify_directly_issued_by(root)
        root.verify_directly_issued_by(root)
        assert issuing.subject != root.subject and isinstance(issuing.public_key(),
                                                               ec.EllipticCurvePublicKey)
        assert x509.load_pem_x509_certificate((directory / "root.pem").read_bytes()) == root
        issued = await ca.issue(issue_request())
        assert isinstance(issued, Issued) and issued.chain_der == (issuing_der,)  # no root
        await ca.check()
    finally:
        await ca.aclose()
    again = await started_ca(tmp_path)
    try:
        assert await again.ca_certs() == (issuing_der, root_der)
    finally:
        await again.aclose()


async def test_a_single_tier_directory_keeps_working(tmp_path: Path) -> None:
    single = await started_ca(tmp_path, hierarchy="single")
    (ca_der,) = await single.ca_certs()
    await single.aclose()
    assert not (tmp_path / "ca" / "test" / "root.pem").exists()
    ca = await started_ca(tmp_path)  # the default is two-tier; an existing CA stays as it is
    try:
        assert await ca.ca_certs() == (ca_der,)
        issued = await ca.issue(issue_request())
        assert isinstance(issued, Issued) and issued.chain_der == (ca_der,)
        x509.load_der_x509_certificate(issued.leaf_der).verify_directly_issued_by(
            x509.load_der_x509_certificate(ca_der))
    finally:
        await ca.aclose()


async def test_issued_leaf_carries_the_requested_content(tmp_path: Path) -> None:
    ca = await started_ca(tmp_path)
    profile = CAProfile(
        "p", validity=timedelta(days=7), ekus=(ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,)
    )
    req = issue_request(
        dns=("a.example.org", "b.example.org"), ip_addresses=("192.0.2.7",), profile=profile
    )
    try:
        result = await ca.issue(req)
    finally:
        await ca.aclose()
    assert isinstance(result, Issued)
    leaf = x509.load_der_x509_certificate(result.leaf_der)
    issuer = x509.load_der_x509_certificate(result.chain_der[0])
    leaf.verify_directly_issued_by(issuer)
    ext = leaf.extensions
    san = ext.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["a.example.org", "b.example.org"]
    assert san.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.0.2.7")]
    assert san.critical  # the CSR's subject is empty
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert (
        ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    )
    assert ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert 0 < leaf.serial_number < 2**159
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == timedelta(days=7)
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name == [x509.UniformResourceIdentifier(f"{BASE_URL}/pkix/test/crl")]
    (aia,) = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert aia.access_method == AuthorityInformationAccessOID.OCSP
    assert aia.access_location.value == f"{BASE_URL}/pkix/test/ocsp"


async def test_subject_cn_and_rsa_key_usage(tmp_path: Path) -> None:
    ca = await started_ca(tmp_path, public_base_url="")
    try:
        result = await ca.issue(
            issue_request(csr=csr_der("rsa", cn="csr-name"), subject_cn="forced.example")
        )
        plain = await ca.issue(issue_request(csr=csr_der("ec", cn="csr-name")))
    finally:
        await ca.aclose()
    assert isinstance(result, Issued) and isinstance(plain, Issued)
    leaf = x509.load_der_x509_certificate(result.leaf_der)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "forced.example"
    assert leaf.extensions.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    # Without a public URL there is nowhere to point relying parties at.
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    kept = x509.load_der_x509_certificate(plain.leaf_der)
    assert kept.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "csr-name"
    assert not kept.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


@pytest.mark.parametrize(
    ("key_type", "key_class"),
    [("ec-p384", ec.EllipticCurvePublicKey), ("rsa-2048", rsa.RSAPublicKey)],
)
async def test_other_ca_key_types(tmp_path: Path, key_type: str, key_class: type) -> None:
    ca = await started_ca(tmp_path, key_type=key_type)
    try:
        result = await ca.issue(issue_request())
    finally:
        await ca.aclose()
    assert isinstance(result, Issued)
    issuer = x509.load_der_x509_certificate(result.chain_der[0])
    assert isinstance(issuer.public_key(), key_class)
    x509.load_der_x509_certificate(result.leaf_der).verify_directly_issued_by(issuer)


async def test_unparseable_csr_is_rejected(tmp_path: Path) -> None:
    ca = await started_ca(tmp_path)
    try:
        result = await ca.issue(issue_request(csr=b"\x30\x03\x02\x01\x00"))
    finally:
        await ca.aclose()
    assert isinstance(result, Rejected)


async def test_key_type_change_is_refused_at_start(tmp_path: Path) -> None:
    await (await started_ca(tmp_path)).aclose()
    ca = LocalCAConnector("test", settings(tmp_path, key_type="rsa-2048"))
    with pytest.raises(CAConfigError, match="key_type"):
        await ca.start()


async def test_certificate_of_another_key_is_refused_at_start(tmp_path: Path) -> None:
    await (await started_ca(tmp_path)).aclose()
    other = await started_ca(tmp_path / "other")
    await other.aclose()
    (tmp_path / "ca" / "test" / "ca.pem").write_bytes(
        (tmp_path / "other" / "ca" / "test" / "ca.pem").read_bytes()
    )
    ca = LocalCAConnector("test", settings(tmp_path))
    with pytest.raises(CAConfigError, match="does not match the key"):
        await ca.start()


async def test_revocation_is_listed_on_a_new_crl_and_persists(tmp_path: Path) -> None:
    ca = await started_ca(tmp_path)
    try:
        first = x509.load_der_x509_crl(await ca.crl_der())
        issued = await ca.issue(issue_request())
        assert isinstance(issued, Issued)
        await ca.revoke(issued.leaf_der, RevocationReason.KEY_COMPROMISE)
        with pytest.raises(AlreadyRevoked):
            await ca.revoke(issued.leaf_der, RevocationReason.SUPERSEDED)
        crl = x509.load_der_x509_crl(await ca.crl_der())
    finally:
        await ca.aclose()
    serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
    issuer = x509.load_der_x509_certificate(issued.chain_der[0])
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert (tmp_path / "ca" / "test" / "crl.der").read_bytes() == crl.public_bytes(Encoding.DER)
    reopened = await started_ca(tmp_path)
    try:
        with pytest.raises(AlreadyRevoked):
            await reopened.revoke(issued.leaf_der, RevocationReason.UNSPECIFIED)
        again = x509.load_der_x509_crl(await reopened.crl_der())
    finally:
        await reopened.aclose()
    assert again.get_revoked_certificate_by_serial_number(serial) is not None


async def test_certificates_of_other_cas_cannot_be_revoked(tmp_path: Path) -> None:
    mine = await started_ca(tmp_path / "a")
    other = await started_ca(tmp_path / "b")  # same name and subject, different key
    try:
        foreign = await other.issue(issue_request())
        assert isinstance(foreign, Issued)
        with pytest.raises(UnknownCertificate, match="not signed by"):
            await mine.revoke(foreign.leaf_der, RevocationReason.UNSPECIFIED)
        with pytest.raises(UnknownCertificate):
            await mine.revoke(b"garbage", RevocationReason.UNSPECIFIED)
    finally:
        await mine.aclose()
        await other.aclose()


async def test_expired_crl_is_renewed_on_demand(tmp_path: Path) -> None:
    now = [datetime.now(UTC)]
    ca = LocalCAConnector("test", settings(tmp_path), clock=lambda: now[0])
    await ca.start()
    try:
        first = await ca.crl_der()
        assert await ca.crl_der() == first
        now[0] += timedelta(hours=25)
        renewed = x509.load_der_x509_crl(await ca.crl_der())
    finally:
        await ca.aclose()
    assert renewed.next_update_utc is not None and renewed.next_update_utc > now[0]


async def test_concurrent_issuance_records_every_serial(tmp_path: Path) -> None:
    ca = await started_ca(tmp_path)
    try:
        results = await asyncio.gather(*(ca.issue(issue_request()) for _ in range(50)))
        counts = await ca.ledger.counts()
    finally:
        await ca.aclose()
    serials = {
        x509.load_der_x509_certificate(r.leaf_der).serial_number
        for r in results
        if isinstance(r, Issued)
    }
    assert len(serials) == 50
    assert counts == (50, 0)


class _FailingBackend:
    """Wraps a key backend; while ``failing``, signing raises CAUnavailable like a dead HSM."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.failing = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def run(self, fn: object) -> object:
        if self.failing:
            raise CAUnavailable("the HSM failed (test); retry later")
        return await self.inner.run(fn)  # type: ignore[attr-defined]


async def test_revocation_survives_a_signing_failure(tmp_path: Path) -> None:
    s = settings(tmp_path)
    backend = _FailingBackend(make_backend(s))
    ca = LocalCAConnector("test", s, backend=backend)  # type: ignore[arg-type]
    await ca.start()
    try:
        issued = await ca.issue(issue_request())
        assert isinstance(issued, Issued)
        backend.failing = True
        await ca.revoke(issued.leaf_der, RevocationReason.KEY_COMPROMISE)  # recorded, CRL deferred
        with pytest.raises(CAUnavailable):
            await ca.crl_der()
        leaf = x509.load_der_x509_certificate(issued.leaf_der)
        answer = ocsp.load_der_ocsp_response(
            await ca.ocsp_response(
                ocsp_request_der(leaf, x509.load_der_x509_certificate(issued.chain_der[0]))
            )
        )
        assert answer.response_status == ocsp.OCSPResponseStatus.TRY_LATER
        backend.failing = False
        crl = x509.load_der_x509_crl(await ca.crl_der())
    finally:
        await ca.aclose()
    serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None


async def test_crl_is_reissued_on_schedule(tmp_path: Path) -> None:
    periods: list[float] = []
    tick = asyncio.Event()
    release = asyncio.Queue[None]()

    async def sleep(seconds: float) -> None:
        periods.append(seconds)
        tick.set()
        await release.get()

    ca = LocalCAConnector("test", settings(tmp_path, crl_refresh_seconds=600), sleep=sleep)
    await ca.start()
    try:
        first = x509.load_der_x509_crl(await ca.crl_der())
        await tick.wait()
        tick.clear()
        release.put_nowait(None)  # the first period is over
        await tick.wait()  # the loop has refreshed and sleeps again
        second = x509.load_der_x509_crl(await ca.crl_der())
    finally:
        await ca.aclose()
    assert periods[:2] == [600.0, 600.0]
    number = second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1


# -- several worker processes on one CA directory --------------------------------------


def _crl_number(der: bytes) -> int:
    crl = x509.load_der_x509_crl(der)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


async def test_a_revocation_through_one_worker_is_on_every_workers_crl(tmp_path: Path) -> None:
    a = await started_ca(tmp_path)  # two connectors on one directory, as two workers run them
    b = await started_ca(tmp_path)
    try:
        before = await a.crl_der()
        issued = await a.issue(issue_request())
        assert isinstance(issued, Issued)
        await b.revoke(issued.leaf_der, RevocationReason.KEY_COMPROMISE)
        served = await a.crl_der()
        state = await a.ledger.crl_state()
        again = await a.crl_der()
        from_b = await b.crl_der()
    finally:
        await a.aclose()
        await b.aclose()
    serial = x509.load_der_x509_certificate(issued.leaf_der).serial_number
    crl = x509.load_der_x509_crl(served)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert x509.load_der_x509_crl(before).get_revoked_certificate_by_serial_number(serial) is None
    # A took the CRL B published rather than signing its own: the newest number there is.
    assert served == from_b == again
    assert _crl_number(served) == state.number > _crl_number(before)
    assert (tmp_path / "ca" / "test" / "crl.der").read_bytes() == served


async def test_a_revocation_without_a_crl_is_signed_by_the_next_crl_request(
    tmp_path: Path,
) -> None:
    a = await started_ca(tmp_path)
    b = await started_ca(tmp_path)
    try:
        issued = await a.issue(issue_request())
        assert isinstance(issued, Issued)
        leaf = x509.load_der_x509_certificate(issued.leaf_der)
        held = _crl_number(await a.crl_der())
        # B records the revocation, then stops before signing a CRL (a crash, a dead HSM).
        await b.ledger.revoke(leaf.serial_number, 1, datetime.now(UTC), leaf.not_valid_after_utc)
        served = await a.crl_der()
    finally:
        await a.aclose()
        await b.aclose()
    crl = x509.load_der_x509_crl(served)
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None
    assert _crl_number(served) > held


async def test_an_older_crl_on_disk_never_replaces_the_one_held(tmp_path: Path) -> None:
    s = settings(tmp_path)
    crl_file = s.dir / "crl.der"
    a = await started_ca(tmp_path)
    backend = _FailingBackend(make_backend(s))
    b = LocalCAConnector("test", s, backend=backend)  # type: ignore[arg-type]
    await b.start()
    try:
        older = await b.crl_der()  # number n, on disk
        held = await a.refresh_crl()  # number n + 1
        assert _crl_number(held) == _crl_number(older) + 1
        crl_file.write_bytes(older)  # a slow writer puts CRL n back
        assert await a.crl_der() == held
        # B takes number n + 2 but cannot sign it: the file still holds n.
        backend.failing = True
        with pytest.raises(CAUnavailable):
            await b.refresh_crl()
        newest = await a.crl_der()
    finally:
        await a.aclose()
        await b.aclose()
    # A did not step back to n; it signed a CRL past the unpublished n + 2 and published it.
    assert _crl_number(newest) == _crl_number(older) + 3
    assert crl_file.read_bytes() == newest


class _SignsAfter:
    """Wraps a key backend; runs ``before`` (once) ahead of the next signature."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.before: Callable[[], Awaitable[object]] | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def run(self, fn: object) -> object:
        before, self.before = self.before, None
        if before is not None:
            await before()
        return await self.inner.run(fn)  # type: ignore[attr-defined]


async def test_a_crl_signed_late_never_replaces_a_newer_one_on_disk(tmp_path: Path) -> None:
    s = settings(tmp_path)
    backend = _SignsAfter(make_backend(s))
    a = LocalCAConnector("test", s, backend=backend)  # type: ignore[arg-type]
    await a.start()
    b = await started_ca(tmp_path)
    try:
        # A takes its CRL number, then B takes the next one and publishes before A signs.
        newer: list[bytes] = []

        async def b_publishes() -> None:
            newer.append(await b.refresh_crl())

        backend.before = b_publishes
        served = await a.refresh_crl()
        on_disk = (s.dir / "crl.der").read_bytes()
        state = await a.ledger.crl_state()
    finally:
        await a.aclose()
        await b.aclose()
    assert on_disk == newer[0] == served
    assert _crl_number(served) == state.number
    assert not list(s.dir.glob("*.tmp"))


async def test_a_request_run_again_gets_the_certificate_issued_the_first_time(
        tmp_path: Path) -> None:
    """A gateway that died between the signature and storing it asks again: no second serial."""
    ca = await started_ca(tmp_path)
    try:
        request = issue_request()
        first, again = await ca.issue(request), await ca.issue(request)
        other_key = await ca.issue(issue_request())  # same request id, another key: signed anew
        counts = await ca.ledger.counts()
    finally:
        await ca.aclose()
    assert isinstance(first, Issued) and isinstance(again, Issued)
    assert isinstance(other_key, Issued)
    assert again.leaf_der == first.leaf_der and other_key.leaf_der != first.leaf_der
    assert counts == (2, 0)


async def test_a_first_submission_is_signed_without_looking_in_the_ledger(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The core says no earlier submission exists: no ledger read before signing."""
    ca = await started_ca(tmp_path)
    looked: list[str] = []
    issued_for = ca.ledger.issued_for

    async def counting(request_id: str) -> bytes | None:
        looked.append(request_id)
        return await issued_for(request_id)

    monkeypatch.setattr(ca.ledger, "issued_for", counting)
    try:
        fresh = await ca.issue(replace(issue_request(), first_submission=True))
        again = await ca.issue(issue_request())
    finally:
        await ca.aclose()
    assert isinstance(fresh, Issued) and isinstance(again, Issued)
    assert looked == ["req-1"]  # only the request that may have been submitted before


async def test_a_csr_parsed_by_the_core_is_used_as_handed_over(tmp_path: Path) -> None:
    """The CSR object and key that travel with the request are the ones the leaf gets."""
    der = csr_der()
    csr = x509.load_der_x509_csr(der)
    request = replace(issue_request(csr=der), csr=csr, csr_key=csr.public_key())
    assert request.parsed_csr() == (csr, request.csr_key)
    result = await issued_once(tmp_path, request)
    assert isinstance(result, Issued)
    assert x509.load_der_x509_certificate(result.leaf_der).public_key() == csr.public_key()
