"""EnvelopedData both ways (gateway.scep.envelope): ciphers, legacy, one error for every cause."""

from __future__ import annotations

import pytest

from gateway.scep.envelope import EnvelopeError, open_envelope, seal
from tests.scep.client import rsa_key, self_signed

KEY = rsa_key()
CERT = self_signed(KEY)


@pytest.mark.parametrize("cipher", ["aes128_cbc", "aes192_cbc", "aes256_cbc"])
def test_round_trip(cipher: str) -> None:
    assert open_envelope(seal(b"payload" * 30, CERT, cipher), KEY, legacy=False) == (
        b"payload" * 30, cipher)


def test_triple_des_only_for_legacy() -> None:
    sealed = seal(b"old device", CERT, "tripledes_3key")
    with pytest.raises(EnvelopeError, match="not offered"):
        open_envelope(sealed, KEY, legacy=False)
    assert open_envelope(sealed, KEY, legacy=True)[0] == b"old device"


# (A flipped ciphertext byte is left out: CBC padding survives it once in ~256 tries.)
@pytest.mark.parametrize("case", ["other key", "garbage", "truncated"])
def test_every_failure_is_the_same_error(case: str) -> None:
    sealed = seal(b"secret", CERT)
    der = {"other key": seal(b"secret", self_signed(rsa_key())),
           "garbage": b"\x30\x05garbage", "truncated": sealed[:40]}[case]
    with pytest.raises(EnvelopeError):
        open_envelope(der, KEY, legacy=False)
