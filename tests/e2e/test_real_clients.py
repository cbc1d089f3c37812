"""Real certbot and lego against a gateway process on loopback.

HTTP-01 is validated for real against the clients' standalone servers; DNS-01
through pebble-challtestsrv, which lego feeds with its `exec` provider. Each
issued chain must verify against the gateway's CA and carry the requested names.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import require_tool
from tests.e2e.harness import ChallTestSrv, GatewayProcess, fetch_crl, run

TIMEOUT = 150.0


def check_chain(pem: bytes, gw: GatewayProcess, names: list[str]) -> x509.Certificate:
    """The chain's leaf is issued by the gateway's CA and names exactly ``names``."""
    chain = x509.load_pem_x509_certificates(pem)
    ca = x509.load_pem_x509_certificates(gw.ca_cert.read_bytes())[0]
    leaf = chain[0]
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    return leaf


def certbot_args(gw: GatewayProcess, tmp: Path) -> list[str]:
    return ["--server", gw.directory, "--non-interactive", "--agree-tos",
            "--register-unsafely-without-email", "--config-dir", str(tmp / "cb" / "config"),
            "--work-dir", str(tmp / "cb" / "work"), "--logs-dir", str(tmp / "cb" / "logs")]


async def test_certbot_http01_then_revoke(gateway: GatewayProcess, tmp_path: Path) -> None:
    require_tool("certbot")
    env = {"REQUESTS_CA_BUNDLE": str(gateway.tls_cert)}
    port = str(gateway.doc["validation"]["http01_port"])
    code, out = await run(["certbot", "certonly", "--standalone", "--http-01-address",
                           "127.0.0.1", "--http-01-port", port, "-d", "cb.example.com",
                           "-d", "www.cb.example.com", *certbot_args(gateway, tmp_path)],
                          env, TIMEOUT)
    assert code == 0, out
    live = tmp_path / "cb" / "config" / "live" / "cb.example.com"
    check_chain((live / "fullchain.pem").read_bytes(), gateway,
                ["cb.example.com", "www.cb.example.com"])
    revoke = ["certbot", "revoke", "--cert-path", str(live / "cert.pem"), "--reason",
              "keycompromise", "--no-delete-after-revoke", *certbot_args(gateway, tmp_path)]
    code, out = await run(revoke, env, TIMEOUT)
    assert code == 0, out
    code, out = await run(revoke, env, TIMEOUT)
    # Debian's certbot 2.1 masks ACME errors behind an AttributeError on stdout; its log
    # file keeps the problem document the gateway sent.
    log = (tmp_path / "cb" / "logs" / "letsencrypt.log").read_text()
    assert code != 0 and "urn:ietf:params:acme:error:alreadyRevoked" in log


def lego_cmd(gw: GatewayProcess, tmp: Path, *args: str) -> list[str]:
    return ["lego", "--server", gw.directory, "--email", "ops@example.com", "--accept-tos",
            "--path", str(tmp / "lego"), *args]


def lego_env(gw: GatewayProcess) -> dict[str, str]:
    return {"LEGO_CA_CERTIFICATES": str(gw.tls_cert)}


async def lego_http01(gw: GatewayProcess, tmp: Path, domain: str, *run_args: str) -> Path:
    """``lego run`` with HTTP-01 for one name (``run_args`` after ``run``); the .crt file."""
    require_tool("lego")
    port = gw.doc["validation"]["http01_port"]
    code, out = await run(lego_cmd(gw, tmp, "--domains", domain, "--http", "--http.port",
                                   f"127.0.0.1:{port}", "run", *run_args), lego_env(gw), TIMEOUT)
    assert code == 0, out
    return tmp / "lego" / "certificates" / f"{domain}.crt"


async def test_lego_http01_then_revoke(gateway: GatewayProcess, tmp_path: Path) -> None:
    env = lego_env(gateway)
    crt = await lego_http01(gateway, tmp_path, "lego.example.com")
    leaf = check_chain(crt.read_bytes(), gateway, ["lego.example.com"])
    code, out = await run(lego_cmd(gateway, tmp_path, "--domains", "lego.example.com",
                                   "revoke", "--reason", "4"), env, TIMEOUT)
    assert code == 0, out
    crl = await fetch_crl(leaf, gateway.tls_cert)
    entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        == x509.ReasonFlags.superseded



async def test_lego_dns01_wildcard(gateway: GatewayProcess, dns: ChallTestSrv,
                                   tmp_path: Path) -> None:
    require_tool("lego")
    env = {"LEGO_CA_CERTIFICATES": str(gateway.tls_cert),
           "EXEC_PATH": str(dns.exec_script(tmp_path)),
           "EXEC_PROPAGATION_TIMEOUT": "30", "EXEC_POLLING_INTERVAL": "1",
           "EXEC_SEQUENCE_INTERVAL": "1"}
    names = ["*.wild.example.com", "wild.example.com"]
    args = [a for n in names for a in ("--domains", n)]
    code, out = await run(lego_cmd(gateway, tmp_path, *args, "--dns", "exec",
                                   "--dns.resolvers", f"127.0.0.1:{dns.dns_port}",
                                   "--dns.disable-cp", "run"), env, TIMEOUT)
    assert code == 0, out
    crt = tmp_path / "lego" / "certificates" / "_.wild.example.com.crt"
    check_chain(crt.read_bytes(), gateway, names)


@pytest.mark.skipif(not os.environ.get("ACME_SH"),
                    reason="acme.sh has no Debian, PyPI or npm package: "
                           "set ACME_SH=/path/to/acme.sh to run it")
async def test_acme_sh_standalone_then_revoke(gateway: GatewayProcess, tmp_path: Path) -> None:
    """acme.sh (opt-in: not installable from the package registries CI reaches)."""
    acme_sh = os.environ["ACME_SH"]
    require_tool(acme_sh, "socat")
    common = ["--home", str(tmp_path / "acmesh"), "--server", gateway.directory,
              "--ca-bundle", str(gateway.tls_cert)]
    port = str(gateway.doc["validation"]["http01_port"])
    code, out = await run([acme_sh, *common, "--register-account", "-m", "ops@example.com"])
    assert code == 0, out
    code, out = await run([acme_sh, *common, "--issue", "--standalone", "--httpport", port,
                           "-d", "sh.example.com", "--keylength", "ec-256"], timeout=TIMEOUT)
    assert code == 0, out
    cert = tmp_path / "acmesh" / "sh.example.com_ecc" / "fullchain.cer"
    check_chain(cert.read_bytes(), gateway, ["sh.example.com"])
    code, out = await run([acme_sh, *common, "--revoke", "-d", "sh.example.com", "--ecc"])
    assert code == 0 and "Successfully revoked" in out, out
