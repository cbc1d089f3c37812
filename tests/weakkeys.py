"""Weak keys built in the test run, one per class the goodkey checks refuse.

Nothing is downloaded: primes come from a seeded generator and a Miller–Rabin
test, and each key is assembled from its primes so that it can still sign a
CSR (the library's own key validation is skipped for that). Keys the library
refuses to load at all (an EC point off its curve) are written as raw
SubjectPublicKeyInfo structures into an otherwise valid CSR.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from functools import cache

from asn1crypto import csr as asn1csr
from asn1crypto import keys as asn1keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _primes_below(limit: int) -> tuple[int, ...]:
    return tuple(p for p in range(2, limit) if all(p % d for d in range(2, math.isqrt(p) + 1)))


_SIEVE_PRIMES = _primes_below(2000)
_SIEVE = math.prod(_SIEVE_PRIMES)
# The primorial of the first 39 primes (2 … 167): Infineon RSALib's M for 512-bit primes.
ROCA_M = math.prod(_primes_below(168))


def is_probable_prime(n: int, rounds: int = 24) -> bool:
    """Miller–Rabin with seeded bases (an error chance below 4^-24)."""
    if n < 2000 or math.gcd(n, _SIEVE) != 1:
        return n in _SIEVE_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    bases = random.Random(n).sample(range(2, min(n - 1, 2**32)), k=min(rounds, n - 3))
    return all(_passes(n, a, d, s) for a in bases)


def _passes(n: int, a: int, d: int, s: int) -> bool:
    x = pow(a, d, n)
    if x in (1, n - 1):
        return True
    for _ in range(s - 1):
        x = x * x % n
        if x == n - 1:
            return True
    return False


def next_prime(n: int, usable: Callable[[int], bool] = lambda p: True) -> int:
    """The first probable prime ≥ n for which ``usable`` holds."""
    n |= 1
    while not (is_probable_prime(n) and usable(n)):
        n += 2
    return n


def random_prime(bits: int, rng: random.Random) -> int:
    """A prime of exactly ``bits`` bits with gcd(65537, p-1) = 1."""
    return next_prime(rng.getrandbits(bits) | (3 << (bits - 2)), coprime_to_65537)


def coprime_to_65537(p: int) -> bool:
    """True if 65537 is invertible mod p-1, as an RSA key with that exponent needs."""
    return math.gcd(65537, p - 1) == 1


def private_key(p: int, q: int, e: int = 65537) -> rsa.RSAPrivateKey:
    """The RSA key of primes p and q, whatever their quality."""
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p),
                                    rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


@cache
def small_factor_key() -> rsa.RSAPrivateKey:
    """n = 9973 · q: the largest prime the small-factor check looks for."""
    q = random_prime(2035, random.Random(1))
    return private_key(9973, q)


@cache
def fermat_key() -> rsa.RSAPrivateKey:
    """Two 1024-bit primes 2^400 apart: Fermat's method finds them in its first round."""
    rng = random.Random(2)
    p = random_prime(1024, rng)
    q = next_prime(p + 2**400 + rng.getrandbits(300), coprime_to_65537)
    return private_key(p, q)


@cache
def roca_key() -> rsa.RSAPrivateKey:
    """Both primes of the Infineon form k·M + (65537^a mod M), 1024 bits each."""
    rng = random.Random(3)
    return private_key(_roca_prime(rng), _roca_prime(rng))


def _roca_prime(rng: random.Random) -> int:
    # Primes of at least 1.5·2^1023, so that two of them make a full 2048-bit modulus.
    low, high = 3 * 2**1022 // ROCA_M + 1, 2**1024 // ROCA_M - 1
    while True:
        candidate = rng.randrange(low, high) * ROCA_M + pow(65537, rng.randrange(1, 2**20), ROCA_M)
        if coprime_to_65537(candidate) and is_probable_prime(candidate):
            return candidate


@cache
def exponent_3_key() -> rsa.RSAPrivateKey:
    """A sound 2048-bit modulus with the public exponent 3 (the library still makes those)."""
    return rsa.generate_private_key(public_exponent=3, key_size=2048)


WEAK_KEYS: dict[str, tuple[Callable[[], rsa.RSAPrivateKey], str]] = {
    "small factor": (small_factor_key, "divisible by the small prime 9973"),
    "fermat": (fermat_key, "Fermat's method factors the RSA modulus"),
    "roca": (roca_key, "ROCA fingerprint"),
    "exponent 3": (exponent_3_key, "public exponent 3 is not allowed"),
}
"""Per class: how to build the key, and the words its refusal must contain."""


def with_public_key(csr_der: bytes, spki_der: bytes) -> bytes:
    """The CSR with its SubjectPublicKeyInfo replaced (its signature no longer matches)."""
    request = asn1csr.CertificationRequest.load(csr_der)
    request["certification_request_info"]["subject_pk_info"] = asn1keys.PublicKeyInfo.load(spki_der)
    return bytes(request.dump(force=True))


def _ec_spki(point: bytes) -> bytes:
    """A P-256 SubjectPublicKeyInfo around an encoded point, checked by nobody."""
    algorithm = {"algorithm": "ec", "parameters": ("named", "secp256r1")}
    return bytes(asn1keys.PublicKeyInfo({"algorithm": algorithm, "public_key": point}).dump())


def off_curve_spki() -> bytes:
    """A P-256 key whose point had the last bit of y flipped: no longer on the curve."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _ec_spki(point[:-1] + bytes([point[-1] ^ 1]))


def infinity_spki() -> bytes:
    """A P-256 key that is the point at infinity (SEC 1 encodes it as one zero octet)."""
    return _ec_spki(b"\x00")


def even_exponent_spki() -> bytes:
    """A sound RSA modulus with the public exponent 65538."""
    n = rsa.generate_private_key(65537, 2048).public_key().public_numbers().n
    key = asn1keys.RSAPublicKey({"modulus": n, "public_exponent": 65538})
    return bytes(asn1keys.PublicKeyInfo({"algorithm": {"algorithm": "rsa"},
                                         "public_key": key}).dump())


MALFORMED_KEYS: dict[str, tuple[Callable[[], bytes], str]] = {
    "off-curve point": (off_curve_spki, "malformed"),
    "point at infinity": (infinity_spki, "point is at infinity"),
    "even exponent": (even_exponent_spki, "e must be odd"),
}
"""Per class: a SubjectPublicKeyInfo the library will not load, and words of its refusal."""


CsrCase = tuple[str, Callable[[], bytes], str, str]


def refused_csr_cases(make_csr: Callable[[ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey], bytes]
                      ) -> list[CsrCase]:
    """Per weak or malformed key class: (id, CSR factory, start of the reason, its words).

    ``make_csr`` signs a CSR that the front end under test would otherwise accept.
    """
    cases: list[CsrCase] = []
    for name, (make, words) in sorted(WEAK_KEYS.items()):
        cases.append((f"weak: {name}", lambda m=make: make_csr(m()),
                      "the CSR's public key is weak: ", words))
    for name, (spki, words) in sorted(MALFORMED_KEYS.items()):
        cases.append((f"malformed: {name}", lambda s=spki: with_public_key(
            make_csr(ec.generate_private_key(ec.SECP256R1())), s()),
            "the CSR's public key is malformed: ", words))
    return cases
