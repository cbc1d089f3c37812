"""Console sessions and CSRF tokens, derived from the admin token (no server-side state).

A session cookie is ``<expiry>.<operator>.<nonce>.<mac>``: the MAC, keyed by a
key derived from the admin token, covers the rest, so every serving process
(``serve --workers N``) accepts it and changing the token ends every session.
A form's CSRF token is a second MAC over the session cookie: a page from
another origin can neither read the cookie (HttpOnly, SameSite=Strict) nor
compute the token. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

COOKIE = "gw_console"
LIFETIME_SECONDS = 8 * 3600
OPERATOR = re.compile(r"[A-Za-z0-9._@-]{1,64}")


@dataclass(frozen=True)
class Session:
    """A logged-in operator and the cookie that proves it."""

    operator: str
    cookie: str


class ConsoleSessions:
    """Issues and checks session cookies and CSRF tokens."""

    def __init__(self, admin_token: str, lifetime_seconds: int = LIFETIME_SECONDS) -> None:
        self._token = admin_token.encode()
        self._key = hmac.new(self._token, b"acme-gateway console session", "sha256").digest()
        self.lifetime_seconds = lifetime_seconds

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the admin token (constant time, whatever its length)."""
        return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                                   hashlib.sha256(self._token).digest())

    def _mac(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), "sha256").hexdigest()

    def issue(self, operator: str, now: float | None = None) -> Session:
        """A new session for ``operator`` (already checked against OPERATOR)."""
        expiry = int((now or time.time()) + self.lifetime_seconds)
        body = f"{expiry}.{operator}.{secrets.token_urlsafe(12)}"
        return Session(operator, f"{body}.{self._mac(body)}")

    def check(self, cookie: str, now: float | None = None) -> Session | None:
        """The session a cookie proves, or None (forged, expired, malformed)."""
        parts = cookie.split(".")
        if len(parts) != 4 or len(cookie) > 256:
            return None
        body = ".".join(parts[:3])
        if not hmac.compare_digest(self._mac(body).encode(), parts[3].encode()):
            return None
        if not parts[0].isdigit() or int(parts[0]) < (now or time.time()):
            return None
        return Session(parts[1], cookie)

    def csrf(self, session: Session) -> str:
        """The CSRF token of a session's forms."""
        return self._mac(f"csrf:{session.cookie}")

    def csrf_matches(self, session: Session, given: str) -> bool:
        """Whether a submitted form carries this session's CSRF token."""
        # As bytes: compare_digest refuses str with non-ASCII characters.
        return hmac.compare_digest(self.csrf(session).encode(), given.encode())
