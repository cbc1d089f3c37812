"""Shared test fixtures and the rule for tests that need an external program.

A test that needs certbot, lego, softhsm2, postgres, ... calls
:func:`require_tool`. Without the tool it is skipped with a visible reason on a
developer's machine, but it *fails* when ``CI=true``: CI must never pass by
skipping what it was meant to prove.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gateway.storage.sqlite import SQLiteStore

if TYPE_CHECKING:
    from tests.pgserver import PostgresServer


def in_ci() -> bool:
    """True when running under CI (CI=true), where missing tools are failures."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(*names: str) -> None:
    """Skip (or, under CI, fail) the calling test unless every program in ``names`` is on PATH."""
    missing = [n for n in names if shutil.which(n) is None and not os.path.exists(n)]
    if not missing:
        return
    reason = f"needs {', '.join(missing)} (install with scripts/test.sh)"
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def require_postgres() -> None:
    """Skip (or, under CI, fail) unless a PostgreSQL server can be run for the tests."""
    from tests import pgserver

    reason = pgserver.available()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole test session (see tests/pgserver.py)."""
    require_postgres()
    from tests.pgserver import PostgresServer

    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return await postgres_server.new_database()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An open SQLite store on a new file in ``tmp_path`` (``gw.db``), closed after the test."""
    store = SQLiteStore(tmp_path / "gw.db")
    await store.open()
    yield store
    await store.close()
