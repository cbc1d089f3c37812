"""HTTP-01 (RFC 8555 §8.3, RFC 8738 §7 for IP identifiers).

GET ``http://<identifier>:<http01_port>/.well-known/acme-challenge/<token>``.
Each hop (the first URL and every redirect) is resolved by our resolver, passed
through the network guard, and requested from the checked IP literal with the
real name in ``Host`` (and in SNI for https): nothing else resolves a name.
Redirects are followed by hand so that scheme, port and address are checked
before every hop. Bodies are read up to ``max_body_bytes`` and no further.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from typing import NamedTuple

from yarl import URL

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.attempt import Attempt, ChallengeError
from gateway.validation.dnsclient import DnsClient
from gateway.validation.httpfetch import (
    ConnectFailed,
    IncompleteResponse,
    MalformedResponse,
    Response,
    fetch,
    request_bytes,
)
from gateway.validation.netguard import NetworkGuard, parse_address
from gateway.validation.settings import ValidationSettings
from gateway.validation.targets import host_header, note_address, resolve_target, try_in_order

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
SHOWN_BODY_CHARS = 64
CHALLENGE_PATH = "/.well-known/acme-challenge/"
# Hosts and tokens that yarl leaves as they are (see challenge_hop).
_PLAIN_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?\Z")
_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]+\Z")
USER_AGENT = "acme-gateway-validator/0.1"


def redirect_tls_context() -> ssl.SSLContext:
    """TLS for a redirect to https: any certificate (RFC 8555 §8.3 proves control, not PKI)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


class Hop(NamedTuple):
    """One URL to request, in the parts the request and its record use (as yarl gives them)."""

    shown: str  # str(URL): in records and messages
    scheme: str
    host: str  # URL.raw_host: the A-label form or the IP literal, without brackets
    port: int  # explicit, or the scheme's default
    target: str  # URL.raw_path_qs
    url: URL | None = None  # the URL itself, when one was made


def hop_of(url: URL) -> Hop:
    """The parts of ``url`` (an http or https URL with a host)."""
    port = url.port or DEFAULT_PORTS[url.scheme]
    return Hop(str(url), url.scheme, url.raw_host or "", port, url.raw_path_qs, url)


def challenge_hop(host: str, port: int, token: str) -> Hop:
    """The challenge URL ``http://host:port/.well-known/acme-challenge/token``.

    Made by hand when neither host nor token needs any encoding (lower-case
    names and IPv4 addresses, base64url tokens), which yarl would leave as they
    are: building and printing a URL cost as much as the rest of a hop's
    bookkeeping. Anything else goes through yarl.
    """
    path = f"{CHALLENGE_PATH}{token}"
    if _PLAIN_HOST.match(host) and _PLAIN_TOKEN.match(token):
        authority = host if port == DEFAULT_PORTS["http"] else f"{host}:{port}"
        return Hop(f"http://{authority}{path}", "http", host, port, path)
    return hop_of(URL.build(scheme="http", host=host, port=port, path=path))


class Http01Checker:
    """Runs the HTTP-01 check of one attempt."""

    def __init__(self, dns: DnsClient, guard: NetworkGuard, settings: ValidationSettings) -> None:
        self._dns = dns
        self._guard = guard
        self._settings = settings
        self._redirect_ports = {settings.http01_port, 443, *settings.http01_redirect_ports}
        self._tls = redirect_tls_context()

    async def check(
        self, task: ChallengeTask, attempt: Attempt, remaining: Callable[[], float]
    ) -> None:
        """Fetch the key authorization, following allowed redirects; raise ChallengeError if not."""
        hop = challenge_hop(task.identifier_value, self._settings.http01_port, task.token)
        blocked_kind = (
            ErrorKind.REJECTED_IDENTIFIER if task.identifier_type == "ip" else ErrorKind.DNS
        )
        seen: set[str] = set()
        for _ in range(self._settings.max_redirects + 1):
            seen.add(hop.shown)
            record = attempt.record(url=hop.shown, hostname=hop.host, port=hop.port)
            try:
                location = await self._hop(hop, task, attempt, record, remaining, blocked_kind)
            except ChallengeError as exc:
                record["error"] = f"{exc.kind.value}: {exc.detail}"
                raise
            if location is None:
                return
            hop = self._redirect_target(hop, location, seen, record)
            blocked_kind = ErrorKind.CONNECTION
        raise ChallengeError(
            ErrorKind.CONNECTION,
            f"more than {self._settings.max_redirects} redirects from {task.identifier_value}",
        )

    async def _hop(
        self,
        hop: Hop,
        task: ChallengeTask,
        attempt: Attempt,
        record: dict[str, object],
        remaining: Callable[[], float],
        blocked_kind: ErrorKind,
    ) -> str | None:
        """One request: the redirect location, or None when the key authorization matched."""
        target = await resolve_target(hop.host, self._dns, self._guard, attempt, blocked_kind)
        # Each address as text once: ipaddress builds the text anew each time it is asked.
        shown = record["addressesResolved"] = [str(a) for a in target.resolved]
        return await try_in_order(
            target,
            attempt,
            remaining,
            lambda ip: self._fetch(hop, shown[target.resolved.index(ip)], task, attempt, record),
        )

    async def _fetch(
        self,
        hop: Hop,
        address: str,
        task: ChallengeTask,
        attempt: Attempt,
        record: dict[str, object],
    ) -> str | None:
        note_address(record, address)
        attempt.enter(ErrorKind.CONNECTION, f"fetching {hop.shown} from {address}")
        response = await self._get(hop, address)
        if response.status in REDIRECT_STATUSES:
            return self._location(response, hop)
        if response.status != 200:
            detail = f"{hop.shown} answered HTTP {response.status}, expected 200"
            raise ChallengeError(ErrorKind.UNAUTHORIZED, detail)
        if response.too_big:
            detail = (
                f"{hop.shown}: response body is larger than {self._settings.max_body_bytes} bytes"
            )
            raise ChallengeError(ErrorKind.INCORRECT_RESPONSE, detail)
        _compare(response.body, task.key_authorization, hop.shown)
        return None

    async def _get(self, hop: Hop, address: str) -> Response:
        """GET the hop's URL from ``address``, with transport failures told apart by kind."""
        url, port = hop.shown, hop.port
        tls = self._tls if hop.scheme == "https" else None
        sni = hop.host if tls and parse_address(hop.host) is None else None  # names only
        try:
            request = request_bytes(
                host_header(hop.host, port, DEFAULT_PORTS[hop.scheme]), hop.target, USER_AGENT
            )
            return await fetch(address, port, request, self._settings.max_body_bytes, tls, sni)
        except ValueError as exc:
            raise ChallengeError(ErrorKind.CONNECTION, f"{url} cannot be requested: {exc}") from exc
        except ssl.SSLError as exc:
            detail = f"TLS with {address} for {url} failed: {exc.reason or exc}"
            raise ChallengeError(ErrorKind.TLS, detail, retriable=True) from exc
        except ConnectFailed as exc:
            detail = f"cannot connect to {address} port {port} for {url}: {exc}"
            raise ChallengeError(ErrorKind.CONNECTION, detail, retriable=True) from exc
        except MalformedResponse as exc:
            raise ChallengeError(ErrorKind.CONNECTION, f"{url}: {exc}") from exc
        except (OSError, IncompleteResponse) as exc:
            detail = f"connection to {address} port {port} for {url} failed: {_reason(exc)}"
            raise ChallengeError(ErrorKind.CONNECTION, detail, retriable=True) from exc

    def _location(self, response: Response, hop: Hop) -> str:
        location = response.headers.get("location", "")
        if not location:
            detail = f"{hop.shown} answered HTTP {response.status} without a Location"
            raise ChallengeError(ErrorKind.CONNECTION, detail)
        return location

    def _redirect_target(
        self, hop: Hop, location: str, seen: set[str], record: dict[str, object]
    ) -> Hop:
        url = hop.url or URL(hop.shown, encoded=True)
        try:
            target = url.join(URL(location)).with_fragment(None)
        except ValueError as exc:
            raise _redirect_error(
                record, f"{url} redirects to an invalid URL {location!r}"
            ) from exc
        if target.scheme not in DEFAULT_PORTS or not target.host:
            raise _redirect_error(
                record,
                f"{url} redirects to {location!r}: only http(s) URLs with a host are followed",
            )
        port = target.port or DEFAULT_PORTS[target.scheme]
        if port not in self._redirect_ports:
            allowed = ", ".join(str(p) for p in sorted(self._redirect_ports))
            raise _redirect_error(
                record, f"{url} redirects to port {port}; allowed ports are {allowed}"
            )
        if str(target) in seen:
            raise _redirect_error(record, f"redirect loop: {url} leads back to {target}")
        return hop_of(target)


def _redirect_error(record: dict[str, object], detail: str) -> ChallengeError:
    record["error"] = f"{ErrorKind.CONNECTION.value}: {detail}"
    return ChallengeError(ErrorKind.CONNECTION, detail)


def _compare(body: bytes, key_authorization: str, url: str) -> None:
    """The body must be the key authorization, give or take surrounding whitespace."""
    if body.strip() == key_authorization.encode():
        return
    shown = body.strip()[:SHOWN_BODY_CHARS].decode("utf-8", "replace")
    raise ChallengeError(
        ErrorKind.INCORRECT_RESPONSE,
        f"{url} returned {shown!r}, which is not the key authorization of this challenge: "
        f"expected {key_authorization!r}",
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
