"""Profile rules for every entry point: the one checker ACME and EST both call.

A profile (``[profiles.NAME]``) decides which CA issues and what a request must
satisfy: identifiers (patterns, wildcards, IP addresses, how many), the CSR's
key (type, minimum size, reuse), the EKUs it may ask for and RFC 2818 naming.
An External Account Binding key may narrow an account further to some profiles
and domains. Each refusal is a GatewayError whose detail names the profile and
the rule, and is recorded in the audit trail as ``policy_refused``; EST and
ACME therefore refuse the same request for the same reason.
"""

from __future__ import annotations

import fnmatch
import re

from cryptography import x509

from gateway import audit
from gateway.config import ProfileSettings, Settings
from gateway.core import csr as csrs
from gateway.core import policy
from gateway.errors import ErrorKind, GatewayError, Subproblem
from gateway.model.records import EabKey, Identifier
from gateway.model.store import Store


def domain_allowed(patterns: tuple[str, ...], value: str) -> bool:
    """True if ``value`` matches a glob, or a ``re:`` regular expression, of ``patterns``."""
    for pattern in patterns:
        if pattern.startswith("re:"):
            if re.fullmatch(pattern[3:], value):
                return True
        elif fnmatch.fnmatchcase(value, pattern.lower()):
            return True
    return False


class ProfilePolicy:
    """Selects profiles and applies their rules; refusals are audited here, once."""

    def __init__(self, settings: Settings, store: Store, trail: audit.AuditTrail) -> None:
        self.settings = settings
        self.store = store
        self.trail = trail

    async def select(self, name: str | None, *, actor: str,
                     binding: EabKey | None = None) -> ProfileSettings:
        """The profile a request asked for (or the default one), if it may use it.

        With no name, an account bound to an EAB key that lists profiles gets the
        first of them: clients such as certbot never send a profile.
        """
        try:
            return self._select(name, binding)
        except GatewayError as exc:
            await self._refused(exc, actor=actor, profile=name or "")
            raise

    def _select(self, name: str | None, binding: EabKey | None) -> ProfileSettings:
        allowed = binding.profiles if binding is not None else ()
        chosen = name or (allowed[0] if allowed else self.settings.acme.default_profile)
        profile = self.settings.profiles.get(chosen)
        if profile is None:
            raise GatewayError(ErrorKind.INVALID_PROFILE,
                               f"unknown profile {chosen!r}; offered: "
                               f"{', '.join(sorted(self.settings.profiles))}")
        if allowed and chosen not in allowed:
            assert binding is not None
            raise GatewayError(ErrorKind.INVALID_PROFILE,
                               f"profile {chosen!r} is not allowed for this account; its external "
                               f"account key {binding.id!r} allows: {', '.join(allowed)}")
        return profile

    async def check_identifiers(self, profile: ProfileSettings, idents: list[Identifier], *,
                                actor: str, binding: EabKey | None = None,
                                request_id: str = "") -> tuple[Identifier, ...]:
        """Normalised identifiers, if the profile and the account's EAB key allow them all."""
        try:
            checked = policy.check_identifiers(profile, idents)
            if binding is not None and binding.allowed_domains:
                _check_binding_domains(binding, checked)
            return checked
        except GatewayError as exc:
            await self._refused(exc, actor=actor, profile=profile.name,
                                identifiers=tuple(i.value for i in idents), request_id=request_id)
            raise

    async def check_csr(self, profile: ProfileSettings, parsed: csrs.ParsedCSR, *, actor: str,
                        request_id: str = "") -> None:
        """The CSR's key, EKUs and naming against the profile; key reuse if forbidden."""
        try:
            check_csr_static(profile, parsed)
            if not profile.allow_key_reuse and await self._key_reused(parsed):
                raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                                   f"this public key is already certified and profile "
                                   f"{profile.name!r} forbids key reuse (allow_key_reuse = false);"
                                   " generate a new key")
        except GatewayError as exc:
            found = tuple(sorted(i.value for i in parsed.identifiers()))
            await self._refused(exc, actor=actor, profile=profile.name, identifiers=found,
                                request_id=request_id)
            raise

    async def _key_reused(self, parsed: csrs.ParsedCSR) -> bool:
        """True if another request got a certificate for this key.

        The same CSR sent again (an EST device re-POSTing after a 202) is the same
        request, not a reuse.
        """
        certified = await self.store.certified_csrs(parsed.spki_sha256, 20)
        return any(der != parsed.der for der in certified)

    async def _refused(self, exc: GatewayError, *, actor: str, profile: str,
                       identifiers: tuple[str, ...] = (), request_id: str = "") -> None:
        ca = self.settings.profiles[profile].ca if profile in self.settings.profiles else ""
        await self.trail.record(audit.POLICY_REFUSED, actor=actor, identifiers=identifiers,
                                profile=profile, ca=ca, result=exc.kind.value,
                                detail=exc.detail, request_id=request_id)


def _check_binding_domains(binding: EabKey, idents: tuple[Identifier, ...]) -> None:
    refused = [i for i in idents if not domain_allowed(binding.allowed_domains, i.value)]
    if not refused:
        return
    subs = tuple(Subproblem(ErrorKind.REJECTED_IDENTIFIER,
                            f"{i.type} identifier {i.value!r} is not among the domains allowed to "
                            f"external account key {binding.id!r}", i.type, i.value)
                 for i in refused)
    raise GatewayError(ErrorKind.REJECTED_IDENTIFIER, "; ".join(s.detail for s in subs), subs)


def check_csr_static(profile: ProfileSettings, parsed: csrs.ParsedCSR) -> None:
    """The rules that need nothing but the profile and the CSR."""
    csrs.check_key(parsed, profile.key_types, profile.min_rsa_bits)
    if parsed.key_type == "ec" and parsed.key_bits < profile.min_ec_bits:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"EC key of {parsed.key_bits} bits is too small; profile "
                           f"{profile.name!r} requires at least {profile.min_ec_bits}")
    _check_ekus(profile, parsed)
    _check_not_a_ca(profile, parsed)
    if profile.rfc2818:
        _check_rfc2818(profile, parsed)


def _check_ekus(profile: ProfileSettings, parsed: csrs.ParsedCSR) -> None:
    ekus = parsed.extension(x509.ExtendedKeyUsage)
    if ekus is None:
        return
    extra = sorted(oid.dotted_string for oid in ekus if oid.dotted_string not in profile.ekus)
    if extra:
        raise GatewayError(ErrorKind.BAD_CSR,
                           f"the CSR asks for extended key usage {', '.join(extra)}, which profile "
                           f"{profile.name!r} does not grant (ekus)")


def _check_not_a_ca(profile: ProfileSettings, parsed: csrs.ParsedCSR) -> None:
    """End-entity profiles only: no CA basic constraint, no certificate or CRL signing usage."""
    constraints = parsed.extension(x509.BasicConstraints)
    is_ca = constraints is not None and constraints.ca
    usage = parsed.extension(x509.KeyUsage)
    signs = usage is not None and (usage.key_cert_sign or usage.crl_sign)
    if is_ca or signs:
        raise GatewayError(ErrorKind.BAD_CSR,
                           f"the CSR asks for a CA certificate (basicConstraints CA or "
                           f"keyCertSign/cRLSign key usage); profile {profile.name!r} issues "
                           "end-entity certificates only")


def _check_rfc2818(profile: ProfileSettings, parsed: csrs.ParsedCSR) -> None:
    sans = set(parsed.dns_names) | {csrs.normalise_ip(a) for a in parsed.ip_addresses}
    if not sans:
        raise GatewayError(ErrorKind.BAD_CSR,
                           f"profile {profile.name!r} follows RFC 2818: the CSR must list its "
                           "names in a subjectAltName extension, not only in the CN")
    if parsed.common_name is not None \
            and csrs.identifier_for_name(parsed.common_name).value not in sans:
        raise GatewayError(ErrorKind.BAD_CSR,
                           f"profile {profile.name!r} follows RFC 2818: the CN "
                           f"{parsed.common_name!r} must be one of the subjectAltNames")
