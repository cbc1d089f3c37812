"""The hash chain of the audit trail: pure functions shared by the store and ``audit verify``.

Each audit row stores the SHA-256 of the row before it (``prev_hash``) and its
own ``hash``, computed over ``prev_hash`` and the row's stored column values in
a fixed order. Changing any value of a row changes its hash; removing a row
breaks the next row's ``prev_hash`` and leaves a gap in ``seq``. So a reader
who recomputes the chain finds the first row that is not what was written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from gateway.jsontext import compact_unicode

GENESIS = "0" * 64

# The hashed columns, in hashing order (prev_hash and hash themselves are not hashed).
HASHED_COLUMNS = ("seq", "at", "event", "actor", "identifiers", "profile", "ca", "result",
                  "detail", "request_id", "source", "extra")


def link(prev_hash: str, values: Sequence[Any]) -> str:
    """The hash of a row whose hashed column values are ``values`` and predecessor ``prev_hash``."""
    # Compact, non-ASCII kept as is: the text every existing row was hashed over.
    body = compact_unicode([prev_hash, *values])
    return hashlib.sha256(body.encode()).hexdigest()
