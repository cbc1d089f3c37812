"""Weak public keys refused: the checks every CSR key and every ACME account key pass.

:func:`check_public_key` is the one entry point. It refuses, with a
``badPublicKey`` GatewayError naming the weakness:

* an RSA modulus with a prime factor below 10 000 (an even modulus included):
  one gcd with the product of those primes;
* an RSA modulus that Fermat's method factors within 100 rounds, i.e. whose two
  primes are too close together (the bound Let's Encrypt's Boulder uses);
* an RSA modulus carrying the ROCA fingerprint of Infineon's RSALib
  (CVE-2017-15361): such primes are ``k·M + (65537^a mod M)`` with ``M`` a
  primorial, so for every small prime ``r`` dividing ``M`` the modulus mod
  ``r`` lies in the subgroup that 65537 generates. A key built otherwise shows
  that by chance with probability about 2^-27.8 (the product over the primes
  used of the subgroup's share of the residues);
* an RSA public exponent that is even or outside 2^16+1 … 2^256−1 (the range
  the CA/Browser Forum Baseline Requirements §6.1.6 recommend);
* an EC point outside the field, or not on its curve. The point at infinity
  has no affine coordinates and so fails this test too; the NIST curves have
  cofactor 1, so any other point on them generates the whole group.

The cryptography library already refuses off-curve EC points, even RSA
exponents and exponents below 3 when it loads a key; the checks here are
written on plain integers so that they hold whatever the library does.

Cost, measured with timeit on one core for a 2048-bit RSA key: about 0.25 ms
per call (gcd 0.05 ms, Fermat's 100 rounds 0.17 ms, ROCA residues a few µs);
a P-256 key costs a few µs.
"""

from __future__ import annotations

import math
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from gateway.errors import ErrorKind, GatewayError

SMALL_PRIME_LIMIT = 10_000
FERMAT_ROUNDS = 100
ROCA_GENERATOR = 65537
# Every Infineon RSALib primorial (of the first 39, 71, 126 or 225 primes) has these factors.
ROCA_PRIME_LIMIT = 167
MIN_RSA_EXPONENT = 2**16 + 1
MAX_RSA_EXPONENT = 2**256 - 1

# Short Weierstrass curves y^2 = x^3 - 3x + b over GF(p): (p, b), from FIPS 186-4 §D.1.2.
_NIST_CURVES: dict[str, tuple[int, int]] = {
    "secp256r1": (2**256 - 2**224 + 2**192 + 2**96 - 1,
                  0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B),
    "secp384r1": (2**384 - 2**128 - 2**96 + 2**32 - 1,
                  int("B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A"
                      "C656398D8A2ED19D2A85C8EDD3EC2AEF", 16)),
    "secp521r1": (2**521 - 1,
                  int("051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF10"
                      "9E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00", 16)),
}


def check_public_key(key: PublicKeyTypes, whose: str = "the public key") -> None:
    """Refuse a weak key with ``badPublicKey``; ``whose`` names it in the detail."""
    weakness = key_weakness(key)
    if weakness is not None:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"{whose} is weak: {weakness}; generate a new key")


def check_ec_point(curve: str, point: bytes, whose: str = "the public key") -> None:
    """:func:`check_public_key` for an EC key given as its uncompressed X9.62 point.

    For a caller that holds the key's encoding already: reading the coordinates
    from it spares the library converting the point to affine coordinates again.
    """
    weakness = ec_point_weakness(curve, point)
    if weakness is not None:
        raise GatewayError(ErrorKind.BAD_PUBLIC_KEY,
                           f"{whose} is weak: {weakness}; generate a new key")


def ec_point_weakness(curve: str, point: bytes) -> str | None:
    """:func:`ec_weakness` of an uncompressed point ``04 || x || y``."""
    size = (len(point) - 1) // 2
    if len(point) != 2 * size + 1 or point[:1] != b"\x04":
        return f"the EC point of {curve} is not an uncompressed point"
    return ec_weakness(curve, int.from_bytes(point[1:1 + size]), int.from_bytes(point[1 + size:]))


def key_weakness(key: PublicKeyTypes) -> str | None:
    """Why ``key`` is weak, or None. Key types without checks here (EdDSA) pass."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return rsa_weakness(numbers.n, numbers.e)
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_numbers()
        return ec_weakness(key.curve.name, point.x, point.y)
    return None


def rsa_weakness(n: int, e: int) -> str | None:
    """The first weakness of the RSA public key (n, e), cheapest check first."""
    return (_exponent_weakness(e) or _small_factor(n) or _fermat_weakness(n)
            or _roca_weakness(n))


def ec_weakness(curve: str, x: int, y: int) -> str | None:
    """Why the affine point (x, y) is not a valid public point of ``curve``, or None."""
    if curve not in _NIST_CURVES:
        return None  # curves are chosen by the profile rules, not here
    p, b = _NIST_CURVES[curve]
    if not (0 <= x < p and 0 <= y < p):
        return f"the EC point's coordinates lie outside the field of {curve}"
    if (y * y - (x * x * x - 3 * x + b)) % p != 0:
        return f"the EC point is not on the curve {curve}"
    return None


def _exponent_weakness(e: int) -> str | None:
    if e % 2 == 0 or not MIN_RSA_EXPONENT <= e <= MAX_RSA_EXPONENT:
        shown = e if e.bit_length() <= 64 else f"of {e.bit_length()} bits"
        return (f"the RSA public exponent {shown} is not allowed: it must be odd and "
                "between 2^16+1 (65537) and 2^256-1")
    return None


def _small_factor(n: int) -> str | None:
    if math.gcd(n, _small_primes_product()) == 1:
        return None
    factor = next(p for p in _small_primes() if n % p == 0)
    return (f"the RSA modulus is divisible by the small prime {factor}, so it is not a "
            "product of two large primes")


def fermat_factor(n: int, rounds: int = FERMAT_ROUNDS) -> tuple[int, int] | None:
    """Two non-trivial factors of odd ``n`` by Fermat's method within ``rounds``, or None.

    Looks for ``a`` from ceil(sqrt(n)) up with ``a² - n`` a square ``b²``; then
    ``n = (a - b)(a + b)``. It succeeds at once when the factors are close.
    """
    a = math.isqrt(n)
    if a * a < n:
        a += 1
    b2 = a * a - n
    for _ in range(rounds):
        b = math.isqrt(b2)
        if b * b == b2 and a - b > 1:
            return a - b, a + b
        b2 += 2 * a + 1  # (a + 1)² - n, without squaring a again
        a += 1
    return None


def _fermat_weakness(n: int) -> str | None:
    if fermat_factor(n) is None:
        return None
    return (f"Fermat's method factors the RSA modulus within {FERMAT_ROUNDS} rounds: "
            "its two primes are too close together")


def _roca_weakness(n: int) -> str | None:
    if all(n % r in residues for r, residues in _roca_subgroups()):
        return ("the RSA modulus has the ROCA fingerprint of Infineon RSALib keys "
                "(CVE-2017-15361) and can be factored; update the device's firmware")
    return None


@cache
def _small_primes() -> tuple[int, ...]:
    """The primes below SMALL_PRIME_LIMIT (sieve of Eratosthenes)."""
    sieve = bytearray([1]) * SMALL_PRIME_LIMIT
    sieve[0:2] = b"\0\0"
    for i in range(2, math.isqrt(SMALL_PRIME_LIMIT) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, SMALL_PRIME_LIMIT, i)))
    return tuple(i for i, prime in enumerate(sieve) if prime)


@cache
def _small_primes_product() -> int:
    return math.prod(_small_primes())


@cache
def _roca_subgroups() -> tuple[tuple[int, frozenset[int]], ...]:
    """Per odd prime up to ROCA_PRIME_LIMIT, the residues that 65537 generates mod it.

    Primes where 65537 generates every non-zero residue say nothing and are left out.
    """
    found = []
    for r in _small_primes():
        if 2 < r <= ROCA_PRIME_LIMIT:
            residues = _powers(ROCA_GENERATOR % r, r)
            if len(residues) < r - 1:
                found.append((r, residues))
    return tuple(found)


def _powers(g: int, r: int) -> frozenset[int]:
    """The subgroup that g generates in the multiplicative group mod prime r."""
    powers, x = {1}, g
    while x != 1:
        powers.add(x)
        x = x * g % r
    return frozenset(powers)
