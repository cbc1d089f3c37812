"""The local CA: a two-tier CA run by the gateway, its key in a file or behind PKCS#11.

``connector`` is the Connector; ``settings``, ``keys``/``pkcs11_*`` (where the key
lives), ``certs``/``root`` (what it signs), ``store``/``pgledger`` (its ledger of
serials and revocations), ``ocsp``, ``admin`` (`acme-gateway ca ...`) and ``bench``.
"""
