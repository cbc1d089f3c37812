"""End to end: ``python -m loadtest`` against a real Pebble and against a fake EST server."""

from __future__ import annotations

import json
import re
import socket
import ssl
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from loadtest import cli, prepare, runner
from loadtest.cli import execute
from loadtest.jose import AccountKey
from loadtest.pebble import self_signed
from tests.loadtest.conftest import RunningPebble, free_port
from tests.loadtest.fake_est import FakeEst

RESULT_FIELDS = {
    "schema",
    "finished_at",
    "host",
    "mode",
    "target",
    "plan",
    "elapsed_s",
    "started",
    "succeeded",
    "failed",
    "throughput_per_s",
    "latency_ms",
    "errors",
    "counters",
    "timeline",
    "histogram_ms",
    "certificates_issued",
    "server_cpu",
    "client_cpu",
}
ACME_STEPS = {
    "newOrder",
    "authz",
    "challenge",
    "validation",
    "finalize",
    "certificate",
    "total",
}


def acme_argv(pebble: RunningPebble, tmp_path: Path, *extra: str) -> list[str]:
    """Options shared by the Pebble runs.

    One order in flight at a time: Pebble 2.4.0 can deadlock when newOrder runs
    while a certificate is being stored (see docs/bench-loadtest.md).
    """
    return [
        "acme",
        "--directory",
        pebble.directory,
        "--cafile",
        str(pebble.setup.cert),
        "--http01-port",
        str(pebble.setup.http01_port),
        "--dns-port",
        str(pebble.dns_port),
        "--poll-interval",
        "0.05",
        "--json",
        str(tmp_path / "out.json"),
        "--quiet",
        "--timeout",
        "20",
        *extra,
    ]


@pytest.mark.parametrize("challenge", ["http-01", "dns-01"])
async def test_acme_issues_n_certificates_from_pebble(
    pebble: RunningPebble, tmp_path: Path, challenge: str
) -> None:
    argv = acme_argv(
        pebble,
        tmp_path,
        "-n",
        "5",
        "-c",
        "1",
        "--accounts",
        "2",
        "--names",
        "2",
        "--challenge",
        challenge,
        "--report",
        str(tmp_path / "r.html"),
        "--server-pid",
        str(pebble.process.pid),
    )
    status, result = await execute(argv)
    assert status == 0, result and result["errors"]
    on_disk = json.loads((tmp_path / "out.json").read_text())
    assert RESULT_FIELDS <= set(on_disk)
    assert on_disk["certificates_issued"] == 5 and on_disk["failed"] == 0
    assert on_disk["plan"]["accounts"] == 2 and on_disk["plan"]["challenge"] == challenge
    assert ACME_STEPS <= set(on_disk["latency_ms"])
    assert on_disk["latency_ms"]["validation"]["count"] == 10  # two names per order
    assert set(on_disk["latency_ms"]["total"]) == {"count", "mean", "p50", "p95", "p99", "max"}
    assert on_disk["server_cpu"]["certificates"] == 5 and on_disk["server_cpu"]["cpu_ms"] >= 0
    client = on_disk["client_cpu"]
    assert client["unit"] == "order" and client["units"] == 5 and client["cpu_ms_per_unit"] > 0
    # Accounts, CSRs and connections were made before the window, reported apart from it.
    assert "newAccount" not in on_disk["latency_ms"]
    prepared = on_disk["prepare"]
    assert prepared["accounts"] == 2 and prepared["csrs"] == 5 and prepared["connections"] == 1
    assert prepared["latency_ms"]["newAccount"]["count"] == 2
    assert "nonce_fetched" not in on_disk["counters"]  # the pool was filled before the window
    assert sum(p["ok"] for p in on_disk["timeline"]) == 5
    svgs = re.findall(r"<svg.*?</svg>", (tmp_path / "r.html").read_text(), re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)


async def test_no_key_or_csr_is_made_inside_the_measured_window(
    pebble: RunningPebble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    in_window = False
    real_drive, real_csr, real_account_key = runner.drive, prepare.csr_der, AccountKey.generate

    async def drive(*args: Any) -> None:
        nonlocal in_window
        in_window = True
        try:
            await real_drive(*args)
        finally:
            in_window = False

    def csr_der(*args: Any) -> bytes:
        made.append("csr in window" if in_window else "csr")
        return real_csr(*args)

    def account_key(alg: str = "ES256") -> AccountKey:
        made.append("account key in window" if in_window else "account key")
        return real_account_key(alg)

    monkeypatch.setattr(cli, "drive", drive)
    monkeypatch.setattr(prepare, "csr_der", csr_der)
    monkeypatch.setattr(AccountKey, "generate", staticmethod(account_key))
    status, result = await execute(acme_argv(pebble, tmp_path, "-n", "3", "--accounts", "2"))
    assert status == 0 and result is not None and result["certificates_issued"] == 3
    assert sorted(made) == ["account key"] * 2 + ["csr"] * 3
    assert "csr_in_window" not in result["counters"]


async def test_summary_shows_cpu_per_order_beside_server_cpu(
    pebble: RunningPebble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a for a in acme_argv(pebble, tmp_path, "-n", "2") if a != "--quiet"]
    status, result = await execute([*argv, "--server-pid", str(pebble.process.pid)])
    assert status == 0 and result is not None
    text = capsys.readouterr().out
    per_order = f"{result['client_cpu']['cpu_ms_per_unit']:.3f} ms per order"
    assert "ms per certificate" in text and "client CPU (load generator): " in text
    assert per_order in text
    assert "prepared before the window" in text and "2 keys + CSRs" in text


async def test_acme_fixed_rate_bounded_by_count(pebble: RunningPebble, tmp_path: Path) -> None:
    status, result = await execute(
        acme_argv(pebble, tmp_path, "-n", "4", "-c", "1", "--rate", "20")
    )
    assert status == 0
    assert result is not None and result["certificates_issued"] == 4
    assert result["latency_ms"]["schedule_lag"]["count"] == 4


EAB_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


async def test_acme_with_eab_rsa_account_and_rsa_certificate_key(
    pebble_factory: Any, tmp_path: Path
) -> None:
    pebble = await pebble_factory(eab_keys={"kid-1": EAB_KEY})
    without = await execute(acme_argv(pebble, tmp_path, "-n", "1"))
    assert without == (2, None)
    eab = (
        "--eab-kid",
        "kid-1",
        "--eab-hmac",
        EAB_KEY,
        "--account-alg",
        "RS256",
        "--key-type",
        "rsa",
    )
    status, result = await execute(acme_argv(pebble, tmp_path, "-n", "2", *eab))
    assert status == 0 and result is not None and result["certificates_issued"] == 2


async def test_acme_unreachable_directory_is_a_setup_error(tmp_path: Path) -> None:
    argv = [
        "acme",
        "--directory",
        f"http://127.0.0.1:{free_port()}/dir",
        "--http01-port",
        "0",
        "--quiet",
    ]
    assert await execute(argv) == (2, None)


def est_argv(url: str, tmp_path: Path, *extra: str) -> list[str]:
    return ["est", "--url", url, "--json", str(tmp_path / "est.json"), "--quiet", *extra]


async def test_est_enrolls_through_202_with_basic_auth(aiohttp_server: Any, tmp_path: Path) -> None:
    fake = FakeEst(basic_auth="router:secret")
    server = await aiohttp_server(fake.app())
    url = str(server.make_url("/"))
    argv = est_argv(
        url,
        tmp_path,
        "-n",
        "6",
        "-c",
        "3",
        "--user",
        "router:secret",
        "--label",
        "r1",
        "--new-connection-per-request",
    )
    status, result = await execute(argv)
    assert status == 0
    assert result is not None and result["certificates_issued"] == 6
    assert result["target"].endswith("/.well-known/est/r1/simpleenroll")
    assert fake.stats["pending"] == 6 and fake.stats["issued"] == 6
    assert result["counters"]["pending_202"] == 6
    # Every device's key and CSR was made before the window; none late.
    assert result["prepare"]["csrs"] == 6 and "csr_in_window" not in result["counters"]
    assert result["client_cpu"]["unit"] == "enrollment" and result["client_cpu"]["units"] == 6
    assert json.loads((tmp_path / "est.json").read_text())["mode"] == "est"


async def test_est_wrong_password_counts_401(aiohttp_server: Any, tmp_path: Path) -> None:
    server = await aiohttp_server(FakeEst(basic_auth="router:secret").app())
    argv = est_argv(str(server.make_url("/")), tmp_path, "-n", "3", "--user", "router:wrong")
    status, result = await execute(argv)
    assert status == 1
    assert result is not None and result["errors"] == {"http-401": 3}
    assert "http-401" in result["error_samples"]


async def test_est_with_tls_client_certificate(aiohttp_server: Any, tmp_path: Path) -> None:
    server_cert, server_key = self_signed(["localhost"], ["127.0.0.1"])
    client_cert, client_key = self_signed(["router-1"], [])
    for name, data in {
        "s.pem": server_cert,
        "s.key": server_key,
        "c.pem": client_cert,
        "c.key": client_key,
    }.items():
        (tmp_path / name).write_bytes(data)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "c.pem"))
    context.load_cert_chain(tmp_path / "s.pem", tmp_path / "s.key")
    context.verify_mode = ssl.CERT_REQUIRED
    fake = FakeEst(pend_first=False)
    server = await aiohttp_server(fake.app(), ssl=context)
    url = f"https://127.0.0.1:{server.port}"
    argv = est_argv(
        url,
        tmp_path,
        "-n",
        "3",
        "--cafile",
        str(tmp_path / "s.pem"),
        "--client-cert",
        str(tmp_path / "c.pem"),
        "--client-key",
        str(tmp_path / "c.key"),
    )
    status, result = await execute(argv)
    assert status == 0 and result is not None and result["certificates_issued"] == 3


async def test_pebble_setup_writes_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await execute(["pebble-setup", str(tmp_path), "--port", "14444"]) == (0, None)
    config = json.loads((tmp_path / "pebble-config.json").read_text())["pebble"]
    assert config["listenAddress"] == "127.0.0.1:14444"
    assert config["certificate"] == str(tmp_path / "cert.pem")
    assert "pebble -config" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "count", "concurrency"),
    [
        ([], 10, 1),
        (["--duration", "0.2"], None, 1),
        (["--rate", "10"], 10, 256),
        (["-n", "3", "-c", "2", "--rate", "10"], 3, 2),
    ],
)
async def test_plan_defaults(
    aiohttp_server: Any, tmp_path: Path, options: list[str], count: int | None, concurrency: int
) -> None:
    server = await aiohttp_server(FakeEst(pend_first=False).app())
    argv = est_argv(str(server.make_url("/")), tmp_path, *options)
    status, result = await execute(argv)
    assert status == 0 and result is not None
    assert result["plan"]["count"] == count and result["plan"]["concurrency"] == concurrency
    assert result["client_cpu"]["cpu_ms"] >= 0 and result["client_cpu"]["unit"] == "enrollment"


@pytest.mark.parametrize(
    "options",
    [
        ["-n", "0"],
        ["-c", "-1"],
        ["--rate", "-2"],
        ["--insecure", "--cafile", "x.pem"],
        ["--client-cert", "c.pem"],
    ],
)
async def test_nonsense_plans_are_refused(tmp_path: Path, options: list[str]) -> None:
    with pytest.raises(SystemExit):
        await execute(est_argv("http://127.0.0.1:1", tmp_path, *options))


async def test_taken_dns_port_is_a_setup_error_and_frees_the_http01_port(tmp_path: Path) -> None:
    http01_port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        dns_port = taken.getsockname()[1]
        argv = [
            "acme",
            "--directory",
            "http://127.0.0.1:1/dir",
            "--quiet",
            "--http01-port",
            str(http01_port),
            "--dns-port",
            str(dns_port),
        ]
        assert await execute(argv) == (2, None)
    with socket.socket() as again:
        again.bind(("127.0.0.1", http01_port))  # the HTTP-01 responder was stopped
