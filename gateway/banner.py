"""The lines ``acme-gateway serve`` prints once it listens: what a new operator needs first.

Which certificate clients must trust for HTTPS, which CA certificate the issued
chains end in (each with its SHA-256 fingerprint, to compare out of band), the
ACME directory and EST base URLs, the SCEP URLs and RA certificate when SCEP
is on, and where data and logs live.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from connectors.base import CAConfigError
from connectors.localca.admin import fingerprint as cert_fingerprint
from connectors.localca.settings import LocalCASettings
from gateway import config


def fingerprint(pem_file: Path) -> str:
    """SHA-256 of the first certificate in ``pem_file``, colon-separated; or why there is none."""
    try:
        return cert_fingerprint(x509.load_pem_x509_certificates(pem_file.read_bytes())[0])
    except (OSError, ValueError, IndexError) as exc:
        return f"(unreadable: {exc})"


def https_lines(cert: Path, self_signed: bool) -> list[str]:
    """The HTTPS certificate, its fingerprint and how the ACME clients are told to trust it."""
    path = cert.resolve()
    kind = "self-signed, the trust anchor" if self_signed else "from tls_cert_file"
    lines = [f"HTTPS certificate ({kind}): {path}", f"  sha256 {fingerprint(path)}"]
    if self_signed:
        lines.append(f"  trust it with REQUESTS_CA_BUNDLE={path} (certbot) or "
                     f"LEGO_CA_CERTIFICATES={path} (lego)")
    return lines


def ca_lines(settings: config.Settings) -> list[str]:
    """Each configured CA: a local CA's certificate file and fingerprint, else its type."""
    lines = []
    for name, ca in sorted(settings.cas.items()):
        if ca.type != "local":
            lines.append(f"Issuing CA {name!r} ({ca.type}): its chain is served at EST cacerts")
            continue
        cert = _local_ca_dir(settings, name) / "ca.pem"
        lines += [f"Issuing CA {name!r} (local): {cert.resolve()}", f"  sha256 {fingerprint(cert)}"]
    return lines


def _local_ca_dir(settings: config.Settings, name: str) -> Path:
    ca = settings.cas[name]
    try:
        return LocalCASettings.from_options(ca.options, settings.server.data_dir, name).dir
    except CAConfigError:  # the server refuses such a table anyway; name the default place
        return settings.server.data_dir / "ca" / name


def url_lines(urls: list[str]) -> list[str]:
    """The ACME directory and EST base of each listener."""
    lines = []
    for url in urls:
        lines += [f"ACME directory: {url}/acme/directory",
                  f"EST base:       {url}/.well-known/est/"]
    return lines


def scep_lines(settings: config.Settings, urls: list[str]) -> list[str]:
    """The SCEP URL of each label and the RA certificate devices encrypt to (when SCEP is on)."""
    from gateway.scep.settings import parse

    scep = parse(settings)
    if not scep.labels or not urls:
        return []
    # The last listener: plain HTTP when there is one, which is what most devices speak.
    lines = [f"SCEP:           {urls[-1]}/scep/{name}/pkiclient.exe"
             for name in sorted(scep.labels)]
    cert = scep.ra_cert_file.resolve()
    return lines + [f"SCEP RA certificate: {cert}", f"  sha256 {fingerprint(cert)}"]


def where_lines(settings: config.Settings) -> list[str]:
    """The data directory, the store and the logs."""
    storage = settings.storage_url()
    if not storage.startswith("sqlite"):
        storage = storage.split("://", 1)[0] + " (see [storage] url)"  # the URL may hold a secret
    return [
        f"Data:    {settings.server.data_dir.resolve()} (store {storage})",
        "Logs:    JSON lines on stderr, one per request"
        + ("" if settings.server.access_log else " (access_log = false: errors only)"),
    ]


def render(settings: config.Settings, urls: list[str], https_cert: Path | None,
           self_signed: bool) -> str:
    """The whole start banner."""
    lines = https_lines(https_cert, self_signed) if https_cert is not None else []
    lines += ca_lines(settings) + url_lines(urls) + scep_lines(settings, urls) \
        + where_lines(settings)
    return "\n".join(lines)
