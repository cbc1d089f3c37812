"""Settings of the local CA, parsed from its ``[cas.NAME]`` TOML table.

Every option, with its default::

    [cas.local]
    type = "local"
    dir = "<data_dir>/ca/<name>"     # CA certificate, ledger, CRL (and key file)
    key_backend = "file"             # or "pkcs11"
    key_type = "ec-p256"             # ec-p384, rsa-2048, rsa-3072, rsa-4096
    common_name = "ACME Gateway <name> CA"
    organization = ""
    hierarchy = "two-tier"           # or "single": one self-signed CA that issues leaves
    ca_validity_days = 3650          # the issuing CA certificate made by start()/ca init
    root_validity_days = 7300        # two-tier: the root's self-signed certificate
    root_common_name = "<common_name> Root"
    root_crl_days = 365              # two-tier: validity of the root's CRL (`ca root-crl` renews)
    backdate_seconds = 60            # notBefore = now - this, for clients with slow clocks
    public_base_url = ""             # filled by the gateway; empty = no CRL DP / AIA in leaves
    crl_validity_hours = 24          # CRL nextUpdate
    crl_refresh_seconds = 3600       # a new CRL this often, and on every revocation
    ocsp_responder = "ca"            # or "delegated": a short-lived responder certificate
    ocsp_validity_minutes = 60       # OCSP nextUpdate
    alternate_chain_files = []       # other chains above the leaves (connectors.chains)
    # key_backend = "pkcs11" only:
    pkcs11_library = "/usr/lib/softhsm/libsofthsm2.so"
    token_label = "..."              # a label, never a slot number
    key_label = "acme-gateway-<name>"
    pin_file = "/run/secrets/hsm-pin"   # or pin_env = "HSM_PIN"; an inline pin is refused
    # Several hosts signing with one key (an HSM) share the ledger in PostgreSQL:
    ledger_url = ""                  # postgresql://USER@HOST/DB; the gateway fills in its
                                     # own storage.url when that is PostgreSQL
    ledger_password_file = ""        # or ledger_password_env; never inline
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors.chains import read_chain_files
from connectors.localca.keys import KEY_TYPES
from connectors.secrets import OptionReader

DEFAULT_PKCS11_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
_PKCS11_KEYS = {"pkcs11_library", "token_label", "key_label", "pin_file", "pin_env"}


@dataclass(frozen=True)
class Pkcs11Settings:
    """Where the CA key lives in a PKCS#11 token, and the user PIN to log in with."""

    library: str
    token_label: str
    key_label: str
    pin: str = field(repr=False)


@dataclass(frozen=True)
class LocalCASettings:
    """Everything the local CA connector is configured with."""

    dir: Path
    key_backend: str = "file"
    key_type: str = "ec-p256"
    common_name: str = "ACME Gateway local CA"
    organization: str = ""
    ca_validity: timedelta = timedelta(days=3650)
    hierarchy: str = "two-tier"
    root_validity: timedelta = timedelta(days=7300)
    root_common_name: str = ""
    root_crl_validity: timedelta = timedelta(days=365)
    backdate: timedelta = timedelta(seconds=60)
    public_base_url: str = ""
    crl_validity: timedelta = timedelta(hours=24)
    crl_refresh: timedelta = timedelta(hours=1)
    ocsp_responder: str = "ca"
    ocsp_validity: timedelta = timedelta(hours=1)
    pkcs11: Pkcs11Settings | None = None
    # Nodes on several hosts share the ledger (serials, revocations, CRL numbers) here.
    ledger_url: str = ""
    ledger_password: str | None = field(default=None, repr=False)
    alternate_chains: tuple[tuple[bytes, ...], ...] = ()

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], data_dir: Path, name: str = "local"
    ) -> LocalCASettings:
        """Parse a ``[cas.NAME]`` table; raise CAConfigError naming the key on bad input."""
        r = OptionReader(name, options, data_dir)
        backend = r.choice("key_backend", "file", ("file", "pkcs11"))
        settings = cls(
            dir=Path(r.string("dir", str(data_dir / "ca" / name))),
            key_backend=backend,
            key_type=r.choice("key_type", "ec-p256", KEY_TYPES),
            common_name=r.string("common_name", f"ACME Gateway {name} CA"),
            organization=r.string("organization"),
            ca_validity=timedelta(days=r.integer("ca_validity_days", 3650, 1, 36500)),
            hierarchy=r.choice("hierarchy", "two-tier", ("two-tier", "single")),
            root_validity=timedelta(days=r.integer("root_validity_days", 7300, 1, 36500)),
            root_common_name=r.string("root_common_name"),
            root_crl_validity=timedelta(days=r.integer("root_crl_days", 365, 1, 3650)),
            backdate=timedelta(seconds=r.integer("backdate_seconds", 60, 0, 86400)),
            public_base_url=_url(r, "public_base_url"),
            crl_validity=timedelta(hours=r.integer("crl_validity_hours", 24, 1, 24 * 365)),
            crl_refresh=timedelta(seconds=r.integer("crl_refresh_seconds", 3600, 10, 86400 * 7)),
            ocsp_responder=r.choice("ocsp_responder", "ca", ("ca", "delegated")),
            ocsp_validity=timedelta(minutes=r.integer("ocsp_validity_minutes", 60, 1, 10080)),
            pkcs11=_pkcs11(r, name) if backend == "pkcs11" else None,
            ledger_url=_ledger_url(r),
            ledger_password=r.secret("ledger_password"),
            alternate_chains=read_chain_files(r),
        )
        misplaced = sorted(_PKCS11_KEYS & set(options)) if backend == "file" else []
        if misplaced:
            raise r.error(misplaced[0], 'is used only with key_backend = "pkcs11"')
        r.check_unknown()
        return settings

    def crl_url(self, name: str) -> str:
        """The CRL distribution point written into leaves ('' without a public URL)."""
        return f"{self.public_base_url}/pkix/{name}/crl" if self.public_base_url else ""

    def root_crl_url(self, name: str) -> str:
        """The root's CRL, named in the issuing CA's certificate ('' without a public URL)."""
        return f"{self.public_base_url}/pkix/{name}/root-crl" if self.public_base_url else ""

    def ocsp_url(self, name: str) -> str:
        """The AIA OCSP URL written into leaves ('' without a public URL)."""
        return f"{self.public_base_url}/pkix/{name}/ocsp" if self.public_base_url else ""


def _url(r: OptionReader, key: str) -> str:
    value = r.string(key).rstrip("/")
    if value and not value.startswith(("http://", "https://")):
        raise r.error(key, f"expected an http:// or https:// URL, got {value!r}")
    return value


def _ledger_url(r: OptionReader) -> str:
    value = r.string("ledger_url")
    if value and not value.startswith(("postgresql://", "postgres://")):
        raise r.error("ledger_url", f"expected a postgresql:// URL, got {value!r}")
    if re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", value):
        raise r.error("ledger_url", "secrets are never inline: drop the password from the "
                                    "URL and use ledger_password_file or ledger_password_env")
    return value


def _pkcs11(r: OptionReader, name: str) -> Pkcs11Settings:
    library = r.string("pkcs11_library", DEFAULT_PKCS11_LIBRARY)
    token = r.required_str("token_label", 'the token\'s label; with key_backend = "pkcs11"')
    key_label = r.string("key_label", f"acme-gateway-{name}")
    pin = r.secret("pin")
    if pin is None:
        raise r.error("pin_file", "the token's user PIN is required: set pin_file or pin_env")
    return Pkcs11Settings(library=library, token_label=token, key_label=key_label, pin=pin)
