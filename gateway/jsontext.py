"""Compact JSON text from one encoder built once.

``json.dumps`` builds a new C encoder on every call (``JSONEncoder.iterencode``
sets one up per one-shot encoding), which costs more than encoding the small
objects this gateway writes: response bodies, JSON columns, audit rows, about
thirty per certificate. Encoders made here once give the same text as
``json.dumps(value, separators=(",", ":"))`` (or with ``ensure_ascii=False``)
at a third of the cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _stdlib
from typing import Any


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encoder(ensure_ascii: bool) -> Callable[[Any], str]:
    make = getattr(_stdlib, "c_make_encoder", None)  # absent without the C accelerator
    if make is None:
        slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii)
        return slow.encode
    escape = _stdlib.encode_basestring_ascii if ensure_ascii else _stdlib.encode_basestring
    # No circular-reference check (markers None): what is encoded here is built from
    # plain values and never refers to itself; allow_nan as json.dumps.
    fast = make(None, _refuse, escape, None, ":", ",", False, False, True)

    def encode(value: Any) -> str:
        if isinstance(value, str):  # the C encoder wants a container or a scalar it chunks
            return str(escape(value))
        return "".join(fast(value, 0))

    return encode


compact: Callable[[Any], str] = _encoder(ensure_ascii=True)
"""``json.dumps(value, separators=(",", ":"))``, ASCII only."""

compact_unicode: Callable[[Any], str] = _encoder(ensure_ascii=False)
"""``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``."""
