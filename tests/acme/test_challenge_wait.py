"""``acme.challenge_wait_seconds``: a quick validation answers the challenge POST itself."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway import keys
from gateway.app import create_app
from gateway.model.records import PENDING, PROCESSING, VALID, Challenge
from gateway.model.store import Update
from gateway.validation import ChallengeTask, ValidationOutcome
from tests.acme.support import FakeValidator, Gateway, eventually, make_settings


class SlowValidator(FakeValidator):
    """A validator that takes ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def validate(self, task: ChallengeTask) -> ValidationOutcome:
        await asyncio.sleep(self.delay)
        return await super().validate(task)


async def _gateway(aiohttp_client: Any, tmp_path: Any, wait: float, delay: float) -> Gateway:
    validator = SlowValidator(delay)
    settings = make_settings(tmp_path, acme={"challenge_wait_seconds": wait})
    return Gateway(await aiohttp_client(create_app(settings, validator=validator)), validator,
                   settings)


async def _answer_challenge(gateway: Gateway) -> tuple[Any, dict[str, Any], str]:
    c = await gateway.ready_client()
    _, order = await c.new_order(["a.example.com"])
    _, authz = await c.post(order["authorizations"][0])
    resp, body = await c.post(authz["challenges"][0]["url"], {})
    return resp, body, order["authorizations"][0]


async def test_quick_validation_answers_valid(aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path, wait=2.0, delay=0.0)
    resp, body, authz_url = await _answer_challenge(gateway)
    assert resp.status == 200 and body["status"] == "valid"
    assert "Retry-After" not in resp.headers
    assert f'<{authz_url}>;rel="up"' in resp.headers.getall("Link")


async def test_slow_validation_answers_processing(aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path, wait=0.05, delay=1.0)
    resp, body, _ = await _answer_challenge(gateway)
    assert body["status"] == "processing" and "Retry-After" in resp.headers


async def test_zero_wait_answers_at_once(aiohttp_client: Any, tmp_path: Any) -> None:
    gateway = await _gateway(aiohttp_client, tmp_path, wait=0.0, delay=0.2)
    resp, body, _ = await _answer_challenge(gateway)
    assert body["status"] == "processing" and resp.headers["Retry-After"] == "1"


async def test_defaults_wait_for_a_quick_validation(aiohttp_client: Any, tmp_path: Any) -> None:
    validator = SlowValidator(0.05)
    settings = make_settings(tmp_path)
    assert settings.acme.challenge_wait_seconds > 0 and settings.acme.retry_after_seconds == 1
    gateway = Gateway(await aiohttp_client(create_app(settings, validator=validator)), validator,
                      settings)
    _, body, _ = await _answer_challenge(gateway)
    assert body["status"] == "valid"


class GatedValidator(FakeValidator):
    """A validator that waits for ``gate``; ``entered`` is set once a validation waits."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def validate(self, task: ChallengeTask) -> ValidationOutcome:
        self.entered.set()
        await self.gate.wait()
        return await super().validate(task)


def _challenge_writes(store: Any) -> list[tuple[str, str | None]]:
    """(status, expected status) of every challenge Update applied from now on."""
    seen: list[tuple[str, str | None]] = []
    apply = store.apply

    async def recording(ops: Any) -> bool:
        seen.extend((op.model.status, op.expect) for op in ops
                    if isinstance(op, Update) and isinstance(op.model, Challenge))
        return bool(await apply(ops))

    store.apply = recording
    return seen


async def _gated(aiohttp_client: Any, tmp_path: Any,
                 wait: float) -> tuple[Gateway, GatedValidator]:
    """A gateway whose validations wait for the test's gate, with this challenge wait."""
    validator = GatedValidator()
    settings = make_settings(tmp_path, acme={"challenge_wait_seconds": wait})
    app = create_app(settings, validator=validator)
    return Gateway(await aiohttp_client(app), validator, settings), validator


async def _started(gateway: Gateway) -> tuple[Any, str, str]:
    """A ready client, the URL of a challenge of a new order, and its authorization's id."""
    c = await gateway.ready_client()
    _, order = await c.new_order(["held.example.com"])
    _, authz = await c.post(order["authorizations"][0])
    return c, authz["challenges"][0]["url"], order["authorizations"][0].rsplit("/", 1)[1]


async def test_quick_outcome_is_committed_from_pending_in_one_write(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """Within the wait, processing is never committed: the outcome moves pending to valid."""
    gateway = await _gateway(aiohttp_client, tmp_path, wait=2.0, delay=0.0)
    c, chall_url, _ = await _started(gateway)
    writes = _challenge_writes(gateway.http.server.app[keys.CORE].orders.store)
    _, body = await c.post(chall_url, {})
    assert body["status"] == "valid"
    assert writes == [(VALID, PENDING)]


async def test_slow_outcome_commits_processing_before_the_answer(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """Past the wait, the POST answers processing once it is stored (a restart resumes it);
    the outcome then moves processing to valid."""
    gateway, validator = await _gated(aiohttp_client, tmp_path, 0.05)
    c, chall_url, authz_id = await _started(gateway)
    store = gateway.http.server.app[keys.CORE].orders.store
    writes = _challenge_writes(store)
    _, body = await c.post(chall_url, {})
    assert body["status"] == PROCESSING
    assert [a.id for a in await store.processing_challenges()] == [authz_id]
    validator.gate.set()

    async def valid() -> bool:
        authz = await store.get_authz(authz_id)
        return bool(authz.status == VALID)

    await eventually(valid)
    assert writes == [(PROCESSING, PENDING), (VALID, PROCESSING)]


async def test_repeated_post_joins_the_held_validation(aiohttp_client: Any,
                                                       tmp_path: Any) -> None:
    gateway, validator = await _gated(aiohttp_client, tmp_path, 5.0)
    c, chall_url, _ = await _started(gateway)
    orders = gateway.http.server.app[keys.CORE].orders
    account = await orders.store.get_account(c.kid.rsplit("/", 1)[1])
    chall_id = chall_url.rsplit("/", 1)[1]
    first = asyncio.create_task(orders.respond_challenge(account, chall_id))
    await validator.entered.wait()
    second = asyncio.create_task(orders.respond_challenge(account, chall_id))
    await asyncio.sleep(0.05)
    validator.gate.set()
    answers = await asyncio.gather(first, second)
    assert [chall.status for _, chall in answers] == [VALID, VALID]
    assert len(validator.tasks) == 1


async def test_post_gone_while_held_leaves_the_validation_durable(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """A POST cancelled while it waits (its client gone) commits processing on its way out,
    so that the validation resumes after a restart."""
    gateway, validator = await _gated(aiohttp_client, tmp_path, 5.0)
    c, chall_url, authz_id = await _started(gateway)
    core = gateway.http.server.app[keys.CORE]
    account = await core.orders.store.get_account(c.kid.rsplit("/", 1)[1])
    posting = asyncio.create_task(
        core.orders.respond_challenge(account, chall_url.rsplit("/", 1)[1]))
    await validator.entered.wait()
    posting.cancel()

    async def processing() -> bool:
        return [a.id for a in await core.orders.store.processing_challenges()] == [authz_id]

    await eventually(processing)
    validator.gate.set()

    async def valid() -> bool:
        authz = await core.orders.store.get_authz(authz_id)
        return bool(authz.status == VALID)

    await eventually(valid)


async def test_validation_stopped_while_held_is_left_processing(
        aiohttp_client: Any, tmp_path: Any) -> None:
    """Shutting down mid-validation: the waiting POST answers processing, stored so, and the
    next start resumes it."""
    gateway, validator = await _gated(aiohttp_client, tmp_path, 5.0)
    c, chall_url, authz_id = await _started(gateway)
    core = gateway.http.server.app[keys.CORE]
    posting = asyncio.create_task(c.post(chall_url, {}))
    await validator.entered.wait()
    await core.validations.stop()
    _, body = await posting
    assert body["status"] == PROCESSING
    assert [a.id for a in await core.orders.store.processing_challenges()] == [authz_id]
