"""The local CA with its key in a real SoftHSM2 token: ca init, issuance, CRL, OCSP, faults.

Every token is created up front in one private SoftHSM directory: SoftHSM reads
its token list when the library is initialised, which happens once per process.
Results are checked with ``openssl verify`` / ``openssl ocsp``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from connectors.base import CAConfigError, CAUnavailable, Issued, RevocationReason
from connectors.localca.connector import LocalCAConnector, LocalCASettings
from gateway import cli
from gateway.core.pkix import PkixService
from gateway.pkix.routes import PKIX_SERVICE, add_routes
from tests.conftest import require_tool
from tests.pkix.localca_support import SOFTHSM_LIBRARY, SoftHSM, issue_request, softhsm

LIBRARY = SOFTHSM_LIBRARY
HSM = SoftHSM


@pytest.fixture
def hsm() -> SoftHSM:
    """The process's SoftHSM tokens (skipped, or failed under CI, without SoftHSM)."""
    require_tool("softhsm2-util", LIBRARY)
    return softhsm()


def _config(path: Path, hsm: HSM, token: str, key_type: str, port: int = 8080) -> Path:
    path.write_text(
        f"""
[server]
data_dir = "{path.parent / "data"}"
https_port = 0
http_port = {port}

[cas.hsm]
type = "local"
key_backend = "pkcs11"
pkcs11_library = "{LIBRARY}"
token_label = "{token}"
key_label = "ca-{key_type}"
pin_file = "{hsm.pin_file}"
key_type = "{key_type}"
common_name = "Test HSM CA {key_type}"
"""
    )
    return path


def _settings(tmp: Path, hsm: HSM, token: str, key_type: str, **extra: object) -> LocalCASettings:
    options: dict[str, object] = {
        "type": "local",
        "dir": str(tmp / "data" / "ca" / "hsm"),
        "key_backend": "pkcs11",
        "pkcs11_library": LIBRARY,
        "token_label": token,
        "key_label": f"ca-{key_type}",
        "pin_file": str(hsm.pin_file),
        "key_type": key_type,
        **extra,
    }
    if "pin_env" in extra:
        del options["pin_file"]
    return LocalCASettings.from_options(options, tmp / "data", "hsm")


async def _cli(argv: list[str]) -> int:
    """Run ``acme-gateway`` in a thread: the CLI runs its own event loop."""
    return await asyncio.to_thread(cli.main, argv)


async def _openssl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "openssl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


def _pem(path: Path, der: bytes) -> Path:
    path.write_bytes(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM))
    return path


def _bundle(path: Path, ders: tuple[bytes, ...]) -> Path:
    path.write_bytes(b"".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM)
                              for d in ders))
    return path


@pytest.fixture
async def pkix_server(unused_tcp_port: int) -> AsyncIterator[tuple[int, dict[str, object]]]:
    """An aiohttp server on 127.0.0.1 serving /pkix for the connectors put into the dict."""
    connectors: dict[str, object] = {}
    app = web.Application()
    app[PKIX_SERVICE] = PkixService(connectors)
    add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield unused_tcp_port, connectors
    await runner.cleanup()


async def test_ec_ca_in_token_crl_and_ocsp(
    tmp_path: Path, hsm: HSM, pkix_server: tuple[int, dict[str, object]]
) -> None:
    require_tool("openssl")
    port, served = pkix_server
    config = _config(tmp_path / "gateway.toml", hsm, "ec", "ec-p256", port)
    assert await _cli(["--config", str(config), "ca", "init", "--ca", "hsm"]) == 0
    assert not (tmp_path / "data" / "ca" / "hsm" / "ca.key.pem").exists()
    ca = LocalCAConnector(
        "hsm", _settings(tmp_path, hsm, "ec", "ec-p256", public_base_url=f"http://127.0.0.1:{port}")
    )
    await ca.start()
    try:
        await _check_key_attributes(ca)
        served["hsm"] = ca
        result = await ca.issue(issue_request())
        assert isinstance(result, Issued)
        assert len(result.chain_der) == 1  # the issuing CA; the root stays with the clients
        ca_pem = _pem(tmp_path / "ca.pem", result.chain_der[0])
        trust = _bundle(tmp_path / "trust.pem", await ca.ca_certs())  # issuing CA and root
        leaf_pem = _pem(tmp_path / "leaf.pem", result.leaf_der)
        code, out = await _openssl("verify", "-CAfile", str(trust), str(leaf_pem))
        assert code == 0, out
        ocsp_args = ["ocsp", "-issuer", str(ca_pem), "-cert", str(leaf_pem), "-CAfile", str(trust)]
        ocsp_args += ["-url", f"http://127.0.0.1:{port}/pkix/hsm/ocsp"]
        code, out = await _openssl(*ocsp_args)
        assert code == 0 and f"{leaf_pem}: good" in out and "Response verify OK" in out, out
        await ca.revoke(result.leaf_der, RevocationReason.KEY_COMPROMISE)
        code, out = await _openssl(*ocsp_args)
        assert (
            f"{leaf_pem}: revoked" in out
            and "Reason: keyCompromise" in out
            and "Response verify OK" in out
        ), out
        crl = tmp_path / "crl.pem"
        crl_der = await _http_get(f"http://127.0.0.1:{port}/pkix/hsm/crl")
        crl.write_bytes(x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM))
        code, out = await _openssl(
            "verify", "-crl_check", "-CAfile", str(trust), "-CRLfile", str(crl), str(leaf_pem)
        )
        assert code != 0 and "certificate revoked" in out, out
        other = await ca.issue(issue_request())
        assert isinstance(other, Issued)
        other_pem = _pem(tmp_path / "other.pem", other.leaf_der)
        code, out = await _openssl(
            "verify", "-crl_check", "-CAfile", str(trust), "-CRLfile", str(crl), str(other_pem)
        )
        assert code == 0, out
    finally:
        await ca.aclose()


async def _http_get(url: str) -> bytes:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def _check_key_attributes(ca: LocalCAConnector) -> None:
    from pkcs11 import Attribute

    backend = ca.backend
    key = backend._ref.key  # type: ignore[attr-defined]
    attrs = await backend.run(
        lambda: {
            a: key[a]
            for a in (Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.SIGN, Attribute.DECRYPT)
        }
    )
    assert attrs == {
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.SIGN: True,
        Attribute.DECRYPT: False,
    }


async def test_rsa_ca_in_token(tmp_path: Path, hsm: HSM) -> None:
    require_tool("openssl")
    config = _config(tmp_path / "gateway.toml", hsm, "rsa", "rsa-2048")
    assert await _cli(["--config", str(config), "ca", "init", "--ca", "hsm"]) == 0
    ca = LocalCAConnector("hsm", _settings(tmp_path, hsm, "rsa", "rsa-2048"))
    await ca.start()
    try:
        result = await ca.issue(issue_request())
        assert isinstance(result, Issued)
        await ca.revoke(result.leaf_der, RevocationReason.SUPERSEDED)
        crl_der = await ca.crl_der()
        ca_pem = _bundle(tmp_path / "ca.pem", await ca.ca_certs())  # issuing CA and root
    finally:
        await ca.aclose()
    leaf_pem = _pem(tmp_path / "leaf.pem", result.leaf_der)
    code, out = await _openssl("verify", "-CAfile", str(ca_pem), str(leaf_pem))
    assert code == 0, out
    crl = tmp_path / "crl.pem"
    crl.write_bytes(x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM))
    code, out = await _openssl("crl", "-in", str(crl), "-CAfile", str(ca_pem), "-noout")
    assert code == 0 and "verify OK" in out, out


async def test_csr_for_an_external_root_then_import(
    tmp_path: Path, hsm: HSM, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("openssl")
    config = _config(tmp_path / "gateway.toml", hsm, "sub", "ec-p384")
    assert await _cli(["--config", str(config), "ca", "init", "--ca", "hsm", "--csr"]) == 0
    ca_dir = tmp_path / "data" / "ca" / "hsm"
    csr = x509.load_pem_x509_csr((ca_dir / "ca.csr.pem").read_bytes())
    assert csr.is_signature_valid
    root_key, root = _root()
    signed = _sign_intermediate(csr, root_key, root)
    (tmp_path / "signed.pem").write_bytes(signed.public_bytes(Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    # A certificate for some other key is refused.
    wrong = _sign_intermediate(_csr_of_new_key(), root_key, root)
    (tmp_path / "wrong.pem").write_bytes(wrong.public_bytes(Encoding.PEM))
    wrong_argv = [
        "--config",
        str(config),
        "ca",
        "import-cert",
        "--ca",
        "hsm",
        str(tmp_path / "wrong.pem"),
    ]
    assert await _cli(wrong_argv) == 1
    assert "not the CA key" in capsys.readouterr().err
    argv = [
        "--config",
        str(config),
        "ca",
        "import-cert",
        "--ca",
        "hsm",
        str(tmp_path / "signed.pem"),
    ]
    assert await _cli([*argv, "--chain", str(tmp_path / "root.pem")]) == 0
    assert await _cli(["--config", str(config), "ca", "info", "--ca", "hsm"]) == 0
    info = capsys.readouterr().out
    assert "PKCS#11 token 'sub'" in info and "[1] subject:  CN=Test Root" in info and "ok" in info
    ca = LocalCAConnector("hsm", _settings(tmp_path, hsm, "sub", "ec-p384"))
    await ca.start()
    try:
        result = await ca.issue(issue_request())
    finally:
        await ca.aclose()
    assert isinstance(result, Issued) and len(result.chain_der) == 1  # never the root
    inter = _pem(tmp_path / "inter.pem", result.chain_der[0])
    leaf = _pem(tmp_path / "leaf.pem", result.leaf_der)
    code, out = await _openssl(
        "verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(inter), str(leaf)
    )
    assert code == 0, out


def _root() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _csr_of_new_key() -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Impostor")])
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return builder.add_extension(usage, True).sign(key, hashes.SHA256())


def _sign_intermediate(
    csr: x509.CertificateSigningRequest,
    root_key: ec.EllipticCurvePrivateKey,
    root: x509.Certificate,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(root.subject)
        .public_key(csr.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=20))
    )
    for ext in csr.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False
    )
    return builder.sign(root_key, hashes.SHA256())


async def test_token_error_while_signing_is_retryable_and_recovers(
    tmp_path: Path, hsm: HSM
) -> None:
    config = _config(tmp_path / "gateway.toml", hsm, "faults", "ec-p256")
    assert await _cli(["--config", str(config), "ca", "init", "--ca", "hsm"]) == 0
    ca = LocalCAConnector("hsm", _settings(tmp_path, hsm, "faults", "ec-p256"))
    await ca.start()
    try:
        backend = ca.backend
        # Pull the session out from under the connector, as a token reset would.
        await backend._call(lambda: backend._session.close())  # type: ignore[attr-defined]
        with pytest.raises(CAUnavailable, match="HSM failed") as caught:
            await ca.issue(issue_request())
        assert caught.value.retryable
        assert isinstance(await ca.issue(issue_request()), Issued)
        await ca.check()
        # Concurrent requests travel to the token in one batch: only the one that met
        # the dead session fails, the rest of the batch runs on a fresh session.
        await backend._call(lambda: backend._session.close())  # type: ignore[attr-defined]
        results = await asyncio.gather(
            *(ca.issue(issue_request()) for _ in range(5)), return_exceptions=True
        )
        assert [type(r).__name__ for r in results] == ["CAUnavailable"] + ["Issued"] * 4
        # A session that cannot be reopened (here: the PIN was changed) is retryable too.
        good = backend.settings  # type: ignore[attr-defined]
        backend.settings = dataclasses.replace(good, pin="000000")  # type: ignore[attr-defined]
        await backend._call(lambda: backend._session.close())  # type: ignore[attr-defined]
        with pytest.raises(CAUnavailable, match="HSM failed"):
            await ca.issue(issue_request())  # meets the dead session
        with pytest.raises(
            CAUnavailable, match="cannot be reopened: the PIN for token 'faults' is wrong"
        ):
            await ca.issue(issue_request())  # tries to log in again
        backend.settings = good  # type: ignore[attr-defined]
        assert isinstance(await ca.issue(issue_request()), Issued)
    finally:
        await ca.aclose()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pin_env": "WRONG_PIN"}, "PIN for token 'faults' is wrong"),
        ({"token_label": "absent"}, r"no PKCS#11 token labelled 'absent' .*present: .*'faults'"),
        (
            {"pkcs11_library": "/nonexistent/libpkcs11.so"},
            "cannot load the PKCS#11 library /nonexistent",
        ),
        ({"key_label": "no-such-key"}, "no private key labelled 'no-such-key'.*ca init"),
        (
            {"key_type": "rsa-2048", "key_label": "ca-ec-p256"},
            "is ec-p256, but key_type is rsa-2048",
        ),
    ],
)
async def test_start_faults_name_the_cause(
    tmp_path: Path, hsm: HSM, monkeypatch: pytest.MonkeyPatch, change: dict[str, str], message: str
) -> None:
    config = _config(tmp_path / "gateway.toml", hsm, "faults", "ec-p256")
    await _cli(["--config", str(config), "ca", "init", "--ca", "hsm", "--force"])
    monkeypatch.setenv("WRONG_PIN", "0000")
    key_type = change.pop("key_type", "ec-p256")
    ca = LocalCAConnector("hsm", _settings(tmp_path, hsm, "faults", key_type, **change))
    with pytest.raises(CAConfigError, match=message):
        await ca.start()
