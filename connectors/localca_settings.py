"""Settings of the local CA, parsed from its ``[cas.NAME]`` TOML table.

Every option, with its default::

    [cas.local]
    type = "local"
    dir = "<data_dir>/ca/<name>"     # CA certificate, ledger, CRL (and key file)
    key_backend = "file"             # or "pkcs11"
    key_type = "ec-p256"             # ec-p384, rsa-2048, rsa-3072, rsa-4096
    common_name = "ACME Gateway <name> CA"
    organization = ""
    ca_validity_days = 3650          # self-signed CA certificate made by start()/ca init
    backdate_seconds = 60            # notBefore = now - this, for clients with slow clocks
    public_base_url = ""             # filled by the gateway; empty = no CRL DP / AIA in leaves
    crl_validity_hours = 24          # CRL nextUpdate
    crl_refresh_seconds = 3600       # a new CRL this often, and on every revocation
    ocsp_responder = "ca"            # or "delegated": a short-lived responder certificate
    ocsp_validity_minutes = 60       # OCSP nextUpdate
    # key_backend = "pkcs11" only:
    pkcs11_library = "/usr/lib/softhsm/libsofthsm2.so"
    token_label = "..."              # a label, never a slot number
    key_label = "acme-gateway-<name>"
    pin_file = "/run/secrets/hsm-pin"   # or pin_env = "HSM_PIN"; an inline pin is refused
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors.base import CAConfigError
from connectors.localca_keys import KEY_TYPES

DEFAULT_PKCS11_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"

_KNOWN = {
    "type", "dir", "key_backend", "key_type", "common_name", "organization", "ca_validity_days",
    "backdate_seconds", "public_base_url", "crl_validity_hours", "crl_refresh_seconds",
    "ocsp_responder", "ocsp_validity_minutes", "pkcs11_library", "token_label", "key_label",
    "pin_file", "pin_env", "pin",
}  # fmt: skip


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
    backdate: timedelta = timedelta(seconds=60)
    public_base_url: str = ""
    crl_validity: timedelta = timedelta(hours=24)
    crl_refresh: timedelta = timedelta(hours=1)
    ocsp_responder: str = "ca"
    ocsp_validity: timedelta = timedelta(hours=1)
    pkcs11: Pkcs11Settings | None = None

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], data_dir: Path, name: str = "local"
    ) -> LocalCASettings:
        """Parse a ``[cas.NAME]`` table; raise CAConfigError naming the key on bad input."""
        opts = _Options(options, name)
        opts.refuse_unknown()
        backend = opts.choice("key_backend", "file", ("file", "pkcs11"))
        return cls(
            dir=Path(opts.text("dir", str(data_dir / "ca" / name))),
            key_backend=backend,
            key_type=opts.choice("key_type", "ec-p256", KEY_TYPES),
            common_name=opts.text("common_name", f"ACME Gateway {name} CA"),
            organization=opts.text("organization", ""),
            ca_validity=timedelta(days=opts.int("ca_validity_days", 3650, 1, 36500)),
            backdate=timedelta(seconds=opts.int("backdate_seconds", 60, 0, 86400)),
            public_base_url=opts.url("public_base_url"),
            crl_validity=timedelta(hours=opts.int("crl_validity_hours", 24, 1, 24 * 365)),
            crl_refresh=timedelta(seconds=opts.int("crl_refresh_seconds", 3600, 10, 86400 * 7)),
            ocsp_responder=opts.choice("ocsp_responder", "ca", ("ca", "delegated")),
            ocsp_validity=timedelta(minutes=opts.int("ocsp_validity_minutes", 60, 1, 7 * 24 * 60)),
            pkcs11=opts.pkcs11(name) if backend == "pkcs11" else None,
        )

    def crl_url(self, name: str) -> str:
        """The CRL distribution point written into leaves ('' without a public URL)."""
        return f"{self.public_base_url}/pkix/{name}/crl" if self.public_base_url else ""

    def ocsp_url(self, name: str) -> str:
        """The AIA OCSP URL written into leaves ('' without a public URL)."""
        return f"{self.public_base_url}/pkix/{name}/ocsp" if self.public_base_url else ""


class _Options:
    """Typed reads of the CA's table; errors name ``[cas.NAME] key`` and the fix."""

    def __init__(self, data: Mapping[str, Any], name: str) -> None:
        self.data = data
        self.name = name

    def error(self, key: str, expected: str) -> CAConfigError:
        return CAConfigError(f"[cas.{self.name}] {key}: {expected}")

    def refuse_unknown(self) -> None:
        unknown = sorted(set(self.data) - _KNOWN)
        if unknown:
            raise self.error(unknown[0], "unknown option of a local CA (check the spelling)")
        if "pin" in self.data:
            raise self.error("pin", "a PIN is never inline: use pin_file or pin_env")

    def text(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return str(value)

    def int(self, key: str, default: int, low: int, high: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.error(key, f"expected an integer from {low} to {high}, got {value!r}")
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise self.error(key, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def url(self, key: str) -> str:
        value = self.text(key, "").rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise self.error(key, f"expected an http:// or https:// URL, got {value!r}")
        return value

    def pkcs11(self, name: str) -> Pkcs11Settings:
        token = self.text("token_label", "")
        if not token:
            raise self.error(
                "token_label", 'required with key_backend = "pkcs11" (the token\'s label)'
            )
        return Pkcs11Settings(
            library=self.text("pkcs11_library", DEFAULT_PKCS11_LIBRARY),
            token_label=token,
            key_label=self.text("key_label", f"acme-gateway-{name}"),
            pin=self.pin(),
        )

    def pin(self) -> str:
        path, env = self.text("pin_file", ""), self.text("pin_env", "")
        if path and env:
            raise self.error("pin_file", "give pin_file or pin_env, not both")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise self.error("pin_file", f"cannot read {path}: {exc.strerror}") from exc
        if env:
            if env not in os.environ:
                raise self.error("pin_env", f"environment variable {env} is not set")
            return os.environ[env]
        raise self.error("pin_file", "the token's user PIN is required: set pin_file or pin_env")
