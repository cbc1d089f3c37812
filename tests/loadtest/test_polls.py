"""Polling under load: ``polls`` (CPU per poll of unchanged resources) and a slow responder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtest.cli import execute
from loadtest.polls import RESOURCES, format_result
from tests.loadtest import test_gateway
from tests.loadtest.conftest import RunningPebble
from tests.loadtest.test_gateway import RunningGateway

# test_gateway.py's gateway process, shared: pytest takes it as the fixture "gw".
gw = test_gateway.gateway


def _check(result: dict[str, Any] | None, count: int, with_cpu: bool) -> None:
    assert result is not None
    assert [r["resource"] for r in result["runs"]] == list(RESOURCES)
    for run in result["runs"]:
        assert run["polls"] == count and run["errors"] == {}, run
        assert run["statuses"] == {"pending": count}  # unchanged: nothing was answered
        assert run["client_cpu_us_per_poll"] > 0
        if with_cpu:
            assert run["server_cpu_ms"] > 0 and run["server_cpu_us_per_poll"] > 0
    assert "server" in format_result(result)


async def test_polls_measures_the_gateway(gw: RunningGateway, tmp_path: Path) -> None:
    out = tmp_path / "polls.json"
    status, result = await execute(
        ["polls", "--directory", gw.directory, "-n", "60", "-c", "4",
         "--server-pid", str(gw.process.pid), "--quiet", "--json", str(out)])
    assert status == 0
    _check(result, 60, with_cpu=True)
    assert out.read_text().startswith("{")


async def test_polls_measures_pebble(pebble: RunningPebble) -> None:
    status, result = await execute(
        ["polls", "--directory", pebble.directory, "--cafile", str(pebble.setup.cert),
         "-n", "30", "-c", "3", "--resource", "authz", "--server-pid",
         str(pebble.process.pid), "--quiet"])
    assert status == 0 and result is not None
    [run] = result["runs"]
    assert run["resource"] == "authz" and run["polls"] == 30 and run["errors"] == {}


async def test_unreachable_directory_is_a_setup_error(tmp_path: Path) -> None:
    status, result = await execute(
        ["polls", "--directory", "http://127.0.0.1:9/acme/directory", "-n", "1", "--quiet"])
    assert (status, result) == (2, None)


async def test_slow_responder_burst_issues_everything(gw: RunningGateway) -> None:
    """The target-3 run in small: a responder answering late, clients polling every 50 ms."""
    argv = ["acme", "--directory", gw.directory, "-n", "8", "-c", "8",
            "--http01-port", str(gw.http01_port), "--dns-port", str(gw.dns_port),
            "--http01-delay", "0.5", "--poll-interval", "0.05", "--dns-thread",
            "--timeout", "30", "--quiet"]
    status, result = await execute(argv)
    assert status == 0 and result is not None, result
    assert result["certificates_issued"] == 8
    # Every validation waited for the responder.
    latency = result["latency_ms"]
    assert latency["challenge"]["p50"] + latency["validation"]["p50"] >= 500


async def test_in_flight_polls_slow_validations_until_decided(gw: RunningGateway) -> None:
    status, result = await execute(
        ["polls", "--directory", gw.directory, "--in-flight", "0.3", "-n", "4", "-c", "4",
         "--http01-port", str(gw.http01_port), "--dns-port", str(gw.dns_port),
         "--server-pid", str(gw.process.pid), "--quiet"])
    assert status == 0 and result is not None, result
    assert result["statuses"] == {"valid": 4} and result["polls"] >= 4
    assert result["server_cpu_ms_per_validation"] > 0 and result["wall_s"] >= 0.3
