"""The local CA's key in a PKCS#11 token (python-pkcs11; tested with SoftHSM2).

Threading: python-pkcs11 initialises the library without OS locking, and
SoftHSM then runs without mutexes: sessions used from several threads crash
the process. So every call into a library goes through one single-thread
executor per library path, shared by every backend on that library, and one
logged-in session per backend lives in it. Signing calls from asyncio hop
there with ``run_in_executor``.

Processes: SoftHSM (and other file-backed tokens) read the token's files when
a process lists tokens or logs in; several processes doing so at once (``serve
--workers N`` starting) can make ``C_GetTokenInfo`` fail with a general error.
Opening the token is therefore serialized across processes by an exclusive
``flock`` on ``pkcs11.lock`` in the CA directory, and a general error while
finding the token is retried a few times before it counts.

Faults: a token error while signing marks the session broken and raises
:class:`CAUnavailable` (retryable); the next call opens a new session and logs
in again. Configuration faults at start (library, token, PIN, key) raise
:class:`CAConfigError` naming the cause and the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from connectors.base import CAConfigError, CAUnavailable
from connectors.localca.keys import key_type_of
from connectors.localca.pkcs11_signer import TokenECKey, TokenKeyRef, TokenRSAKey
from connectors.localca.settings import Pkcs11Settings

T = TypeVar("T")

_CURVES = {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}

# One thread per PKCS#11 library, shared and reference-counted: two threads in
# one unlocked library is the crash this module exists to prevent.
_threads: dict[str, tuple[ThreadPoolExecutor, int]] = {}
_threads_lock = threading.Lock()
# Finding the token: attempts when the library answers a general error, and the pause.
TOKEN_ATTEMPTS = 5
TOKEN_RETRY_SECONDS = 0.2


@contextlib.contextmanager
def _opening(lock_path: Path | None) -> Iterator[None]:
    """Hold the token-opening lock shared by every process of this CA (None: no lock)."""
    if lock_path is None:
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire_thread(library: str) -> ThreadPoolExecutor:
    with _threads_lock:
        executor, users = _threads.get(library, (None, 0))
        if executor is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix="pkcs11")
        _threads[library] = (executor, users + 1)
        return executor


def _release_thread(library: str) -> None:
    with _threads_lock:
        executor, users = _threads[library]
        if users > 1:
            _threads[library] = (executor, users - 1)
            return
        del _threads[library]
    executor.shutdown(wait=True)


class Pkcs11KeyBackend:
    """A CA key found by token label and key label, used through one logged-in session."""

    def __init__(self, settings: Pkcs11Settings, key_type: str,
                 lock_path: Path | None = None) -> None:
        self.settings = settings
        self.key_type = key_type
        self.lock_path = lock_path
        self._executor: ThreadPoolExecutor | None = None
        self._session: Any = None
        self._ref = TokenKeyRef()
        self._public: CertificateIssuerPublicKeyTypes | None = None
        self._signing: CertificateIssuerPrivateKeyTypes | None = None
        self._broken = False
        self._batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        # Set when open(create=True) generated the key (``ca init`` reports it).
        self.created = False

    def describe(self) -> str:
        """Library, token and key label (never the PIN)."""
        s = self.settings
        return f"PKCS#11 token {s.token_label!r}, key {s.key_label!r}, library {s.library}"

    # -- lifecycle (all token calls run in the library's thread) ---------------------

    async def open(self, create: bool) -> None:
        """Log in and find the key; with ``create``, generate it when it is missing."""
        self._executor = _acquire_thread(self.settings.library)
        try:
            await self._call(lambda: self._open_sync(create))
        except BaseException:
            await self.close()
            raise

    def _open_sync(self, create: bool) -> None:
        with _opening(self.lock_path):
            self._session = self._login()
            self._open_key(create)

    def _open_key(self, create: bool) -> None:
        try:
            private = self._find(ObjectClass.PRIVATE_KEY)
        except pkcs11.NoSuchKey:
            if not create:
                raise CAConfigError(
                    f"no private key labelled {self.settings.key_label!r} in token "
                    f"{self.settings.token_label!r}; create it with `acme-gateway ca init`"
                ) from None
            self._generate()
            self.created = True
            private = self._find(ObjectClass.PRIVATE_KEY)
        self._adopt(private)

    def _login(self) -> Any:
        s = self.settings
        try:
            lib = pkcs11.lib(s.library)
        except pkcs11.PKCS11Error as exc:
            raise CAConfigError(
                f"cannot load the PKCS#11 library {s.library}: {exc}; "
                "install it or fix pkcs11_library"
            ) from exc
        try:
            token = self._token(lib)
        except pkcs11.NoSuchToken:
            labels = sorted({t.label for t in lib.get_tokens()})
            raise CAConfigError(
                f"no PKCS#11 token labelled {s.token_label!r} in {s.library} "
                f"(present: {', '.join(map(repr, labels)) or 'none'}); fix token_label "
                "or initialise the token"
            ) from None
        try:
            return token.open(rw=True, user_pin=s.pin)
        except pkcs11.UserAlreadyLoggedIn:
            # Another session of this process is logged in (the issuing key while the
            # root key signs): PKCS#11 logins are per application, so this one is too.
            return token.open(rw=True)
        except pkcs11.PinIncorrect:
            raise CAConfigError(
                f"the PIN for token {s.token_label!r} is wrong; fix the file or variable "
                "named by pin_file / pin_env"
            ) from None
        except pkcs11.PinLenRange:
            raise CAConfigError(
                f"the PIN for token {s.token_label!r} has the wrong length"
            ) from None

    def _token(self, lib: Any) -> Any:
        """The token by label; a general error (a busy token file) is tried again."""
        for attempt in range(1, TOKEN_ATTEMPTS + 1):
            try:
                return lib.get_token(token_label=self.settings.token_label)
            except pkcs11.GeneralError:
                if attempt == TOKEN_ATTEMPTS:
                    raise CAConfigError(
                        f"the PKCS#11 library {self.settings.library} keeps failing to read "
                        f"token {self.settings.token_label!r} (CKR_GENERAL_ERROR); check the "
                        "token's files and permissions") from None
                time.sleep(TOKEN_RETRY_SECONDS)  # in the token's own thread, never the loop
        raise AssertionError("unreachable")

    def _find(self, cls: ObjectClass) -> Any:
        try:
            return self._session.get_key(object_class=cls, label=self.settings.key_label)
        except pkcs11.MultipleObjectsReturned:
            raise CAConfigError(
                f"several keys labelled {self.settings.key_label!r} in token "
                f"{self.settings.token_label!r}; give the CA key a unique key_label"
            ) from None

    def _generate(self) -> None:
        """A non-extractable, sensitive, sign-only key pair in the token."""
        label = self.settings.key_label
        caps = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY
        private_template = {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template = {
            Attribute.TOKEN: True,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        common = dict(
            store=True,
            label=label,
            id=label.encode(),
            capabilities=caps,
            private_template=private_template,
            public_template=public_template,
        )
        if self.key_type in _CURVES:
            params = self._session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[self.key_type])},
                local=True,
            )
            params.generate_keypair(**common)
        else:
            bits = int(self.key_type.removeprefix("rsa-"))
            self._session.generate_keypair(KeyType.RSA, bits, **common)

    def _adopt(self, private: Any) -> None:
        """Check the key's type and usage; derive the public key from the token's public object."""
        public = self._public_key_sync(private)
        found = key_type_of(public)
        if found != self.key_type:
            raise CAConfigError(
                f"the key {self.settings.key_label!r} in token {self.settings.token_label!r} is "
                f"{found or private.key_type.name}, but key_type is {self.key_type}; "
                "fix key_type or key_label"
            )
        if not private[Attribute.SIGN]:
            raise CAConfigError(
                f"the key {self.settings.key_label!r} may not sign (CKA_SIGN is false)"
            )
        self._ref.key = private
        self._public = public
        if isinstance(public, ec.EllipticCurvePublicKey):
            self._signing = TokenECKey(self._ref, public)
        elif isinstance(public, rsa.RSAPublicKey):
            self._signing = TokenRSAKey(self._ref, public)

    def _public_key_sync(self, private: Any) -> CertificateIssuerPublicKeyTypes:
        if private.key_type == KeyType.RSA:
            n = int.from_bytes(private[Attribute.MODULUS], "big")
            e = int.from_bytes(private[Attribute.PUBLIC_EXPONENT], "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if private.key_type == KeyType.EC:
            spki = encode_ec_public_key(self._find(ObjectClass.PUBLIC_KEY))
            key = serialization.load_der_public_key(spki)
            if isinstance(key, ec.EllipticCurvePublicKey):
                return key
        raise CAConfigError(
            f"the key {self.settings.key_label!r} is a {private.key_type.name} key; "
            "a CA key must be EC (P-256/P-384) or RSA"
        )

    async def close(self) -> None:
        """Close the session and give the library thread back."""
        if self._executor is None:
            return
        if self._session is not None:
            await self._call(self._close_session)
        self._executor = None
        _release_thread(self.settings.library)

    def _close_session(self) -> None:
        try:
            self._session.close()
        except pkcs11.PKCS11Error:
            pass  # the session is gone already: nothing left to release
        self._session = None

    # -- the KeyBackend surface ------------------------------------------------------

    def signing_key(self) -> CertificateIssuerPrivateKeyTypes:
        """A cryptography key object whose ``sign`` calls the token (only inside :meth:`run`)."""
        if self._signing is None:
            raise CAConfigError("the token key is not open; call start() first")
        return self._signing

    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        """The CA's public key, read from the token at open."""
        if self._public is None:
            raise CAConfigError("the token key is not open; call start() first")
        return self._public

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the library's thread; token errors become CAUnavailable.

        Calls made in the same event-loop turn travel to the thread together and
        come back together: one thread hop and one wake-up per batch, not per
        signature, which is most of the cost of a token signature under load.
        """
        if self._executor is None:
            raise CAConfigError("the token key is not open; call start() first")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._batch.append((fn, future))
        if len(self._batch) == 1:
            loop.call_soon(self._dispatch, loop)
        result: T = await future
        return result

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._batch = self._batch, []
        if self._executor is None:
            for _, future in batch:
                if not future.done():
                    future.set_exception(CAConfigError("the token key was closed"))
            return
        self._executor.submit(self._run_batch, batch, loop)

    def _run_batch(
        self,
        batch: list[tuple[Callable[[], Any], asyncio.Future[Any]]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        for fn, future in batch:
            try:
                outcomes.append((future, True, self._guarded(fn)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's future
                outcomes.append((future, False, exc))
        loop.call_soon_threadsafe(_settle, outcomes)

    def _guarded(self, fn: Callable[[], T]) -> T:
        try:
            if self._broken or self._session is None:
                self._reopen()
            return fn()
        except pkcs11.PKCS11Error as exc:
            self._broken = True
            raise CAUnavailable(
                f"the HSM failed ({type(exc).__name__}: {exc}); retry later"
            ) from exc
        except CAConfigError as exc:
            # Found while reopening (token pulled, PIN changed): the next call tries again,
            # so it is retryable here although the same fault stops start().
            self._broken = True
            raise CAUnavailable(f"the HSM session cannot be reopened: {exc}") from exc

    def _reopen(self) -> None:
        if self._session is not None:
            self._close_session()
        with _opening(self.lock_path):
            self._session = self._login()
        self._adopt(self._find(ObjectClass.PRIVATE_KEY))
        self._broken = False

    async def check(self) -> None:
        """Raise CAUnavailable unless the session answers."""
        await self.run(
            lambda: self._session.get_key(
                object_class=ObjectClass.PRIVATE_KEY, label=self.settings.key_label
            )
        )

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise CAConfigError("the token key is not open; call start() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Hand each result of a batch to its caller (on the event loop)."""
    for future, ok, value in outcomes:
        if future.done():  # the caller was cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
