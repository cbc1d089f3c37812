"""EST refuses weak and malformed CSR keys with a 4xx and the one-line reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.est.support import (
    ALICE,
    DER,
    Gateway,
    b64,
    certs_of,
    ec_key,
    make_csr,
    request,
    write_pair,
)
from tests.weakkeys import MALFORMED_KEYS, refused_csr_cases, roca_key, with_public_key

CASES = refused_csr_cases(lambda key: make_csr(key, cn="w1.example.net",
                                               sans=("w1.example.net",)))


@pytest.mark.parametrize(("case", "csr", "prefix", "words"), CASES, ids=[c[0] for c in CASES])
async def test_simpleenroll_refuses_the_key(gw: Gateway, case: str, csr: Callable[[], bytes],
                                            prefix: str, words: str) -> None:
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(csr()), auth=ALICE)
    text = body.decode()
    assert status == 400, (case, status, text)
    assert text.endswith("\r\n") and "\n" not in text[:-2], text
    assert text.startswith(prefix) and words in text, case


async def test_simplereenroll_to_a_weak_key_is_refused(gw: Gateway, tmp_path: Path) -> None:
    key = ec_key()
    csr = make_csr(key, cn="w2.example.net", sans=("w2.example.net",))
    status, _, body = await request(gw, "POST", "/basic/simpleenroll", b64(csr), auth=ALICE)
    assert status == 200, body
    pair = write_pair(tmp_path / "w2", certs_of(body)[0].public_bytes(DER), key)
    rekey = make_csr(roca_key(), cn="w2.example.net", sans=("w2.example.net",))
    status, _, body = await request(gw, "POST", "/simplereenroll", b64(rekey), cert=pair)
    assert status == 400 and b"ROCA fingerprint" in body


async def test_serverkeygen_refuses_a_template_whose_key_cannot_load(gw: Gateway) -> None:
    template = make_csr(ec_key(), cn="m1.example.net", sans=("m1.example.net",))
    csr = with_public_key(template, MALFORMED_KEYS["off-curve point"][0]())
    status, _, body = await request(gw, "POST", "/basic/serverkeygen", b64(csr), auth=ALICE)
    assert status == 400 and b"the CSR's public key is malformed" in body
