"""Settings of the validation authority (the ``[validation]`` table of the config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.validation.challenges import CHALLENGE_TYPES

# Networks a validator must never connect to, whatever the settings say about
# loopback and private ranges: cloud metadata, link-local, multicast, unspecified.
DEFAULT_BLOCKED_NETWORKS: tuple[str, ...] = (
    "0.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "100.100.100.200/32",
    "::/128",
    "fe80::/10",
    "ff00::/8",
    "fd00:ec2::254/128",
)


@dataclass(frozen=True)
class ValidationSettings:
    """How challenges are validated; see config/gateway.toml for each option."""

    # DNS resolvers as (host, port); empty means the system resolver configuration.
    resolvers: tuple[tuple[str, int], ...] = ()
    http01_port: int = 80
    tlsalpn01_port: int = 443
    # Ports an HTTP-01 redirect may lead to (besides http01_port for http and 443 for https).
    http01_redirect_ports: tuple[int, ...] = (80, 443)
    max_redirects: int = 10
    max_body_bytes: int = 8192
    attempt_timeout_seconds: float = 10.0
    attempts: int = 3
    retry_backoff_seconds: float = 1.0
    concurrency: int = 2000
    per_target_concurrency: int = 20
    blocked_networks: tuple[str, ...] = DEFAULT_BLOCKED_NETWORKS
    allow_loopback: bool = False
    allow_private: bool = True
    # CAA: the issuer domain names this gateway's CAs answer to; empty disables CAA checks.
    caa_identities: tuple[str, ...] = ()
    caa_recheck_after_seconds: int = 8 * 3600
    # Challenge types offered for each new authorization.
    challenge_types: tuple[str, ...] = field(default=tuple(CHALLENGE_TYPES))
