"""EST over HTTPS with the policy engine: a held request answers 202 until `approve`,
and a rejected one gets the approver's reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway import cli
from tests.e2e.harness import to_toml
from tests.est.support import (
    ALICE,
    Manufacturer,
    certs_of,
    ec_key,
    est_section,
    make_csr,
    request,
    settings_doc,
)
from tests.est.support import running_gateway as est_gateway


def _cli(tmp: Path, *args: str) -> int:
    doc = settings_doc(tmp, {})
    config = tmp / "cli.toml"
    config.write_text(to_toml({"server": doc["server"], "cas": doc["cas"],
                               "profiles": doc["profiles"]}))
    return cli.main(["--config", str(config), *args])


async def test_held_enrollment_is_released_by_cli_approve(tmp_path: Path) -> None:
    async with est_gateway(tmp_path, est_section(Manufacturer(tmp_path).ca_file)) as gw:
        csr = make_csr(ec_key(), cn="r7.example.net", sans=("r7.example.net",))
        status, headers, _ = await request(gw, "POST", "/held/simpleenroll", csr, auth=ALICE)
        assert status == 202 and headers["Retry-After"] == "1"
        [held] = await gw.core.approvals.pending()
        assert held.account_id == "est:user:alice"
        assert await asyncio.to_thread(_cli, tmp_path, "approve", held.id) == 0
        for _ in range(50):
            status, _, body = await request(gw, "POST", "/held/simpleenroll", csr, auth=ALICE)
            if status != 202:
                break
            await asyncio.sleep(0.1)
        assert status == 200
        assert "CN=r7.example.net" in certs_of(body)[0].subject.rfc4514_string()


async def test_rejected_enrollment_shows_the_reason(tmp_path: Path) -> None:
    async with est_gateway(tmp_path, est_section(Manufacturer(tmp_path).ca_file)) as gw:
        csr = make_csr(ec_key(), cn="r8.example.net", sans=("r8.example.net",))
        status, _, body = await request(gw, "POST", "/held/simpleenroll", csr, auth=ALICE)
        assert status == 202, body  # the reason, should a refusal come instead of the hold
        [held] = await gw.core.approvals.pending()
        assert await asyncio.to_thread(_cli, tmp_path, "reject", held.id, "--reason",
                                       "unknown device") == 0
        status, _, body = await request(gw, "POST", "/held/simpleenroll", csr, auth=ALICE)
        assert 400 <= status < 500
        assert b"rejected by an approver: unknown device" in body
