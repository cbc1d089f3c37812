"""The registered domain of a name: what "certificates per registered domain" counts.

The registered domain is the public suffix plus one label (``example.co.uk`` for
``a.b.example.co.uk``), from the Public Suffix List that the
``publicsuffixlist`` package ships (no download at run time). A name that is
itself a public suffix, or not under any, counts as itself; an IP address too.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList

from gateway.model.records import Identifier


@functools.cache  # parsing the list takes a few milliseconds; once per process
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def registered_domain(identifier: Identifier) -> str:
    """The registered domain of a DNS identifier (wildcard or not), or an IP address as is."""
    if identifier.type != "dns":
        return identifier.value
    return _registered(identifier.value.lower().removeprefix("*.").rstrip("."))


# An order's names are looked up at newOrder and again when its certificate is
# counted, and renewals repeat names: a lookup walks up to seven suffixes.
@functools.lru_cache(maxsize=4096)
def _registered(name: str) -> str:
    return _suffixes().privatesuffix(name) or name
