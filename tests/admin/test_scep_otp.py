"""POST /admin/scep/{label}/otp: a one-time SCEP password for MDM tooling (gateway.admin.scep)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.core.scep import otp_id
from tests.scep.support import ScepGateway, running_scep, scep_section

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def gw(tmp_path: Path) -> Any:
    token = tmp_path / "admin.token"
    token.write_text(TOKEN)
    async with running_scep(tmp_path, scep_section(tmp_path),
                            admin={"token_file": str(token)}) as gateway:
        yield gateway


async def _post(gw: ScepGateway, label: str, body: Any, headers: dict[str, str] | None = None
                ) -> tuple[int, Any]:
    import aiohttp

    url = gw.base.replace("/scep", f"/admin/scep/{label}/otp")
    async with aiohttp.ClientSession() as session, session.post(
            url, json=body, headers=AUTH if headers is None else headers) as resp:
        return resp.status, await resp.json()


async def test_issues_a_password_stored_as_its_hash(gw: ScepGateway) -> None:
    status, doc = await _post(gw, "otp", {"names": ["Phone-1.mdm.example"], "operator": "amy"})
    assert status == 200 and doc["names"] == ["phone-1.mdm.example"]
    otp = await gw.core.est.store.get_scep_otp(otp_id(doc["password"]))
    assert otp is not None and otp.label == "otp" and otp.status == "active"
    (row,) = await gw.audit("scep_otp_issued")
    assert row["actor"] == "admin:amy" and doc["password"] not in str(row)


@pytest.mark.parametrize(("label", "body", "status", "words"), [
    ("routers", {"names": ["a.example"]}, 404, "one_time_passwords = true"),
    ("nope", {}, 404, "no SCEP label 'nope'"),
    ("otp", {}, 400, "binds no names"),
    ("otp", {"names": "a.example"}, 400, "list of strings"),
    ("otp", {"names": ["re:("]}, 400, "not a regular expression"),
])
async def test_refusals(gw: ScepGateway, label: str, body: Any, status: int,
                        words: str) -> None:
    got, doc = await _post(gw, label, body)
    assert got == status and words in doc["error"], doc


async def test_needs_the_admin_token(gw: ScepGateway) -> None:
    status, _ = await _post(gw, "otp", {"names": ["a.example"]}, headers={})
    assert status == 401
    assert await gw.audit("scep_otp_issued") == []
