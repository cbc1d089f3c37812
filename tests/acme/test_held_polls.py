"""``acme.poll_wait_seconds``: a poll of an authorization being validated waits for the outcome."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from gateway import keys
from gateway.app import create_app
from gateway.model.records import PROCESSING, VALID
from gateway.model.store import Update
from gateway.validation import ChallengeTask, ValidationOutcome
from tests.acme.support import FakeValidator, Gateway, eventually, make_settings
from tests.acmeclient import AcmeClient


class GatedValidator(FakeValidator):
    """A validator that answers once the test opens its gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def validate(self, task: ChallengeTask) -> ValidationOutcome:
        await self.gate.wait()
        return await super().validate(task)


async def _gateway(aiohttp_client: Any, tmp_path: Any, poll_wait: float) -> Gateway:
    validator = GatedValidator()
    # The challenge POST answers at once ("processing"): the polls are what is measured.
    settings = make_settings(tmp_path, acme={"challenge_wait_seconds": 0,
                                             "poll_wait_seconds": poll_wait})
    return Gateway(await aiohttp_client(create_app(settings, validator=validator)), validator,
                   settings)


async def _validating(gateway: Gateway) -> tuple[AcmeClient, str, str]:
    """A client whose only challenge is being validated: (client, authz URL, challenge URL)."""
    c = await gateway.ready_client()
    _, order = await c.new_order(["held.example.com"])
    authz_url = order["authorizations"][0]
    _, authz = await c.post(authz_url)
    chall_url = authz["challenges"][0]["url"]
    _, body = await c.post(chall_url, {})
    assert body["status"] == PROCESSING
    return c, authz_url, chall_url


def _core(gateway: Gateway) -> Any:
    return gateway.http.server.app[keys.CORE]


@pytest.mark.parametrize("resource", ["authz", "challenge"])
async def test_held_poll_answers_as_soon_as_the_validation_commits(
        aiohttp_client: Any, tmp_path: Any, resource: str) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path, poll_wait=10.0)
    c, authz_url, chall_url = await _validating(gateway)
    began = time.monotonic()
    poll = asyncio.create_task(c.post(authz_url if resource == "authz" else chall_url))

    async def held() -> bool:
        return _core(gateway).orders.signals.waiting == 1

    await eventually(held)
    assert not poll.done()
    gateway.validator.gate.set()  # type: ignore[attr-defined]
    resp, body = await poll
    assert body["status"] == VALID and "Retry-After" not in resp.headers
    assert time.monotonic() - began < 5.0  # far from the 10 s bound
    assert _core(gateway).orders.signals.waiting == 0


async def test_held_poll_answers_unchanged_after_the_bound(
        aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path, poll_wait=0.3)
    c, authz_url, _ = await _validating(gateway)
    began = time.monotonic()
    resp, body = await c.post(authz_url)
    assert time.monotonic() - began >= 0.3
    assert body["status"] == "pending" and body["challenges"][0]["status"] == PROCESSING
    assert resp.headers["Retry-After"] == "1"
    gateway.validator.gate.set()  # type: ignore[attr-defined]


async def test_held_poll_sees_a_change_committed_by_another_process(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """No signal reaches this process for another's commit: the hold re-reads the store."""
    gateway = await _gateway(aiohttp_client, tmp_path, poll_wait=10.0)
    c, authz_url, _ = await _validating(gateway)
    store = _core(gateway).orders.store
    authz_id = authz_url.rsplit("/", 1)[1]
    began = time.monotonic()
    poll = asyncio.create_task(c.post(authz_url))
    await asyncio.sleep(0.05)
    stored = await store.get_authz(authz_id)
    done = stored.challenges[0].moved(VALID)
    # Written straight to the store, as another worker's validation would be.
    assert await store.apply([Update(done, expect=PROCESSING),
                              Update(stored.with_challenge(done).moved(VALID), expect="pending")])
    _, body = await poll
    assert body["status"] == VALID
    assert time.monotonic() - began < 5.0
    gateway.validator.gate.set()  # type: ignore[attr-defined]


async def test_pending_authorization_is_answered_at_once(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """Nothing in flight, nothing to wait for: the client has not answered a challenge."""
    gateway = await _gateway(aiohttp_client, tmp_path, poll_wait=10.0)
    c = await gateway.ready_client()
    _, order = await c.new_order(["idle.example.com"])
    began = time.monotonic()
    _, body = await c.post(order["authorizations"][0])
    assert body["status"] == "pending" and time.monotonic() - began < 2.0


async def test_zero_bound_answers_at_once(aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path, poll_wait=0.0)
    c, authz_url, _ = await _validating(gateway)
    _, body = await c.post(authz_url)
    assert body["challenges"][0]["status"] == PROCESSING
    assert _core(gateway).orders.signals.waiting == 0
    gateway.validator.gate.set()  # type: ignore[attr-defined]
