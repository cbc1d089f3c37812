"""``acme.challenge_wait_seconds``: a quick validation answers the challenge POST itself."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.app import create_app
from gateway.validation import ChallengeTask, ValidationOutcome
from tests.acme.support import FakeValidator, Gateway, make_settings


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
