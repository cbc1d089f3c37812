"""Weak public keys: one case per class the goodkey checks refuse, and sound keys passing."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.core import goodkey
from gateway.core.keys import account_key_weakness, check_account_key
from gateway.errors import ErrorKind, GatewayError
from tests.acmeclient import jwk_of, thumbprint
from tests.weakkeys import WEAK_KEYS, fermat_key, random_prime, roca_key

P256 = 2**256 - 2**224 + 2**192 + 2**96 - 1


@pytest.mark.parametrize("weakness", sorted(WEAK_KEYS))
def test_weak_rsa_key_is_refused_naming_its_class(weakness: str) -> None:
    make, words = WEAK_KEYS[weakness]
    with pytest.raises(GatewayError) as err:
        goodkey.check_public_key(make().public_key(), "the CSR's public key")
    assert err.value.kind is ErrorKind.BAD_PUBLIC_KEY
    assert err.value.detail.startswith("the CSR's public key is weak: ")
    assert words in err.value.detail and err.value.detail.endswith("generate a new key")


SOUND_KEYS: list[Callable[[], Any]] = [
    lambda: rsa.generate_private_key(65537, 2048),
    lambda: ec.generate_private_key(ec.SECP256R1()),
    lambda: ec.generate_private_key(ec.SECP384R1()),
    lambda: ec.generate_private_key(ec.SECP521R1()),
    ed25519.Ed25519PrivateKey.generate,
]


@pytest.mark.parametrize("make", SOUND_KEYS)
def test_sound_keys_pass(make: Callable[[], Any]) -> None:
    for _ in range(5):  # several points per curve: the curve constants must be right
        assert goodkey.key_weakness(make().public_key()) is None


def _sound_modulus() -> int:
    return rsa.generate_private_key(65537, 2048).public_key().public_numbers().n


RSA_NUMBERS: list[tuple[str, Callable[[], tuple[int, int]], str | None]] = [
    # The library refuses these at load; the rules on plain integers still hold.
    ("even modulus", lambda: (2 * random_prime(2047, random.Random(5)), 65537),
     "divisible by the small prime 2"),
    ("even exponent", lambda: (_sound_modulus(), 65538), "exponent 65538 is not allowed"),
    ("exponent below 2^16+1", lambda: (_sound_modulus(), 65535), "exponent 65535"),
    ("exponent of 257 bits", lambda: (_sound_modulus(), 2**256 + 1), "exponent of 257 bits"),
    ("largest exponent", lambda: (_sound_modulus(), 2**256 - 1), None),
    ("one ROCA-form prime is not the fingerprint",
     lambda: (roca_key().private_numbers().p * random_prime(1024, random.Random(6)), 65537),
     None),
]


@pytest.mark.parametrize(("case", "numbers", "words"), RSA_NUMBERS, ids=[c[0] for c in RSA_NUMBERS])
def test_rsa_rules_on_numbers(case: str, numbers: Callable[[], tuple[int, int]],
                              words: str | None) -> None:
    found = goodkey.rsa_weakness(*numbers())
    if words is None:
        assert found is None, case
    else:
        assert found is not None and words in found, case


def test_fermat_finds_the_close_primes() -> None:
    secret = fermat_key().private_numbers()
    assert goodkey.fermat_factor(secret.public_numbers.n) == tuple(sorted((secret.p, secret.q)))


def test_fermat_gives_up_on_a_sound_modulus_and_finds_a_square() -> None:
    assert goodkey.fermat_factor(_sound_modulus()) is None
    p = random_prime(1024, random.Random(7))
    assert goodkey.fermat_factor(p * p) == (p, p)


def _point(curve: ec.EllipticCurve) -> tuple[int, int]:
    numbers = ec.generate_private_key(curve).public_key().public_numbers()
    return numbers.x, numbers.y


EC_POINTS: list[tuple[str, str, Callable[[], tuple[int, int]], str | None]] = [
    ("on P-256", "secp256r1", lambda: _point(ec.SECP256R1()), None),
    ("y moved off the curve", "secp256r1",
     lambda: (_point(ec.SECP256R1())[0], _point(ec.SECP256R1())[1] ^ 1), "not on the curve"),
    ("x outside the field", "secp256r1", lambda: (P256, 0), "outside the field"),
    ("(0, 0) for the point at infinity", "secp256r1", lambda: (0, 0), "not on the curve"),
    ("P-256 point on P-384", "secp384r1", lambda: _point(ec.SECP256R1()), "not on the curve"),
    ("curve without constants here", "secp256k1", lambda: (1, 2), None),
]


@pytest.mark.parametrize(("case", "curve", "point", "words"), EC_POINTS,
                         ids=[c[0] for c in EC_POINTS])
def test_ec_point_rules(case: str, curve: str, point: Callable[[], tuple[int, int]],
                        words: str | None) -> None:
    found = goodkey.ec_weakness(curve, *point())
    if words is None:
        assert found is None, case
    else:
        assert found is not None and words in found, case


@pytest.mark.parametrize(("case", "curve", "point", "words"), EC_POINTS[:-1],
                         ids=[c[0] for c in EC_POINTS[:-1]])
def test_an_encoded_point_is_judged_as_its_coordinates(
        case: str, curve: str, point: Callable[[], tuple[int, int]], words: str | None) -> None:
    x, y = point()
    size = 32 if curve == "secp256r1" else 48
    encoded = b"\x04" + x.to_bytes(size) + y.to_bytes(size)
    assert goodkey.ec_point_weakness(curve, encoded) == goodkey.ec_weakness(curve, x, y), case


def test_a_point_that_is_not_uncompressed_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    compressed = key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    with pytest.raises(GatewayError, match="the CSR's public key is weak: .* not an uncompressed"):
        goodkey.check_ec_point("secp256r1", compressed, "the CSR's public key")
    goodkey.check_ec_point(
        "secp256r1", key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


def test_account_keys_are_judged_and_the_verdict_cached() -> None:
    weak = fermat_key()
    with pytest.raises(GatewayError, match="the account key is weak: Fermat"):
        check_account_key(jwk_of(weak))
    verdict = account_key_weakness(thumbprint(weak), jwk_of(weak))
    assert verdict is not None and "Fermat" in verdict
    sound = ec.generate_private_key(ec.SECP256R1())
    check_account_key(jwk_of(sound))
    assert account_key_weakness(thumbprint(sound), jwk_of(sound)) is None
    # The thumbprint names the key: a cached verdict is not computed again.
    assert account_key_weakness(thumbprint(weak), jwk_of(sound)) == verdict
