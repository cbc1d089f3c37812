"""What an authenticated EST client may request: the names bound to its identity.

Authentication (:mod:`gateway.est.auth`) says who is asking; this module says
which names that identity may put in a CSR on a first enrollment
(``simpleenroll``, ``serverkeygen``). Every identity is bound explicitly:

* a Basic user to the patterns of its ``[est.users.NAME] names``;
* a client-certificate holder to the label's ``cert_names`` templates, filled
  from its certificate (``{cn}``, ``{serialNumber}`` of the subject, ``{dns}``
  for each DNS name of its subjectAltName), so a device certificate with
  serialNumber ``SN-0001`` may ask for ``sn-0001.devices...`` and nothing else;
* every client of a label to the label's ``names`` patterns.

The grant is the union of what the request's credentials bring. An empty grant
enrolls nothing. Re-enrollment is bound differently: to the names of the
certificate being renewed (RFC 7030 §4.2.2), checked in the core.
"""

from __future__ import annotations

import re

from cryptography import x509

from gateway.est.settings import CERT_NAME_FIELDS, EstSettings, LabelSettings

# A subject value used in a template must be a plain DNS label sequence: a CN of "*"
# or "a*b" must never turn a template into a wider glob than the operator wrote.
_SAFE_VALUE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _subject_values(cert: x509.Certificate, field: str) -> list[str]:
    if field == "dns":
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        values = san.get_values_for_type(x509.DNSName)
    else:
        attrs = cert.subject.get_attributes_for_oid(CERT_NAME_FIELDS[field])
        if len(attrs) != 1:  # absent, or ambiguous: the template does not apply
            return []
        values = [str(attrs[0].value)]
    cleaned = (v.strip().lower() for v in values)
    return [v for v in cleaned if _SAFE_VALUE.fullmatch(v)]


def render(template: str, cert: x509.Certificate) -> tuple[str, ...]:
    """``template`` filled from ``cert``: one pattern per value (``{dns}`` may have several).

    A placeholder with no usable value yields nothing.
    """
    rendered = [template]
    for field in dict.fromkeys(_PLACEHOLDER.findall(template)):
        values = _subject_values(cert, field)
        rendered = [r.replace("{" + field + "}", v) for r in rendered for v in values]
    return tuple(r.lower() for r in rendered)


def certificate_names(label: LabelSettings, cert_der: bytes) -> tuple[str, ...]:
    """The patterns a client certificate's holder may request on ``label``."""
    cert = x509.load_der_x509_certificate(cert_der)
    return tuple(p for t in label.cert_names for p in render(t, cert))


def grant(est: EstSettings, label: LabelSettings, user: str | None,
          cert_der: bytes | None) -> tuple[str, ...]:
    """Every pattern the request's credentials allow on ``label`` (may be empty)."""
    patterns: list[str] = list(label.names)
    if user is not None:
        patterns += est.users[user].names
    if cert_der is not None:
        patterns += certificate_names(label, cert_der)
    return tuple(dict.fromkeys(patterns))
