"""/metrics: requests counted by front end and status, latency histogram, work in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client import values
from prometheus_client.exposition import generate_latest

from gateway.app import create_app
from gateway.logging import AccessLogger
from gateway.metrics import Metrics, front_end, prepare_shared_dir
from gateway.model.store import DatabaseStats, TableStats
from tests.acme.support import FakeValidator, make_settings


def test_paths_are_grouped_by_front_end() -> None:
    assert front_end("/acme/order/abc") == "acme"
    assert front_end("/.well-known/est/simpleenroll") == "est"
    assert front_end("/pkix/local/crl") == "pkix"
    assert front_end("/healthz") == "other"


async def test_metrics_count_requests_and_show_work_in_flight(aiohttp_client: Any,
                                                              tmp_path: Any) -> None:
    app = create_app(make_settings(tmp_path), validator=FakeValidator())
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)  # as `acme-gateway serve` runs
    client = await aiohttp_client(server)
    for _ in range(3):
        assert (await client.get("/acme/directory")).status == 200
    assert (await client.get("/acme/nope")).status == 404
    text = await (await client.get("/metrics")).text()
    assert 'acme_gateway_http_requests_total{frontend="acme",status="200"} 3.0' in text
    assert 'acme_gateway_http_requests_total{frontend="acme",status="404"} 1.0' in text
    assert 'acme_gateway_http_request_duration_seconds_count{frontend="acme"} 4.0' in text
    assert "acme_gateway_validations_in_flight 0.0" in text
    assert "acme_gateway_ca_jobs_in_flight 0.0" in text


def _samples(metrics: Metrics) -> dict[str, float]:
    """The request counter and latency values by series, without the creation times.

    Sums compare approximately: a tally adds its times in another order.
    """
    text = generate_latest(metrics.registry).decode()
    return {series: float(value) for series, value in
            (line.rsplit(" ", 1) for line in text.splitlines()
             if line.startswith("acme_gateway_http_") and "_created" not in line)}


def test_tallied_requests_scrape_as_prometheus_observations() -> None:
    """Requests tallied between scrapes give the same counter and histogram as observe()."""
    tallied = Metrics(lambda: {})
    direct = Metrics(lambda: {})
    cases = [("/acme/order/a", 200, 0.0004), ("/acme/order/a", 200, 0.005),
             ("/acme/x", 404, 0.0051), ("/.well-known/est/cacerts", 200, 3.0),
             ("/healthz", 200, 11.0), ("/acme/order/b", 200, 0.1)]
    for path, status, seconds in cases:
        tallied.observe(path, status, seconds)
        children = (direct.requests.labels(front_end(path), str(status)),
                    direct.latency.labels(front_end(path)))
        children[0].inc()
        children[1].observe(seconds)
    tallied.fold()
    assert _samples(tallied) == pytest.approx(_samples(direct))
    tallied.observe("/acme/order/a", 200, 0.02)  # counted again after a scrape, not twice
    tallied.fold()
    tallied.fold()
    direct.requests.labels("acme", "200").inc()
    direct.latency.labels("acme").observe(0.02)
    assert _samples(tallied) == pytest.approx(_samples(direct))


def test_shared_dir_starts_empty_and_keeps_other_files(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_4242.db").write_bytes(b"from an earlier run")
    (shared / "README").write_text("not a metrics file")
    prepare_shared_dir(shared)
    assert sorted(p.name for p in shared.iterdir()) == ["README"]
    prepare_shared_dir(tmp_path / "new" / "metrics")
    assert (tmp_path / "new" / "metrics").stat().st_mode & 0o777 == 0o700


async def test_metrics_show_the_database_size_and_rows_by_table(aiohttp_client: Any,
                                                                tmp_path: Any) -> None:
    client = await aiohttp_client(create_app(make_settings(tmp_path), validator=FakeValidator()))
    text = ""
    for _ in range(100):  # the pruner's first pass, at start, reads the statistics
        text = await (await client.get("/metrics")).text()
        if "acme_gateway_database_bytes" in text:
            break
        await asyncio.sleep(0.02)
    assert 'acme_gateway_database_rows{table="orders"} 0.0' in text
    assert 'acme_gateway_database_table_bytes{table="audit_events"}' in text
    assert "acme_gateway_database_free_bytes" in text


def test_workers_share_the_primarys_database_figures(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    stats = DatabaseStats(8192, 0, {"orders": TableStats(5, 4096)})
    shared = tmp_path / "metrics"
    # Shared mode switches prometheus_client for the whole process: undone after the test.
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    prepare_shared_dir(shared)
    primary = Metrics(dict, shared_dir=shared, database=lambda: stats)
    primary.publish_in_flight()
    other = Metrics(dict, shared_dir=shared)  # a worker that does not prune
    other.publish_in_flight()
    text = generate_latest(other.registry).decode()
    assert 'acme_gateway_database_rows{table="orders"} 5.0' in text
    assert "acme_gateway_database_bytes 8192.0" in text
