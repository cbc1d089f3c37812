"""The ``[est]`` section of the config: labels, their authentication and wire options.

```toml
[est]
retry_after_seconds = 30          # Retry-After of a 202 (request waits for the CA/approver)
enroll_wait_seconds = 5.0         # how long an enroll waits for a fast CA before answering 202
realm = "acme-gateway EST"        # WWW-Authenticate realm
one_line_user_agents = ["strongSwan", ""]  # User-Agent substrings of clients needing one-line
                                  # base64; "" matches a request without User-Agent (pki 5.9)
default_label = "default"         # the label served at /.well-known/est/ itself ("" = none)

[est.users.router-admin]          # an HTTP Basic user
password = "pbkdf2-sha256$600000$...$..."   # `acme-gateway est hash-password` output
names = ["*.routers.corp.example"]          # the names this user may request

[est.labels.default]
profile = "default"               # a [profiles.NAME]: its policy and its CA
auth = "cert"                     # cert | basic | either | both | none
users = []                        # Basic users allowed here (empty: every user above)
client_ca_files = []              # the PEM anchors whose certificates may enroll here
cert_names = ["{serialNumber}.devices.corp.example"]  # names a certificate holder may request
names = []                        # names any client of this label may request
trust_issuing_ca = false          # the label's own CA also authenticates a first enrollment
base64_line_length = 64           # 0: one unbroken line
proof_of_possession = false       # tls-unique in challengePassword (TLS 1.2 only)
```

A user may also be given as ``name = "pbkdf2-sha256$..."`` (a hash alone): such a
user may request only the names its labels grant (``names``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gateway.config import Settings, label_profile, name_patterns
from gateway.config_table import Table
from gateway.est.passwords import check_hash_format

AUTH_MODES = ("cert", "basic", "either", "both", "none")
# Subject attributes a ``cert_names`` template may use, by placeholder (and {dns}: each
# DNS name of the certificate's subjectAltName).
CERT_NAME_FIELDS = {"cn": NameOID.COMMON_NAME, "serialNumber": NameOID.SERIAL_NUMBER}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
OPERATIONS = ("cacerts", "simpleenroll", "simplereenroll", "csrattrs", "serverkeygen", "fullcmc")


@dataclass(frozen=True)
class LabelSettings:
    """One EST label (``/.well-known/est/<label>/``)."""

    name: str
    profile: str
    auth: str = "cert"
    users: tuple[str, ...] = ()
    client_ca_der: tuple[bytes, ...] = ()  # client-certificate anchors (DER), read at start
    cert_names: tuple[str, ...] = ()  # templates: what a certificate holder may request
    names: tuple[str, ...] = ()  # patterns every client of the label may request
    trust_issuing_ca: bool = False  # the profile's CA authenticates a first enrollment
    base64_line_length: int = 64
    proof_of_possession: bool = False

    @property
    def wants_cert(self) -> bool:
        """Whether a client certificate can authenticate here."""
        return self.auth in ("cert", "either", "both")

    @property
    def wants_basic(self) -> bool:
        """Whether HTTP Basic can authenticate here."""
        return self.auth in ("basic", "either", "both")


@dataclass(frozen=True)
class EstUser:
    """An HTTP Basic user and the names it may request."""

    name: str
    password_hash: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class EstSettings:
    """Everything the EST front end is configured with."""

    labels: Mapping[str, LabelSettings] = field(default_factory=dict)
    users: Mapping[str, EstUser] = field(default_factory=dict)
    default_label: str = ""
    retry_after_seconds: int = 30
    enroll_wait_seconds: float = 5.0
    realm: str = "acme-gateway EST"
    one_line_user_agents: tuple[str, ...] = ("strongSwan", "")

    def label(self, name: str | None) -> LabelSettings | None:
        """The label of a request path (None for the bare path: the default label)."""
        return self.labels.get(self.default_label if name is None else name)


def _read_anchors(t: Table, files: tuple[str, ...]) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for name in files:
        try:
            certs = x509.load_pem_x509_certificates(Path(name).read_bytes())
        except OSError as exc:
            raise t.error("client_ca_files", f"cannot read {name}: {exc.strerror}") from exc
        except ValueError as exc:
            raise t.error("client_ca_files", f"{name} holds no PEM certificate") from exc
        out.extend(c.public_bytes(Encoding.DER) for c in certs)
    return tuple(out)


def _cert_names(t: Table) -> tuple[str, ...]:
    templates = t.strs("cert_names")
    for template in templates:
        for field_name in _PLACEHOLDER.findall(template):
            if field_name not in CERT_NAME_FIELDS and field_name != "dns":
                raise t.error("cert_names", f"{template!r}: unknown placeholder {{{field_name}}}; "
                              "use {cn}, {serialNumber} or {dns}")
        if template.startswith("re:"):
            raise t.error("cert_names", f"{template!r}: templates are globs, not 're:' patterns")
    return templates


def _label(t: Table, name: str, settings: Settings,
           users: Mapping[str, EstUser]) -> LabelSettings:
    profile = label_profile(t, name, settings, OPERATIONS, "an EST operation name")
    auth = t.str("auth", "cert")
    if auth not in AUTH_MODES:
        raise t.error("auth", f"expected one of {', '.join(AUTH_MODES)}")
    allowed = t.strs("users")
    for user in allowed:
        if user not in users:
            raise t.error("users", f"{user!r} is not in [est.users]")
    label = LabelSettings(
        name=name, profile=profile, auth=auth, users=allowed,
        client_ca_der=_read_anchors(t, t.strs("client_ca_files")),
        cert_names=_cert_names(t), names=name_patterns(t, "names"),
        trust_issuing_ca=t.bool("trust_issuing_ca"),
        base64_line_length=t.int("base64_line_length", 64, 0, 1024),
        proof_of_possession=t.bool("proof_of_possession"))
    t.check_unknown()
    return label


_HASH_HINT = ("expected a password hash made by `acme-gateway est hash-password` (plain "
              "passwords are never accepted)")


def _user(t: Table, name: str) -> EstUser:
    if ":" in name:
        raise t.error(name, "a Basic user name cannot contain ':'")
    value = t.data[name]
    if isinstance(value, str):  # the short form: a hash, no names of its own
        if not check_hash_format(value):
            raise t.error(name, _HASH_HINT)
        return EstUser(name, value)
    user_t = t.table(name)
    password = user_t.str("password")
    if not check_hash_format(password):
        raise user_t.error("password", _HASH_HINT)
    user = EstUser(name, password, name_patterns(user_t, "names"))
    user_t.check_unknown()
    return user


def _users(t: Table) -> dict[str, EstUser]:
    return {name: _user(t, name) for name in t.data}


def parse(settings: Settings) -> EstSettings:
    """Parse ``settings.extra["est"]``; an absent section means no EST label is served."""
    raw: Mapping[str, Any] = settings.extra.get("est", {})
    t = Table(settings.source, "est", raw)
    users = _users(t.table("users"))
    labels_t = t.table("labels")
    labels = {n: _label(labels_t.table(n), n, settings, users) for n in labels_t.data}
    default = t.str("default_label", "default" if "default" in labels else "")
    if default and default not in labels:
        raise t.error("default_label", f"names no label; configured: {', '.join(labels)}")
    est = EstSettings(
        labels=labels, users=users, default_label=default,
        retry_after_seconds=t.int("retry_after_seconds", 30, 1, 86400),
        enroll_wait_seconds=t.float("enroll_wait_seconds", 5.0),
        realm=t.str("realm", "acme-gateway EST").replace('"', "'"),
        one_line_user_agents=t.strs("one_line_user_agents", ("strongSwan", "")))
    t.check_unknown()
    return est

