"""certbot and lego pick a chain by its top issuer (``--preferred-chain``) from the gateway.

The local CA offers its own chain and, through ``alternate_chain_files``, its
certificate cross-signed by an older root. A client asking for the older root
gets that chain; one asking for nothing gets the default.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from tests.acme.chains_support import OLD_ROOT_CN, cross_signed_chain
from tests.conftest import require_tool
from tests.e2e.harness import GatewayProcess, run, to_toml
from tests.e2e.test_real_clients import TIMEOUT, certbot_args, check_chain, lego_http01


async def _offer_cross_signed(gw: GatewayProcess) -> None:
    """Restart the gateway with its CA (made on the first start) also cross-signed."""
    alt = cross_signed_chain(gw.ca_cert, gw.workdir / "cross.pem")
    gw.doc["cas"] = {"local": {"type": "local", "alternate_chain_files": [str(alt)]}}
    gw.config.write_text(to_toml(gw.doc))
    await gw.restart()


def _top_issuer(pem: bytes) -> str:
    top = x509.load_pem_x509_certificates(pem)[-1]
    return str(top.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


async def test_certbot_preferred_chain(gateway: GatewayProcess, tmp_path: Path) -> None:
    require_tool("certbot")
    await _offer_cross_signed(gateway)
    env = {"REQUESTS_CA_BUNDLE": str(gateway.tls_cert)}
    port = str(gateway.doc["validation"]["http01_port"])
    default_root = _top_issuer(gateway.ca_cert.read_bytes())
    for name, preferred in (("old.example.com", OLD_ROOT_CN), ("new.example.com", None)):
        choice = ["--preferred-chain", preferred] if preferred else []
        code, out = await run(["certbot", "certonly", "--standalone", "--http-01-address",
                               "127.0.0.1", "--http-01-port", port, "-d", name, *choice,
                               *certbot_args(gateway, tmp_path)], env, TIMEOUT)
        assert code == 0, out
        full = (tmp_path / "cb" / "config" / "live" / name / "fullchain.pem").read_bytes()
        check_chain(full, gateway, [name])
        assert _top_issuer(full) == (preferred or default_root)


async def test_lego_preferred_chain(gateway: GatewayProcess, tmp_path: Path) -> None:
    await _offer_cross_signed(gateway)
    crt = (await lego_http01(gateway, tmp_path, "legoalt.example.com", "--preferred-chain",
                             OLD_ROOT_CN)).read_bytes()
    check_chain(crt, gateway, ["legoalt.example.com"])
    assert _top_issuer(crt) == OLD_ROOT_CN
