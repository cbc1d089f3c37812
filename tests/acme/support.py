"""What ACME tests share: a fake validator, the test gateway's handle, settings and polling."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway import config
from gateway.config import Settings
from gateway.validation import ChallengeTask, ValidationFailure, ValidationOutcome
from tests.acmeclient import AcmeClient


class FakeValidator:
    """Answers every validation with ``failure`` (None = valid) and records the tasks."""

    def __init__(self) -> None:
        self.failure: ValidationFailure | None = None
        self.tasks: list[ChallengeTask] = []

    async def validate(self, task: ChallengeTask) -> ValidationOutcome:
        self.tasks.append(task)
        return ValidationOutcome(failure=self.failure,
                                 records=({"hostname": task.identifier_value},))

    async def check_caa(self, *args: Any) -> ValidationFailure | None:
        return None

    async def aclose(self) -> None:
        return None


@dataclass
class Gateway:
    """A running test gateway and what a test needs to drive it."""

    http: Any
    validator: FakeValidator
    settings: Settings

    def client(self) -> AcmeClient:
        """A fresh ACME client (own account key)."""
        return AcmeClient(self.http.session, str(self.http.make_url("/acme/directory")))

    async def ready_client(self) -> AcmeClient:
        """A client with its directory, nonce and account."""
        c = self.client()
        await c.start()
        await c.register()
        return c


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait until ``check`` holds (background work runs on the loop and a DB thread)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def make_settings(tmp_path: Any, **tables: Any) -> Settings:
    """Settings on a temporary data directory, with extra TOML tables."""
    data: dict[str, Any] = {"server": {"data_dir": str(tmp_path)}}
    for name, table in tables.items():
        data.setdefault(name, {}).update(table)
    return config.parse(data, "test.toml")
