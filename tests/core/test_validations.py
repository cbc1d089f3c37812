"""Validations a dead node left in ``processing`` are taken over by a live one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.core.orders import OrderService
from gateway.core.validations import ValidationRunner
from gateway.model.clock import FakeClock
from gateway.model.records import PROCESSING, VALID
from gateway.model.store import Insert
from gateway.storage.sqlite import SQLiteStore
from tests.acme.support import FakeValidator, make_settings
from tests.storage.models import NOW, account, authz, order


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "gw.db")
    await s.open()
    yield s
    await s.close()


def runner(tmp_path: Path, store: SQLiteStore, validator: FakeValidator) -> ValidationRunner:
    settings = make_settings(tmp_path)
    return ValidationRunner(settings, store, OrderService(settings, store, FakeClock(NOW)),
                            validator)


async def _left_processing(store: SQLiteStore, authz_id: str) -> None:
    z = authz(authz_id, "o1")
    busy = replace(z, challenges=(replace(z.challenges[0], status=PROCESSING),))
    await store.apply([Insert(account("a1")), Insert(order("o1")), Insert(busy)])


async def test_a_validation_processing_at_two_looks_is_adopted(
        tmp_path: Path, store: SQLiteStore) -> None:
    await _left_processing(store, "z-o1")
    validator = FakeValidator()
    node = runner(tmp_path, store, validator)
    assert await node.adopt_orphans() == 0  # first look: it may be running elsewhere
    assert await node.adopt_orphans() == 1  # still processing a period later: orphaned
    await asyncio.gather(*node._tasks)  # the adopted validation records its outcome
    assert [t.identifier_value for t in validator.tasks] == ["example.com"]
    done = await store.get_authz("z-o1")
    assert done is not None and done.challenges[0].status == VALID


async def test_a_validation_running_here_is_never_adopted(
        tmp_path: Path, store: SQLiteStore) -> None:
    await _left_processing(store, "z-o1")
    validator = FakeValidator()
    node = runner(tmp_path, store, validator)
    z = await store.get_authz("z-o1")
    assert z is not None
    node._mine.add(z.challenges[0].id)  # as start() records a validation it runs
    assert await node.adopt_orphans() == 0
    assert await node.adopt_orphans() == 0
    assert validator.tasks == []
