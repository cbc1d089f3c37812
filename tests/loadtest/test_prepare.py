"""Keys and CSRs made ahead of the measured window: sizing, hand-out once, late ones counted."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography import x509

from loadtest.prepare import PREPARE_LIMIT, CsrStock, csr_der, planned_orders

UNLIMITED = 2**62


def names_for(index: int) -> list[str]:
    return [f"o{index}.loadtest.test", f"n1.o{index}.loadtest.test"]


def sans(csr: bytes) -> list[str]:
    request = x509.load_der_x509_csr(csr)
    extension = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return extension.value.get_values_for_type(x509.DNSName)


def test_prepared_csrs_carry_each_orders_names_and_are_handed_out_once() -> None:
    counters: Counter[str] = Counter()
    stock = CsrStock("ec", names_for, counters)
    stock.fill(3)
    assert stock.prepared == 3
    first = stock.take(1)
    assert sans(first) == names_for(1)
    assert counters["csr_in_window"] == 0
    # Taken once: the stock no longer holds it, a second take makes a new one (counted).
    again = stock.take(1)
    assert again != first and sans(again) == names_for(1)
    assert counters["csr_in_window"] == 1


def test_orders_beyond_the_stock_make_their_csr_late_and_are_counted() -> None:
    counters: Counter[str] = Counter()
    stock = CsrStock("ec", names_for, counters)
    stock.fill(1)
    assert sans(stock.take(5)) == names_for(5)
    assert counters["csr_in_window"] == 1


def test_long_first_name_goes_without_common_name() -> None:
    long_name = "a" * 60 + ".loadtest.test"
    request = x509.load_der_x509_csr(csr_der("ec", [long_name]))
    assert list(request.subject) == []
    short = x509.load_der_x509_csr(csr_der("ec", ["x.test"]))
    assert short.subject.rfc4514_string() == "CN=x.test"


@pytest.mark.parametrize(
    ("count", "rate", "duration", "expected"),
    [
        (800, 0.0, 0.0, 800),  # -n: exact
        (10**9, 0.0, 0.0, PREPARE_LIMIT),  # capped: memory stays bounded
        (UNLIMITED, 20.0, 10.0, 201),  # --rate x --duration
        (50, 20.0, 10.0, 50),  # -n smaller than the time bound
        (UNLIMITED, 0.0, 2.0, 601),  # closed loop, --duration only: assumed rate
    ],
)
def test_planned_orders(count: int, rate: float, duration: float, expected: int) -> None:
    assert planned_orders(count, rate, duration, UNLIMITED) == expected
