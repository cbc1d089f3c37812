"""What a client certificate's holder may request: templates filled from its certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from gateway.est.grants import grant, render
from gateway.est.settings import EstSettings, EstUser, LabelSettings
from tests.est.support import DER, ec_key


def _cert(subject: list[tuple[x509.ObjectIdentifier, str]], dns: tuple[str, ...] = ()
          ) -> x509.Certificate:
    key = ec_key()
    name = x509.Name([x509.NameAttribute(oid, value, _type=_ASN1Type.UTF8String)
                      for oid, value in subject])
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(now).not_valid_after(now + timedelta(days=1)))
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns]), False)
    return builder.sign(key, hashes.SHA256())


CN, SERIAL = NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER


@pytest.mark.parametrize("template,subject,dns,expected", [
    ("{serialNumber}.dev.example.net", [(SERIAL, "SN-7")], (), ("sn-7.dev.example.net",)),
    ("{cn}", [(CN, "Router01.Example.NET")], (), ("router01.example.net",)),
    ("{dns}", [], ("a.example.net", "b.example.net"), ("a.example.net", "b.example.net")),
    ("x.{cn}.{serialNumber}", [(CN, "r1"), (SERIAL, "s2")], (), ("x.r1.s2",)),
    # Unusable values yield nothing: absent, ambiguous, globs, spaces, empty labels.
    ("{serialNumber}.dev.example.net", [(CN, "r1")], (), ()),
    ("{cn}", [(CN, "a.example.net"), (CN, "b.example.net")], (), ()),
    ("{cn}", [(CN, "*")], (), ()),
    ("{cn}.example.net", [(CN, "a*b")], (), ()),
    ("{cn}", [(CN, "[a-z]")], (), ()),
    ("{cn}", [(CN, "two words")], (), ()),
    ("{cn}", [(CN, "a..b")], (), ()),
    ("{dns}", [], ("*.example.net",), ()),
    ("plain.example.net", [], (), ("plain.example.net",)),
])
def test_render(template: str, subject: list[tuple[x509.ObjectIdentifier, str]],
                dns: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert render(template, _cert(subject, dns)) == expected


def test_grant_is_the_union_of_the_credentials() -> None:
    label = LabelSettings(name="l", profile="p", names=("shared.example.net",),
                          cert_names=("{cn}",))
    est = EstSettings(labels={"l": label}, users={
        "u": EstUser("u", "hash", ("*.u.example.net",)), "nobody": EstUser("nobody", "hash")})
    cert = _cert([(CN, "dev.example.net")]).public_bytes(DER)
    assert grant(est, label, "u", None) == ("shared.example.net", "*.u.example.net")
    assert grant(est, label, None, cert) == ("shared.example.net", "dev.example.net")
    assert grant(est, label, "u", cert) == ("shared.example.net", "*.u.example.net",
                                            "dev.example.net")
    bare = LabelSettings(name="b", profile="p")
    assert grant(est, bare, "nobody", None) == ()
