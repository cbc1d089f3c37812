"""/metrics: requests counted by front end and status, latency histogram, work in flight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.logging import AccessLogger
from gateway.metrics import front_end, prepare_shared_dir
from tests.acme.conftest import FakeValidator, make_settings


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


def test_shared_dir_starts_empty_and_keeps_other_files(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_4242.db").write_bytes(b"from an earlier run")
    (shared / "README").write_text("not a metrics file")
    prepare_shared_dir(shared)
    assert sorted(p.name for p in shared.iterdir()) == ["README"]
    prepare_shared_dir(tmp_path / "new" / "metrics")
    assert (tmp_path / "new" / "metrics").stat().st_mode & 0o777 == 0o700
