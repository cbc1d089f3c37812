"""The bad-input battery in CI: thousands of generated requests, no 5xx, no hang.

``BADINPUT_CASES`` and ``BADINPUT_SEED`` change the run (a failure report names
the family, method and path of each failing case; the same seed replays it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.badinput.case import MAIN, PARSER, TRANSPORT
from tests.badinput.runner import run, still_serving
from tests.badinput.server import Target
from tests.badinput.session import battery_target

CASES = int(os.environ.get("BADINPUT_CASES", "2400"))
SEED = int(os.environ.get("BADINPUT_SEED", "20261204"))


@pytest.fixture
async def battery(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, Target]]:
    """The served gateway with its prepared account and resources."""
    async with battery_target(tmp_path) as served:
        yield served


async def test_bad_input_is_refused_cleanly(
        battery: tuple[aiohttp.ClientSession, Target]) -> None:
    session, target = battery
    report = await run(session, target, SEED, CASES, groups=(MAIN, PARSER))
    assert not report.failures, report.summary()
    families = set(report.cases)
    assert sum(report.cases.values()) >= min(CASES, 2000) * 0.95, report.summary()
    for prefix in ("acme.body", "acme.jws", "acme.header.", "acme.payload.", "acme.identifiers",
                   "acme.csr", "acme.path", "acme.renewal_info", "acme.replaces", "est.body",
                   "est.names", "est.headers", "est.path", "scep.body", "scep.get", "scep.path",
                   "http.raw", "admin.api", "admin.console"):
        assert any(f.startswith(prefix) for f in families), (prefix, families)
    assert report.statuses[400] > CASES // 4, report.summary()  # most reach a real refusal
    await still_serving(session, target)


async def test_oversize_bodies_are_413(battery: tuple[aiohttp.ClientSession, Target]) -> None:
    session, target = battery
    report = await run(session, target, SEED, CASES, groups=(TRANSPORT,))
    assert report.cases, "no transport cases generated"
    assert not report.failures, report.summary()
    await still_serving(session, target)
