"""simplereenroll: authenticated by the certificate being renewed; same names; not revoked."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from tests.est.support import (
    ALICE,
    DER,
    Gateway,
    Key,
    Manufacturer,
    b64,
    certs_of,
    ec_key,
    make_csr,
    request,
    write_pair,
)


async def _enrolled(gw: Gateway, tmp: Path, key: Key, **names: object
                    ) -> tuple[x509.Certificate, tuple[Path, Path]]:
    csr = make_csr(key, **names)  # type: ignore[arg-type]
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(csr), ALICE)
    assert status == 200, body
    cert = certs_of(body)[0]
    return cert, write_pair(tmp / f"dev{cert.serial_number}", cert.public_bytes(DER), key)


async def test_reenroll_with_same_key_and_copied_names(gw: Gateway, tmp_path: Path) -> None:
    key = ec_key()
    old, pair = await _enrolled(gw, tmp_path, key, sans=("router01.example.net",))
    # Same key; the subject re-typed with other case and spacing, as some clients do.
    csr = make_csr(key, cn="ROUTER01.example.net", org=" Example ",
                   sans=("router01.example.net",))
    status, _, body = await request(gw, "POST", "/simplereenroll", b64(csr), cert=pair)
    assert status == 200, body
    new = certs_of(body)[0]
    assert new.serial_number != old.serial_number
    assert new.public_key() == old.public_key()


async def test_reenroll_refuses_other_names(gw: Gateway, tmp_path: Path) -> None:
    key = ec_key()
    _, pair = await _enrolled(gw, tmp_path, key)
    csr = make_csr(key, cn="router02.example.net")
    status, _, body = await request(gw, "POST", "/simplereenroll", b64(csr), cert=pair)
    assert status == 400 and b"subject differs" in body
    csr = make_csr(key, sans=("extra.example.net",))
    status, _, body = await request(gw, "POST", "/simplereenroll", b64(csr), cert=pair)
    assert status == 400 and b"names differ" in body


async def test_reenroll_needs_a_certificate_issued_here(gw: Gateway,
                                                       manufacturer: Manufacturer) -> None:
    status, _, body = await request(gw, "POST", "/certonly/simplereenroll",
                                    b64(make_csr(ec_key(), cn="SN-0001", org=None)),
                                    cert=manufacturer.device())
    assert status == 403 and b"trusts for re-enrollment (its issuing CA)" in body
    status, _, body = await request(gw, "POST", "/basic/simplereenroll",
                                    b64(make_csr(ec_key())), ALICE)
    assert status == 403 and b"certificate being renewed" in body


async def test_revoked_certificate_can_neither_renew_nor_enroll(gw: Gateway,
                                                                tmp_path: Path) -> None:
    key = ec_key()
    old, pair = await _enrolled(gw, tmp_path, key)
    await gw.core.issuance.revoke(old.public_bytes(DER), 4, None, _jwk_of(key))
    status, _, body = await request(gw, "POST", "/simplereenroll", b64(make_csr(key)), cert=pair)
    assert status == 403 and b"revoked" in body
    status, _, body = await request(gw, "POST", "/simpleenroll",
                                    b64(make_csr(ec_key(), cn="x.example.net")), cert=pair)
    assert status == 403 and b"revoked" in body


def _jwk_of(key: Key) -> dict[str, object]:
    import josepy

    return josepy.JWKEC(key=key.public_key()).to_json()  # type: ignore[no-any-return]
