"""Material made before the measured window, so the window holds only per-order protocol work.

The load generator shares the machine with the server it measures: a key and
a CSR made inside the window (~0.18 ms of client CPU per P-256 order) would be
taken from the server and counted as client cost per order. Order names are
deterministic (``OrderFlow.names_for``), so every order's finalize payload can
be made ahead; accounts and keep-alive connections are opened ahead too (see
``cli.run_acme``).

Memory stays bounded: only the DER CSR is kept (~0.3 kB per order; the key is
not needed after signing), at most ``PREPARE_LIMIT`` orders ahead, and
each one is dropped when its order takes it. Orders beyond what was prepared
make their CSR in the window and are counted as ``csr_in_window``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

from loadtest.csr import make_csr, new_key

# 200 000 prepared CSRs: ~70 MB and ~36 s of one core for P-256 (RSA-2048: far slower).
PREPARE_LIMIT = 200_000
# Closed loop bounded by --duration only: orders per second assumed when sizing the stock.
ASSUMED_RATE = 300.0
MAX_COMMON_NAME = 64  # ub-common-name (RFC 5280): longer first names go without a CN


def csr_der(key_type: str, names: list[str]) -> bytes:
    """A fresh key's DER CSR for ``names`` (CN = first name when it fits)."""
    common_name = names[0] if len(names[0]) <= MAX_COMMON_NAME else None
    return make_csr(new_key(key_type), names, common_name)


def planned_orders(count: int, rate: float, duration: float, unlimited: int) -> int:
    """How many orders a plan will start, as far as it can be known before it runs.

    ``count`` below ``unlimited`` is exact; ``--rate`` with ``--duration``
    starts ``rate × duration`` orders; a closed loop bounded by ``--duration``
    alone is guessed at ``ASSUMED_RATE`` orders per second.
    """
    planned = count if count < unlimited else 0
    if duration:
        by_time = math.ceil(duration * (rate or ASSUMED_RATE)) + 1
        planned = min(planned, by_time) if planned else by_time
    return min(planned, PREPARE_LIMIT)


class CsrStock:
    """CSRs for unit (order, enrollment) indexes ``0..prepared-1``, made before the window.

    ``take`` hands each one out once and forgets it; an index that was not
    prepared is made on the spot and counted in ``counters["csr_in_window"]``,
    so a report shows when the window paid for keys.
    """

    def __init__(
        self, key_type: str, names_for: Callable[[int], list[str]], counters: Counter[str]
    ) -> None:
        self.key_type = key_type
        self.names_for = names_for
        self.counters = counters
        self._stock: list[bytes | None] = []

    def fill(self, count: int) -> None:
        """Make the CSRs of units ``0..count-1`` (replacing any earlier stock)."""
        self._stock = [csr_der(self.key_type, self.names_for(i)) for i in range(count)]

    @property
    def prepared(self) -> int:
        """How many orders were prepared by the last ``fill``."""
        return len(self._stock)

    def take(self, index: int) -> bytes:
        """Unit ``index``'s DER CSR, from the stock when it was prepared."""
        if index < len(self._stock):
            csr = self._stock[index]
            if csr is not None:
                self._stock[index] = None  # a taken CSR is never sent again: free it now
                return csr
        self.counters["csr_in_window"] += 1
        return csr_der(self.key_type, self.names_for(index))
