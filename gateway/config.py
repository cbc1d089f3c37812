"""TOML configuration → frozen, typed settings.

Every error names the file, the key and what is expected, so that a wrong
config stops the start with a message a person can act on. With no file at all
the gateway runs on embedded defaults: SQLite and a local CA in ``data_dir``.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from connectors import registry as connector_types
from connectors.base import CLIENT_AUTH, SERVER_AUTH
from gateway.config_table import Table
from gateway.core import retention_settings
from gateway.core.ratelimits import settings as ratelimit_settings
from gateway.core.ratelimits.settings import RateLimitSettings
from gateway.core.retention_settings import RetentionSettings
from gateway.errors import ConfigError
from gateway.validation.challenges import CHALLENGE_TYPES
from gateway.validation.settings import DEFAULT_BLOCKED_NETWORKS, ValidationSettings

T = TypeVar("T")

EKU_NAMES = {"serverAuth": SERVER_AUTH, "clientAuth": CLIENT_AUTH}


_FRONT_END_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def label_profile(t: Table, name: str, settings: Settings, reserved: tuple[str, ...],
                  reserved_what: str) -> str:
    """Check an EST/SCEP label's name (a URL path segment) and return its ``profile``."""
    if not _FRONT_END_LABEL.match(name) or name in reserved:
        raise ConfigError(t.source, t.prefix, f"label {name!r} must be letters, digits, '.', "
                          f"'_' or '-' and not {reserved_what}")
    profile = t.str("profile", settings.acme.default_profile)
    if profile not in settings.profiles:
        raise t.error("profile", f"names no profile; configured: {', '.join(settings.profiles)}")
    return profile


def name_patterns(t: Table, key: str) -> tuple[str, ...]:
    """Name patterns as profiles write them: a glob, or ``re:`` and a regular expression."""
    patterns = t.strs(key)
    for pattern in patterns:
        if pattern.startswith("re:"):
            try:
                re.compile(pattern[3:])
            except re.error as exc:
                raise t.error(key, f"{pattern!r} is not a regular expression: {exc}") from exc
    return tuple(p if p.startswith("re:") else p.lower() for p in patterns)


@dataclass(frozen=True)
class ServerSettings:
    """Listeners and the data directory."""

    data_dir: Path = Path("gateway-data")
    listen: str = "127.0.0.1"
    https_port: int = 8443
    http_port: int = 0
    base_url: str = ""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    log_level: str = "info"
    access_log: bool = True
    shutdown_timeout_seconds: float = 10.0
    # Bounds on each phase of a connection (see gateway.protocol) and connection budgets.
    tls_handshake_timeout_seconds: float = 10.0
    header_timeout_seconds: float = 20.0
    body_timeout_seconds: float = 30.0
    keepalive_timeout_seconds: float = 60.0
    max_connections: int = 10000
    max_connections_per_address: int = 256
    # Plain-HTTP listener serving only /pkix/ (CRLs, OCSP) for relying parties (0 = off).
    pkix_http_port: int = 8080

    def pkix_base_url(self) -> str:
        """Base of the CRL and OCSP URLs in certificates: plain http:// on the /pkix/ listener.

        RFC 5280 practice: relying parties fetch CRLs and OCSP over http://, without
        having to trust the gateway's own TLS certificate first.
        """
        if not self.pkix_http_port:
            return self.public_base_url()
        host = (urlsplit(self.base_url).hostname if self.base_url else None) or self.listen
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"  # a wildcard address is no URL; set public_base_url instead
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.pkix_http_port}"

    def public_base_url(self) -> str:
        """The URL clients reach the gateway at, without a trailing slash."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        if self.https_port:
            return f"https://{host}:{self.https_port}"
        return f"http://{host}:{self.http_port}"


@dataclass(frozen=True)
class StorageSettings:
    """Where state lives: ``sqlite:///path`` (default) or ``postgresql://...``."""

    url: str = ""
    # Writes arriving while a commit runs share the next one; this adds a wait (ms) to group more.
    group_commit_ms: float = 0.0
    # PostgreSQL only: connections per serving process, and the password (from a file/env).
    pool_size: int = 10
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AcmeSettings:
    """The ACME front end's knobs."""

    terms_of_service: str = ""
    website: str = ""
    external_account_required: bool = False
    nonce_lifetime_seconds: int = 3600
    order_lifetime_seconds: int = 7 * 86400
    authz_lifetime_seconds: int = 30 * 86400
    finalize_wait_seconds: float = 5.0
    # How long a challenge POST waits for its validation before answering "processing".
    challenge_wait_seconds: float = 2.0
    # How long a poll of an authorization, challenge or order with work in flight
    # (validation, CA) is held for that work to finish before answering unchanged.
    poll_wait_seconds: float = 2.0
    # Retry-After while something is pending: short, since the wait above already
    # absorbed the quick cases and what remains is usually close to done.
    retry_after_seconds: int = 1
    default_profile: str = "default"
    # How often ACME clients should ask again for renewal information (RFC 9773 §4.3).
    renewal_info_retry_after_seconds: int = 21600
    # A page explaining why renewal windows were moved forward (empty: none).
    renewal_explanation_url: str = ""


@dataclass(frozen=True)
class CASettings:
    """One CA connector: its ``type`` and the rest of its table, parsed by the connector."""

    name: str
    type: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class ProfileSettings:
    """A policy profile: which CA issues and what a request must satisfy."""

    name: str
    ca: str
    validity: timedelta = timedelta(days=90)
    ekus: tuple[str, ...] = (SERVER_AUTH, CLIENT_AUTH)
    ca_params: Mapping[str, str] = field(default_factory=dict)
    allow_wildcards: bool = True
    allow_ip: bool = True
    max_identifiers: int = 100
    allowed_patterns: tuple[str, ...] = ()
    key_types: tuple[str, ...] = ("rsa", "ec")
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    cn_from_first_san: bool = False
    approval_required: bool = False
    description: str = ""
    # RFC 2818 §3.1: names live in subjectAltName; a CN, if any, must repeat one of them.
    rfc2818: bool = False
    allow_key_reuse: bool = True
    # Whether certificates issued under this profile through ACME may authenticate to
    # EST as TLS client certificates (off: an ACME name never opens EST enrollment).
    acme_certs_authenticate_est: bool = False
    # How long an order may wait for the CA's decision (a pending approval at the CA).
    max_wait: timedelta = timedelta(hours=168)
    # The ACME Renewal Information window (RFC 9773) as fractions of validity: by
    # default the third before the last tenth, so a failed renewal has time to retry.
    renewal_window_start: float = 0.6
    renewal_window_end: float = 0.9


@dataclass(frozen=True)
class JobSettings:
    """Backoff of persisted CA jobs: retries after transient errors and polls of a pending CA."""

    retry_base_seconds: float = 2.0
    retry_cap_seconds: float = 300.0
    max_attempts: int = 10
    poll_base_seconds: float = 5.0
    poll_cap_seconds: float = 600.0
    scan_period_seconds: float = 1.0
    # With several serving processes, how long a started job is reserved for the one
    # running it; longer than any CA call takes, so no second process runs it too.
    claim_seconds: float = 300.0
    # Consecutive failures of one CA that open its circuit (0: never), and for how long.
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 60.0
    # How often every CA is asked whether it is usable (0: only at start).
    health_probe_seconds: float = 30.0


@dataclass(frozen=True)
class AdminSettings:
    """The admin HTTP API (off unless a token is configured) and the approval webhook."""

    token: str | None = None
    webhook_url: str = ""
    webhook_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class AuditSettings:
    """The audit trail: compliance thresholds and its signed anchors (``gateway.audit_anchor``)."""

    max_validity_days: int = 398
    # None: in the data directory (see Settings.anchor_key_file / anchor_log_file).
    anchor_key_file: Path | None = None
    anchor_log_file: Path | None = None
    anchor_interval_seconds: float = 60.0
    # When set, `audit verify` refuses an anchor key with another fingerprint.
    anchor_key_fingerprint: str = ""
    anchor_webhook_url: str = ""
    anchor_webhook_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class Settings:
    """Everything the gateway is configured with."""

    source: str = "<embedded defaults>"
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    acme: AcmeSettings = field(default_factory=AcmeSettings)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    cas: Mapping[str, CASettings] = field(default_factory=dict)
    profiles: Mapping[str, ProfileSettings] = field(default_factory=dict)
    jobs: JobSettings = field(default_factory=JobSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    # Raw tables of sections owned by other modules (e.g. "est", "admin"), parsed there.
    extra: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def storage_url(self) -> str:
        """The storage URL, defaulting to a SQLite file in the data directory."""
        return self.storage.url or f"sqlite:///{self.server.data_dir / 'gateway.db'}"

    def anchor_key_file(self) -> Path:
        """The audit anchors' signing key, by default in the data directory."""
        return self.audit.anchor_key_file or self.server.data_dir / "audit-anchor.key"

    def anchor_log_file(self) -> Path:
        """The append-only log of signed audit anchors, by default in the data directory."""
        return self.audit.anchor_log_file or self.server.data_dir / "audit-anchors.jsonl"


def _server(t: Table) -> ServerSettings:
    cert = t.str("tls_cert_file")
    key = t.str("tls_key_file")
    if bool(cert) != bool(key):
        raise t.error("tls_cert_file", "tls_cert_file and tls_key_file go together")
    level = t.str("log_level", "info").lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise t.error("log_level", "expected one of debug, info, warning, error")
    settings = ServerSettings(
        data_dir=Path(t.str("data_dir", "gateway-data")),
        listen=t.str("listen", "127.0.0.1"),
        https_port=t.int("https_port", 8443, 0, 65535),
        http_port=t.int("http_port", 0, 0, 65535),
        base_url=t.str("base_url"),
        tls_cert_file=Path(cert) if cert else None,
        tls_key_file=Path(key) if key else None,
        log_level=level,
        access_log=t.bool("access_log", True),
        shutdown_timeout_seconds=t.float("shutdown_timeout_seconds", 10.0),
        tls_handshake_timeout_seconds=t.float("tls_handshake_timeout_seconds", 10.0, 0.1),
        header_timeout_seconds=t.float("header_timeout_seconds", 20.0, 0.1),
        body_timeout_seconds=t.float("body_timeout_seconds", 30.0, 0.1),
        keepalive_timeout_seconds=t.float("keepalive_timeout_seconds", 60.0, 0.1),
        max_connections=t.int("max_connections", 10000, 1, 1_000_000),
        max_connections_per_address=t.int("max_connections_per_address", 256, 1, 1_000_000),
        pkix_http_port=t.int("pkix_http_port", 8080, 0, 65535),
    )
    if not settings.https_port and not settings.http_port:
        raise t.error("https_port", "at least one of https_port and http_port must be non-zero")
    if settings.max_connections_per_address > settings.max_connections:
        raise t.error("max_connections_per_address", "must not exceed max_connections")
    try:
        ipaddress.ip_address(settings.listen)
    except ValueError as exc:
        raise t.error("listen", f"expected an IP address, got {settings.listen!r}") from exc
    return settings


def _storage(t: Table) -> StorageSettings:
    url = t.str("url")
    if url and not re.match(r"^(sqlite:///|postgres(ql)?://)", url):
        raise t.error("url", "expected sqlite:///PATH or postgresql://USER@HOST/DB")
    if re.match(r"^postgres(ql)?://[^/@]*:[^/@]*@", url):
        raise t.error("url", "secrets are never inline: drop the password from the URL "
                             "and use password_file or password_env")
    return StorageSettings(url=url, group_commit_ms=t.float("group_commit_ms", 0.0),
                           pool_size=t.int("pool_size", 10, 1, 1000), password=t.secret("password"))


def _acme(t: Table) -> AcmeSettings:
    return AcmeSettings(
        terms_of_service=t.str("terms_of_service"),
        website=t.str("website"),
        external_account_required=t.bool("external_account_required"),
        nonce_lifetime_seconds=t.int("nonce_lifetime_seconds", 3600, 1),
        order_lifetime_seconds=t.int("order_lifetime_seconds", 7 * 86400, 60),
        authz_lifetime_seconds=t.int("authz_lifetime_seconds", 30 * 86400, 60),
        finalize_wait_seconds=t.float("finalize_wait_seconds", 5.0),
        challenge_wait_seconds=t.float("challenge_wait_seconds", 2.0),
        poll_wait_seconds=t.float("poll_wait_seconds", 2.0),
        retry_after_seconds=t.int("retry_after_seconds", 1, 1, 3600),
        default_profile=t.str("default_profile", "default"),
        renewal_info_retry_after_seconds=t.int("renewal_info_retry_after_seconds", 21600,
                                               60, 7 * 86400),
        renewal_explanation_url=t.str("renewal_explanation_url"),
    )


def _resolver(t: Table, entry: str) -> tuple[str, int]:
    host, sep, port = entry.rpartition(":")
    if not sep:
        host, port = entry, "53"
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError as exc:
        raise t.error("resolvers", f"expected HOST:PORT with an IP address, got {entry!r}") from exc
    return host, number


def _validation(t: Table) -> ValidationSettings:
    networks = t.strs("blocked_networks", DEFAULT_BLOCKED_NETWORKS)
    for net in networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError as exc:
            raise t.error("blocked_networks", f"{net!r} is not a network (CIDR)") from exc
    challenge_types = t.strs("challenge_types", tuple(CHALLENGE_TYPES))
    for ctype in challenge_types:
        if ctype not in CHALLENGE_TYPES:
            raise t.error("challenge_types", f"unknown challenge type {ctype!r}; known: "
                          f"{', '.join(CHALLENGE_TYPES)}")
    return ValidationSettings(
        resolvers=tuple(_resolver(t, r) for r in t.strs("resolvers")),
        http01_port=t.int("http01_port", 80, 1, 65535),
        tlsalpn01_port=t.int("tlsalpn01_port", 443, 1, 65535),
        http01_redirect_ports=t.ints("http01_redirect_ports", (80, 443)),
        max_redirects=t.int("max_redirects", 10, 0, 50),
        max_body_bytes=t.int("max_body_bytes", 8192, 128),
        attempt_timeout_seconds=t.float("attempt_timeout_seconds", 10.0, 0.1),
        attempts=t.int("attempts", 3, 1, 10),
        retry_backoff_seconds=t.float("retry_backoff_seconds", 1.0),
        concurrency=t.int("concurrency", 2000, 1),
        per_target_concurrency=t.int("per_target_concurrency", 20, 1),
        blocked_networks=networks,
        allow_loopback=t.bool("allow_loopback", False),
        allow_private=t.bool("allow_private", True),
        caa_identities=t.strs("caa_identities"),
        caa_recheck_after_seconds=t.int("caa_recheck_after_seconds", 8 * 3600),
        challenge_types=challenge_types,
    )


def _ca(t: Table, name: str) -> CASettings:
    ca_type = t.str("type")
    if ca_type not in connector_types.TYPES:
        raise t.error("type", f"expected one of {', '.join(connector_types.TYPES)}")
    # The connector parses the rest of its table itself (connectors never import the gateway).
    return CASettings(name=name, type=ca_type, options=dict(t.data))


def _profile(t: Table, name: str, cas: Mapping[str, CASettings]) -> ProfileSettings:
    ca = t.str("ca", "local")
    if ca not in cas:
        raise t.error("ca", f"names no CA; configured: {', '.join(sorted(cas)) or 'none'}")
    ekus = []
    for eku in t.strs("ekus", ("serverAuth", "clientAuth")):
        if eku not in EKU_NAMES and not re.fullmatch(r"\d+(\.\d+)+", eku):
            raise t.error("ekus", f"{eku!r} is neither serverAuth, clientAuth nor a dotted OID")
        ekus.append(EKU_NAMES.get(eku, eku))
    params = t.table("ca_params")
    for key, value in params.data.items():
        if not isinstance(value, str):
            raise params.error(key, "expected a string")
    key_types = t.strs("key_types", ("rsa", "ec"))
    for kt in key_types:
        if kt not in {"rsa", "ec"}:
            raise t.error("key_types", f"expected rsa and/or ec, got {kt!r}")
    profile = ProfileSettings(
        name=name,
        ca=ca,
        validity=timedelta(days=t.int("validity_days", 90, 1, 3650)),
        ekus=tuple(ekus),
        ca_params=dict(params.data),
        allow_wildcards=t.bool("allow_wildcards", True),
        allow_ip=t.bool("allow_ip", True),
        max_identifiers=t.int("max_identifiers", 100, 1, 1000),
        allowed_patterns=t.strs("allowed_patterns"),
        key_types=key_types,
        min_rsa_bits=t.int("min_rsa_bits", 2048, 1024, 16384),
        min_ec_bits=t.int("min_ec_bits", 256, 256, 384),
        cn_from_first_san=t.bool("cn_from_first_san"),
        approval_required=t.bool("approval_required"),
        description=t.str("description"),
        rfc2818=t.bool("rfc2818"),
        allow_key_reuse=t.bool("allow_key_reuse", True),
        acme_certs_authenticate_est=t.bool("acme_certs_authenticate_est"),
        max_wait=timedelta(hours=t.float("max_wait_hours", 168.0, 0.01)),
        renewal_window_start=_fraction(t, "renewal_window_start", 0.6),
        renewal_window_end=_fraction(t, "renewal_window_end", 0.9),
    )
    if profile.renewal_window_start >= profile.renewal_window_end:
        raise t.error("renewal_window_end", "must be greater than renewal_window_start")
    t.check_unknown()
    return profile


def _fraction(t: Table, name: str, default: float) -> float:
    value = t.float(name, default)
    if value > 1.0:
        raise t.error(name, f"expected a fraction of the validity period (0 to 1), got {value}")
    return value


def _jobs(t: Table) -> JobSettings:
    jobs = JobSettings(
        retry_base_seconds=t.float("retry_base_seconds", 2.0, 0.01),
        retry_cap_seconds=t.float("retry_cap_seconds", 300.0, 0.01),
        max_attempts=t.int("max_attempts", 10, 1, 1000),
        poll_base_seconds=t.float("poll_base_seconds", 5.0, 0.01),
        poll_cap_seconds=t.float("poll_cap_seconds", 600.0, 0.01),
        scan_period_seconds=t.float("scan_period_seconds", 1.0, 0.01),
        claim_seconds=t.float("claim_seconds", 300.0, 1.0),
        breaker_threshold=t.int("breaker_threshold", 5, 0, 1000),
        breaker_cooldown_seconds=t.float("breaker_cooldown_seconds", 60.0, 0.01),
        health_probe_seconds=t.float("health_probe_seconds", 30.0),
    )
    if jobs.retry_cap_seconds < jobs.retry_base_seconds:
        raise t.error("retry_cap_seconds", "must be at least retry_base_seconds")
    if jobs.poll_cap_seconds < jobs.poll_base_seconds:
        raise t.error("poll_cap_seconds", "must be at least poll_base_seconds")
    return jobs


def _url(t: Table, name: str) -> str:
    url = t.str(name)
    if url and not re.match(r"^https?://", url):
        raise t.error(name, f"expected an http:// or https:// URL, got {url!r}")
    return url


def _path(t: Table, name: str) -> Path | None:
    value = t.str(name)
    return Path(value) if value else None


def _admin(t: Table) -> AdminSettings:
    url = _url(t, "webhook_url")
    return AdminSettings(token=t.secret("token"), webhook_url=url,
                         webhook_timeout_seconds=t.float("webhook_timeout_seconds", 5.0, 0.1))


def _audit(t: Table) -> AuditSettings:
    fingerprint = t.str("anchor_key_fingerprint")
    if fingerprint and not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fingerprint):
        raise t.error("anchor_key_fingerprint", "expected SHA256:… as printed by "
                      f"`acme-gateway audit anchor-key`, got {fingerprint!r}")
    return AuditSettings(
        max_validity_days=t.int("max_validity_days", 398, 1, 36500),
        anchor_key_file=_path(t, "anchor_key_file"),
        anchor_log_file=_path(t, "anchor_log_file"),
        anchor_interval_seconds=t.float("anchor_interval_seconds", 60.0, 0.01),
        anchor_key_fingerprint=fingerprint,
        anchor_webhook_url=_url(t, "anchor_webhook_url"),
        anchor_webhook_timeout_seconds=t.float("anchor_webhook_timeout_seconds", 5.0, 0.1),
    )


def default_cas() -> dict[str, CASettings]:
    """The embedded default: one local CA with its key in a file under the data directory."""
    return {"local": CASettings(name="local", type="local", options={"type": "local"})}


def parse(data: Mapping[str, Any], source: str) -> Settings:
    """Turn a parsed TOML document into Settings, or raise ConfigError."""
    root = Table(source, "", data)
    server_t, storage_t = root.table("server"), root.table("storage")
    acme_t, validation_t = root.table("acme"), root.table("validation")
    jobs_t, admin_t, audit_t = root.table("jobs"), root.table("admin"), root.table("audit")
    server = _server(server_t)
    storage = _storage(storage_t)
    acme = _acme(acme_t)
    validation = _validation(validation_t)
    jobs, admin, audit = _jobs(jobs_t), _admin(admin_t), _audit(audit_t)
    for t in (server_t, storage_t, acme_t, validation_t, jobs_t, admin_t, audit_t):
        t.check_unknown()
    cas_t = root.table("cas")
    cas = {name: _ca(cas_t.table(name), name) for name in cas_t.data} or default_cas()
    profiles_t = root.table("profiles")
    profile_ts = {name: profiles_t.table(name) for name in profiles_t.data}
    # A profile's rate_limits sub-table is read here, so _profile's check sees it as known.
    rate_limits = ratelimit_settings.parse(
        root.table("rate_limits"), {n: t.table("rate_limits") for n, t in profile_ts.items()})
    profiles = {name: _profile(t, name, cas) for name, t in profile_ts.items()}
    retention = retention_settings.parse(root.table("retention"))
    if not profiles:
        profiles = {"default": ProfileSettings(name="default", ca=next(iter(cas)))}
    if acme.default_profile not in profiles:
        raise acme_t.error("default_profile",
                           f"names no profile; configured: {', '.join(profiles)}")
    extra = {k: v for k, v in data.items() if k not in root._read and isinstance(v, dict)}
    known_extra = {"est", "scep", "admin", "audit", "metrics"}
    for key in data:
        if key not in root._read and key not in known_extra:
            raise root.error(key,
                             "unknown section (check the spelling against config/gateway.toml)")
    return Settings(source, server, storage, acme, validation, cas, profiles, jobs, admin, audit,
                    rate_limits, retention, extra)


def warnings(settings: Settings) -> list[str]:
    """Things a valid config does that an operator should know about (check-config prints them)."""
    found = []
    for profile in settings.profiles.values():
        ca = settings.cas[profile.ca]
        if ca.type == "adcs" and ca.options.get("send_validity", True) is not False:
            found.append(
                f"profiles.{profile.name}: AD CS CA {ca.name!r} honours validity_days "
                f"({profile.validity.days}) only with EDITF_ATTRIBUTEENDDATE set on the CA "
                "(certutil -setreg policy\\EditFlags +EDITF_ATTRIBUTEENDDATE) and never beyond "
                "the template's validity period; otherwise the template decides")
    return found


def load(path: Path | None) -> Settings:
    """Read the config file, or return the embedded defaults when ``path`` is None."""
    if path is None:
        return parse({}, "<embedded defaults>")
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), "-", f"cannot read the file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML: {exc}") from exc
    return parse(data, str(path))
