"""The anchor writer: what the serving gateway writes, when, where, and in which process."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.audit_anchor import Anchor, AnchorKey, check_files, read_lines
from gateway.config import Settings
from gateway.core.anchoring import AnchorWriter
from gateway.core.role import ProcessRole
from gateway.errors import ConfigError
from gateway.model.clock import FakeClock
from gateway.storage.sqlite import SQLiteStore
from tests.acme.support import FakeValidator, eventually
from tests.acmeclient import AcmeClient
from tests.audit.support import append, sql, write_config


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "gateway.db")
    await s.open()
    yield s
    await s.close()


def _anchors(settings: Settings) -> list[Anchor]:
    return [a for a in map(Anchor.parse, read_lines(settings.anchor_log_file()) or []) if a]


async def test_anchors_only_when_the_head_moved(tmp_path: Path, store: SQLiteStore) -> None:
    _, settings = write_config(tmp_path)
    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()  # an empty trail: nothing to anchor
    assert not settings.anchor_log_file().exists()
    await append(store, 3)
    written = await writer.anchor_now()
    assert written is not None and (written.seq, written.at) == (3, "2030-01-01T00:00:00Z")
    assert written.hash == (await store.audit_head())[1]
    assert await writer.anchor_now() is None
    await writer.stop()  # nothing new: no second line
    assert _anchors(settings) == [written]


async def test_a_restarted_writer_continues_the_log(tmp_path: Path, store: SQLiteStore) -> None:
    _, settings = write_config(tmp_path)
    for _ in range(3):  # rows written while the gateway was down are anchored on start
        await append(store, 2)
        writer = AnchorWriter(settings, store, FakeClock())
        await writer.start()
        await writer.stop()
    assert [a.seq for a in _anchors(settings)] == [2, 4, 6]
    checked = check_files(settings.anchor_key_file(), settings.anchor_log_file())
    assert checked.problems == [] and [p.seq for p in checked.pins] == [2, 4, 6]


async def test_each_anchor_is_logged_for_the_log_stream(tmp_path: Path, store: SQLiteStore,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    _, settings = write_config(tmp_path)
    await append(store, 1)
    caplog.set_level(logging.INFO, "gateway.audit")
    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()
    await writer.stop()
    (line,) = read_lines(settings.anchor_log_file()) or []
    logged = [r for r in caplog.records if hasattr(r, "fields")]
    assert [(r.levelname, r.getMessage(), r.fields) for r in logged] == [
        ("INFO", "audit anchor: row 1", {"audit_anchor": line})]


async def test_a_chain_behind_the_newest_anchor_is_reported_not_anchored(
        tmp_path: Path, store: SQLiteStore, caplog: pytest.LogCaptureFixture) -> None:
    _, settings = write_config(tmp_path)
    await append(store, 4)
    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()
    sql(tmp_path, "DELETE FROM audit_events WHERE seq >= 3")
    assert await writer.anchor_now() is None
    await writer.stop()
    assert [a.seq for a in _anchors(settings)] == [4]
    assert "the audit chain ends at row 2, before the newest anchor (row 4)" in caplog.text


async def test_an_unusable_key_stops_the_start(tmp_path: Path, store: SQLiteStore) -> None:
    _, settings = write_config(tmp_path, anchor_key_file=str(tmp_path / "broken.key"))
    (tmp_path / "broken.key").write_text("garbage")
    with pytest.raises(ConfigError, match=r"\[audit.anchor_key_file\] cannot use the audit "
                                          "anchor key"):
        await AnchorWriter(settings, store, FakeClock()).start()


async def test_anchors_are_posted_to_the_webhook(aiohttp_client: Any, tmp_path: Path,
                                                 store: SQLiteStore) -> None:
    received: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/anchors", hook)
    server = await aiohttp_client(receiver)
    _, settings = write_config(tmp_path, anchor_webhook_url=str(server.make_url("/anchors")))
    await append(store, 2)
    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()
    await writer.stop()  # waits for posts in flight
    assert received == [line + "\n" for line in read_lines(settings.anchor_log_file()) or []]
    assert json.loads(received[0])["seq"] == 2


async def test_an_unreachable_webhook_does_not_stop_anchoring(tmp_path: Path,
                                                              store: SQLiteStore) -> None:
    _, settings = write_config(tmp_path, anchor_webhook_url="http://127.0.0.1:9/anchors",
                               anchor_webhook_timeout_seconds=1.0)
    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()
    for _ in range(2):
        await append(store, 1)
        assert await writer.anchor_now() is not None
    await writer.stop()
    assert [a.seq for a in _anchors(settings)] == [1, 2]


# -- in the serving gateway -------------------------------------------------------------

async def _serve_and_register(aiohttp_client: Any, settings: Settings,
                              role: ProcessRole | None = None) -> Any:
    """A running app with one ACME account registered (an audit row); its test client."""
    app = create_app(settings, validator=FakeValidator(), role=role)
    http = await aiohttp_client(app)
    client = AcmeClient(http.session, str(http.make_url("/acme/directory")))
    await client.start()
    await client.register()
    return http


async def test_the_serving_gateway_anchors_on_shutdown(aiohttp_client: Any,
                                                       tmp_path: Path) -> None:
    _, settings = write_config(tmp_path)  # the default interval: only the shutdown anchors
    http = await _serve_and_register(aiohttp_client, settings)
    assert not settings.anchor_log_file().exists()
    await http.close()
    (written,) = _anchors(settings)
    store = SQLiteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        assert (written.seq, written.hash) == await store.audit_head()
    finally:
        await store.close()
    assert AnchorKey.load(settings.anchor_key_file()).signed(written)


async def test_the_serving_gateway_anchors_every_interval(aiohttp_client: Any,
                                                          tmp_path: Path) -> None:
    _, settings = write_config(tmp_path, anchor_interval_seconds=0.05)
    await _serve_and_register(aiohttp_client, settings)

    async def anchored() -> bool:
        return bool(_anchors(settings))

    await eventually(anchored)  # while it still serves
    assert _anchors(settings)[0].seq >= 1


async def test_a_secondary_worker_writes_no_anchor(aiohttp_client: Any, tmp_path: Path) -> None:
    _, settings = write_config(tmp_path, anchor_interval_seconds=0.01)
    http = await _serve_and_register(aiohttp_client, settings, ProcessRole(index=1, count=2))
    await http.close()
    assert not settings.anchor_log_file().exists()
    assert not settings.anchor_key_file().exists()


async def test_a_lost_key_is_not_silently_replaced(tmp_path: Path, store: SQLiteStore) -> None:
    _, settings = write_config(tmp_path)
    await append(store, 1)
    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()
    await writer.stop()
    settings.anchor_key_file().unlink()
    with pytest.raises(ConfigError, match="has anchors but their key .* is missing: restore"):
        await AnchorWriter(settings, store, FakeClock()).start()
    assert not settings.anchor_key_file().exists()


async def test_stopping_during_a_write_leaves_a_log_that_verifies(
        tmp_path: Path, store: SQLiteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shutdown while the timer's anchor is being written waits for it, then anchors once."""
    import threading

    from gateway.core import anchoring

    _, settings = write_config(tmp_path, anchor_interval_seconds=0.01)
    writing, release = threading.Event(), threading.Event()
    original = anchoring.append_line

    def slow_append(path: Path, line: str) -> None:
        writing.set()
        release.wait(5)  # the write is in its thread when stop() comes
        original(path, line)

    writer = AnchorWriter(settings, store, FakeClock())
    await writer.start()
    monkeypatch.setattr(anchoring, "append_line", slow_append)
    await append(store, 2)
    await eventually(lambda: _answer(writing.is_set()))
    stopping = asyncio.ensure_future(writer.stop())
    await asyncio.sleep(0.05)
    await append(store, 1)  # the final anchor has something new to cover
    release.set()
    await stopping
    checked = check_files(settings.anchor_key_file(), settings.anchor_log_file())
    assert checked.problems == [] and [p.seq for p in checked.pins] == [2, 3]


async def _answer(value: bool) -> bool:
    """``value``, as the awaitable that ``eventually`` polls."""
    return value
