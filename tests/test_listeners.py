"""The descriptor limit raised at start, and a bind failure named by address and key."""

from __future__ import annotations

import logging
import resource
import socket
from collections.abc import Iterator

import pytest

from gateway.config import ServerSettings
from gateway.errors import StartError
from gateway.listeners import RESERVED_DESCRIPTORS, check_port_free, raise_descriptor_limit


@pytest.fixture
def lowered_limit() -> Iterator[int]:
    """The soft descriptor limit lowered to 512 for the test, restored afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip("the hard descriptor limit is too low to lower the soft one")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_is_raised_to_the_hard_one_and_logged(
        lowered_limit: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "gateway"):
        figure = raise_descriptor_limit(max_connections=100)
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == figure
    if lowered_limit != resource.RLIM_INFINITY:
        assert figure == lowered_limit
    assert any(f"open-file limit: {figure}" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_a_limit_below_the_connection_cap_is_warned_about(
        lowered_limit: int, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "gateway"):
        figure = raise_descriptor_limit(max_connections=10_000_000)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "max_connections (10000000)" in warnings[0]
    assert figure < 10_000_000 + RESERVED_DESCRIPTORS


def test_a_busy_port_is_named_with_its_key() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StartError, match=rf"127\.0\.0\.1:{port} \(\[server\] http_port\): "
                                             "Address already in use"):
            check_port_free(ServerSettings(), port, "http_port")
