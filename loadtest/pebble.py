"""Set-up for measuring Pebble (Debian package ``pebble``) on loopback.

Debian ships only the example config; the TLS certificate it names
(``test/certs/localhost/cert.pem``) lives in Pebble's source tree, not in the
package. :func:`write_pebble_setup` writes a config plus a fresh self-signed
certificate for 127.0.0.1/localhost, which the load generator then trusts with
``--cafile``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# The variables that make Pebble a fair throughput target: no validation sleeps, no nonce faults.
PEBBLE_FAST_ENV = {
    "PEBBLE_VA_NOSLEEP": "1",
    "PEBBLE_WFE_NONCEREJECT": "0",
    "PEBBLE_AUTHZREUSE": "0",
}


@dataclass(frozen=True)
class PebbleSetup:
    """Files written for one Pebble instance and the ports it uses."""

    config: Path
    cert: Path
    key: Path
    port: int
    http01_port: int

    @property
    def directory_url(self) -> str:
        """The ACME directory URL."""
        return f"https://127.0.0.1:{self.port}/dir"

    def command(self, dns_port: int | None = None) -> list[str]:
        """The argv that starts Pebble with this setup (and our DNS responder as resolver)."""
        argv = ["pebble", "-config", str(self.config), "-strict=false"]
        if dns_port:
            argv += ["-dnsserver", f"127.0.0.1:{dns_port}"]
        return argv


def self_signed(names: list[str], ips: list[str]) -> tuple[bytes, bytes]:
    """A PEM certificate and key for a TLS server on loopback (valid one year)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else ips[0])])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_pebble_setup(
    workdir: Path,
    port: int = 14000,
    management_port: int = 15000,
    http01_port: int = 5002,
    tls_port: int = 5001,
    eab_keys: dict[str, str] | None = None,
) -> PebbleSetup:
    """Write ``pebble-config.json``, ``cert.pem`` and ``key.pem`` into ``workdir``.

    ``eab_keys`` (kid → base64url HMAC key) makes external account binding mandatory.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed(["localhost"], ["127.0.0.1"])
    cert, key, config = workdir / "cert.pem", workdir / "key.pem", workdir / "pebble-config.json"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    settings: dict[str, object] = {
        "listenAddress": f"127.0.0.1:{port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(cert),
        "privateKey": str(key),
        "httpPort": http01_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": bool(eab_keys),
    }
    if eab_keys:
        settings["externalAccountMACKeys"] = eab_keys
    config.write_text(json.dumps({"pebble": settings}, indent=2))
    return PebbleSetup(config, cert, key, port, http01_port)
