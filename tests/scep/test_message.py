"""pkiMessage reading, verification and CertRep building (gateway.scep.message)."""

from __future__ import annotations

import os

import pytest
from asn1crypto import core

from gateway.scep import message as m
from tests.scep.client import rsa_key, self_signed

KEY = rsa_key()
CERT = self_signed(KEY)


def _attrs(message_type: str = m.PKCS_REQ, transaction_id: str = "t1",
           nonce: bytes = b"n" * 16) -> list:  # type: ignore[type-arg]
    return [m.scep_attribute(m.OID_MESSAGE_TYPE, core.PrintableString(message_type)),
            m.scep_attribute(m.OID_TRANSACTION_ID, core.PrintableString(transaction_id)),
            m.scep_attribute(m.OID_SENDER_NONCE, core.OctetString(nonce))]


def test_round_trip_of_fields_and_signature() -> None:
    der = m.signed_message(b"inner", _attrs(), KEY, CERT, "sha512")
    msg = m.read_message(der)
    m.verify_signature(msg, legacy=False)
    assert (msg.message_type, msg.transaction_id, msg.sender_nonce, msg.content,
            msg.signer_der, msg.digest) == (m.PKCS_REQ, "t1", b"n" * 16, b"inner", CERT,
                                            "sha512")


def test_cert_rep_answers_with_the_nonce_and_transaction() -> None:
    request = m.read_message(m.signed_message(b"x", _attrs(), KEY, CERT))
    ra_key = rsa_key()
    ra_cert = self_signed(ra_key, "ra")
    reply = m.read_message(m.cert_rep(request, m.Reply(m.FAILURE, m.BAD_REQUEST, "why"),
                                      ra_key, ra_cert), known_signer=ra_cert)
    m.verify_signature(reply, legacy=False)
    assert reply.message_type == m.CERT_REP and reply.transaction_id == "t1"
    values = {a["type"].dotted: core.Asn1Value.load(a["values"][0].dump()).native
              for a in reply.signer_info["signed_attrs"]}
    assert values[m.OID_RECIPIENT_NONCE] == b"n" * 16
    assert values[m.OID_SENDER_NONCE] != b"n" * 16 and len(values[m.OID_SENDER_NONCE]) == 16
    assert (values[m.OID_PKI_STATUS], values[m.OID_FAIL_INFO],
            values[m.OID_FAIL_INFO_TEXT]) == (m.FAILURE, m.BAD_REQUEST, "why")


@pytest.mark.parametrize(("der", "words"), [
    (b"", "not a pkiMessage"),
    (b"\x30\x03\x02\x01\x00", "not a pkiMessage"),
    (m.signed_message(b"x", _attrs()[1:], KEY, CERT), "no messageType"),
    (m.signed_message(b"x", _attrs(transaction_id="x" * 200), KEY, CERT), "transactionID"),
    (m.signed_message(b"x", _attrs(nonce=b"short"), KEY, CERT), "senderNonce"),
    (m.signed_message(b"x", _attrs(), KEY, CERT, embed_certificate=False), "signer's cert"),
    (os.urandom(300), "not a pkiMessage"),
])
def test_unreadable_messages(der: bytes, words: str) -> None:
    with pytest.raises(m.Unreadable, match=words):
        m.read_message(der)


def test_md5_only_for_legacy_labels() -> None:
    msg = m.read_message(m.signed_message(b"x", _attrs(), KEY, CERT, "md5"))
    with pytest.raises(m.BadMessage) as err:
        m.verify_signature(msg, legacy=False)
    assert err.value.fail_info == m.BAD_ALG
    m.verify_signature(msg, legacy=True)


def test_content_swapped_under_a_valid_signature_fails_the_digest() -> None:
    good = m.read_message(m.signed_message(b"x", _attrs(), KEY, CERT))
    swapped = m.PkiMessage(**{**good.__dict__, "content": b"y"})
    with pytest.raises(m.BadMessage) as err:
        m.verify_signature(swapped, legacy=False)
    assert err.value.fail_info == m.BAD_MESSAGE_CHECK
