"""docs/monitoring: the example alert rules and dashboard name only metrics the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.app import create_app
from tests.acme.support import FakeValidator, make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
_NAME = re.compile(r"\bacme_gateway_[a-z0-9_]+")
_SUFFIXES = ("_bucket", "_count", "_sum")


def _names(text: str) -> set[str]:
    found = set()
    for name in _NAME.findall(text):
        for suffix in _SUFFIXES:
            name = name.removesuffix(suffix)
        found.add(name)
    return found


@pytest.mark.parametrize("doc", ["alerts.yml", "grafana-dashboard.json"])
async def test_every_metric_named_is_exported(aiohttp_client: Any, tmp_path: Any,
                                              doc: str) -> None:
    text = (DOCS / doc).read_text()
    if doc.endswith(".json"):
        text = json.dumps(json.loads(text))  # it must at least be JSON
    http = await aiohttp_client(create_app(make_settings(tmp_path), validator=FakeValidator()))
    exported = _names(await (await http.get("/metrics")).text())
    named = _names(text)
    assert named and named <= exported, sorted(named - exported)
