"""The chains a certificate is served with: the stored one, then alternates that fit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.base import Connector
from gateway.core.chains import CertificateChains
from gateway.model.records import Certificate
from tests.fakes.scripted_ca import ScriptedCA

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class AlternatingCA(ScriptedCA):
    """A CA that offers the given alternate chains."""

    def __init__(self, *chains: tuple[bytes, ...]) -> None:
        super().__init__()
        self.chains = chains
        self.asked = 0

    async def alternate_chains(self) -> tuple[tuple[bytes, ...], ...]:
        self.asked += 1
        return self.chains


def _certificate() -> Certificate:
    return Certificate(id="c1", order_id="o1", account_id="a1", serial="1",
                       leaf_der=b"not parsed unless an alternate is offered",
                       chain_pem="-----STORED-----\n", not_before=NOW, not_after=NOW,
                       spki_sha256="00", ca="local")


async def test_without_alternates_the_stored_chain_is_served_as_is() -> None:
    connectors: dict[str, Any] = {"local": ScriptedCA()}
    chains = CertificateChains(connectors)
    assert await chains.chains(_certificate()) == ["-----STORED-----\n"]
    empty = AlternatingCA(())  # offers alternates, but every one is empty
    connectors["local"] = empty
    assert await chains.chains(_certificate()) == ["-----STORED-----\n"]
    assert empty.asked == 1


async def test_a_connector_replaced_under_its_name_is_asked_again() -> None:
    first, second = AlternatingCA(), AlternatingCA()
    connectors: dict[str, Connector] = {"local": first}
    chains = CertificateChains(connectors)
    await chains.chains(_certificate())
    connectors["local"] = second
    await chains.chains(_certificate())
    connectors["local"] = ScriptedCA()
    assert await chains.chains(_certificate()) == ["-----STORED-----\n"]
    assert (first.asked, second.asked) == (1, 1)
