"""Approvals: a held order waits as processing; the CLI or admin API approves or rejects it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import cli
from gateway.app import create_app
from tests.acme.support import FakeValidator, eventually
from tests.acmeclient import AcmeClient, make_csr
from tests.e2e.harness import to_toml
from tests.policy.support import PolicyGateway, finalize, ready_order, settings_for


async def _held(pgw: PolicyGateway) -> tuple[AcmeClient, dict[str, Any], str]:
    c = await pgw.client()
    order = await ready_order(c, ["app.example.com"], "manual")
    resp, body = await finalize(c, order, make_csr(["app.example.com"])[0])
    assert resp.status == 200 and body["status"] == "processing"
    assert resp.headers["Retry-After"] == "1"
    return c, order, order["url"].rsplit("/", 1)[1]


async def _status(c: AcmeClient, url: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        _, body = await c.post(url)
        return bool(body["status"] == status)

    await eventually(reached)
    return dict((await c.post(url))[1])


def _cli(tmp_path: Path, *args: str) -> int:
    """Run ``acme-gateway`` against the test gateway's database, as an operator would."""
    config = tmp_path / "gw.toml"
    config.write_text(to_toml({"server": {"data_dir": str(tmp_path)},
                               "profiles": {"default": {"ca": "local"},
                                            "manual": {"ca": "local",
                                                       "approval_required": True}}}))
    return cli.main(["--config", str(config), *args])


async def test_cli_approval_releases_the_order(pgw: PolicyGateway, tmp_path: Path,
                                               capsys: Any) -> None:
    c, order, order_id = await _held(pgw)
    [pending] = await pgw.core.approvals.pending()
    assert pending.id == order_id
    assert await asyncio.to_thread(_cli, tmp_path, "approvals") == 0
    assert order_id in capsys.readouterr().out
    # The CLI writes to the database from another thread (as from another process); the
    # running gateway's job scanner notices the job that became due.
    assert await asyncio.to_thread(_cli, tmp_path, "approve", order_id, "--approver", "bob") == 0
    done = await _status(c, order["url"], "valid")
    assert done["certificate"]
    events = await pgw.audit()
    names = [e["event"] for e in events]
    assert names.index("approval_pending") < names.index("approved") < names.index("issued")
    approved = next(e for e in events if e["event"] == "approved")
    assert approved["actor"] == "cli:bob" and approved["request_id"] == order_id


async def test_cli_rejection_ends_invalid_with_the_reason(pgw: PolicyGateway,
                                                          tmp_path: Path) -> None:
    c, order, order_id = await _held(pgw)
    code = await asyncio.to_thread(_cli, tmp_path, "reject", order_id, "--reason",
                                   "not a production host")
    assert code == 0
    body = await _status(c, order["url"], "invalid")
    assert body["error"]["type"] == "urn:ietf:params:acme:error:unauthorized"
    assert body["error"]["detail"] == \
        "the request was rejected by an approver: not a production host"
    [event] = await pgw.audit("rejected")
    assert event["detail"] == "not a production host"
    assert await pgw.core.approvals.pending() == []


async def test_cli_refuses_unknown_and_decided_ids(pgw: PolicyGateway, tmp_path: Path,
                                                  capsys: Any) -> None:
    assert await asyncio.to_thread(_cli, tmp_path, "approve", "no-such-id") == 1
    err = capsys.readouterr().err
    assert "request 'no-such-id' is not awaiting approval (no such request)" in err
    c, order, order_id = await _held(pgw)
    assert await asyncio.to_thread(_cli, tmp_path, "approve", order_id) == 0
    await _status(c, order["url"], "valid")
    assert await asyncio.to_thread(_cli, tmp_path, "reject", order_id, "--reason", "late") == 1
    assert "is not awaiting approval (it is valid, approval approved)" in capsys.readouterr().err
    refused = [e for e in await pgw.audit() if e["result"] == "refused"]
    assert [e["event"] for e in refused] == ["approved", "rejected"]


async def test_webhook_announces_held_requests(aiohttp_client: Any, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_server = await aiohttp_client(receiver)
    settings = settings_for(tmp_path, admin={"webhook_url": str(hook_server.make_url("/hook"))})
    pgw = PolicyGateway(await aiohttp_client(create_app(settings, validator=FakeValidator())),
                        FakeValidator())
    _, _, order_id = await _held(pgw)

    async def announced() -> bool:
        return bool(seen)

    await eventually(announced)
    assert seen == [{"event": "approval_pending", "id": order_id,
                     "requester": seen[0]["requester"], "profile": "manual",
                     "identifiers": ["app.example.com"],
                     "approve": f"acme-gateway approve {order_id}"}]
    assert json.dumps(seen).count("acme:") == 1
