"""DNS-01 (RFC 8555 §8.4): a TXT record at ``_acme-challenge.<name>``.

The expected value is base64url(SHA-256(key authorization)) without padding.
Any of several TXT records may match (a client validating a name and its
wildcard at once publishes two). CNAMEs are followed by the DNS client. A TXT
record made of several strings counts as their concatenation.
"""

from __future__ import annotations

import base64
import hashlib

import dns.rdatatype
import dns.rdtypes.ANY.TXT

from gateway.errors import ErrorKind
from gateway.validation import ChallengeTask
from gateway.validation.attempt import Attempt, ChallengeError
from gateway.validation.dnsclient import DnsClient, NoRecords

SHOWN_VALUES = 3
SHOWN_VALUE_CHARS = 64


def txt_digest(key_authorization: str) -> str:
    """The TXT value that proves control: base64url(SHA-256(key authorization)), unpadded."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Dns01Checker:
    """Runs the DNS-01 check of one attempt."""

    def __init__(self, dns: DnsClient) -> None:
        self._dns = dns

    async def check(self, task: ChallengeTask, attempt: Attempt) -> None:
        """Look up the TXT records and compare each with the expected digest."""
        if task.identifier_type != "dns":
            raise ChallengeError(
                ErrorKind.MALFORMED,
                f"dns-01 cannot validate {task.identifier_type} identifier "
                f"{task.identifier_value}; use http-01 or tls-alpn-01 (RFC 8738 §7)",
            )
        name = "_acme-challenge." + task.identifier_value.rstrip(".")
        record = attempt.record(hostname=task.identifier_value, txtName=name)
        try:
            values = await self._lookup(name, attempt)
        except ChallengeError as exc:
            record["error"] = f"{exc.kind.value}: {exc.detail}"
            raise
        record["txtRecords"] = len(values)
        expected = txt_digest(task.key_authorization).encode()
        if expected in values:
            return
        shown = ", ".join(_show(v) for v in values[:SHOWN_VALUES])
        more = f" and {len(values) - SHOWN_VALUES} more" if len(values) > SHOWN_VALUES else ""
        error = ChallengeError(
            ErrorKind.INCORRECT_RESPONSE,
            f"no TXT record at {name} matches this challenge: expected {expected.decode()!r}, "
            f"found {shown}{more}",
        )
        record["error"] = f"{error.kind.value}: {error.detail}"
        raise error

    async def _lookup(self, name: str, attempt: Attempt) -> list[bytes]:
        attempt.enter(ErrorKind.DNS, f"looking up TXT {name}")
        try:
            rdatas = await self._dns.records(name, dns.rdatatype.TXT)
        except NoRecords as exc:
            # The applicant has not published the record (yet): their DNS answered, so no retry.
            raise ChallengeError(
                ErrorKind.UNAUTHORIZED, f"no TXT record found at {name}: {exc.detail}"
            ) from exc
        return [b"".join(r.strings) for r in rdatas if isinstance(r, dns.rdtypes.ANY.TXT.TXT)]


def _show(value: bytes) -> str:
    text = value[:SHOWN_VALUE_CHARS].decode("ascii", "replace")
    return repr(text + ("…" if len(value) > SHOWN_VALUE_CHARS else ""))
