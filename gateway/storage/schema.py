"""Numbered schema migrations, portable between SQLite and PostgreSQL.

Each entry is applied once, in order, and recorded in ``schema_version``. Add
new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    thumbprint TEXT NOT NULL UNIQUE,
    jwk TEXT NOT NULL,
    status TEXT NOT NULL,
    contact TEXT NOT NULL,
    tos_agreed INTEGER NOT NULL,
    created_at DOUBLE PRECISION,
    eab_kid TEXT
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    status TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    authz_ids TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    profile TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    not_before DOUBLE PRECISION,
    not_after DOUBLE PRECISION,
    error TEXT,
    certificate_id TEXT,
    csr BYTEA,
    approval TEXT
);
CREATE INDEX orders_account ON orders (account_id, created_at);
CREATE TABLE authorizations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    identifier_type TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    status TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    wildcard INTEGER NOT NULL
);
CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    authz_id TEXT NOT NULL,
    type TEXT NOT NULL,
    token TEXT NOT NULL,
    status TEXT NOT NULL,
    validated DOUBLE PRECISION,
    error TEXT,
    records TEXT
);
CREATE INDEX challenges_authz ON challenges (authz_id);
CREATE INDEX challenges_status ON challenges (status);
CREATE TABLE certificates (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    serial TEXT NOT NULL,
    leaf_der BYTEA NOT NULL,
    chain_pem TEXT NOT NULL,
    not_before DOUBLE PRECISION NOT NULL,
    not_after DOUBLE PRECISION NOT NULL,
    spki_sha256 TEXT NOT NULL,
    ca TEXT NOT NULL,
    revoked_at DOUBLE PRECISION,
    revocation_reason INTEGER
);
CREATE UNIQUE INDEX certificates_ca_serial ON certificates (ca, serial);
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_spki ON certificates (spki_sha256);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    run_at DOUBLE PRECISION,
    ca_ref TEXT,
    last_error TEXT,
    extra TEXT
);
CREATE INDEX jobs_run_at ON jobs (run_at);
"""),
    (2, """
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    profile TEXT NOT NULL,
    ca TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT NOT NULL,
    source TEXT NOT NULL,
    extra TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE TABLE eab_keys (
    id TEXT PRIMARY KEY,
    hmac_key TEXT NOT NULL,
    status TEXT NOT NULL,
    profiles TEXT NOT NULL,
    allowed_domains TEXT NOT NULL,
    reusable INTEGER NOT NULL,
    uses INTEGER NOT NULL,
    created_at DOUBLE PRECISION,
    note TEXT NOT NULL
);
CREATE INDEX orders_approval ON orders (approval);
"""),
    # Index only the rows the scans look for: every order and three challenges per
    # authorization went into the old indexes and moved within them at each change of
    # status, for two queries that want the few challenges being validated and the
    # few orders held for an approver.
    (3, """
DROP INDEX challenges_status;
CREATE INDEX challenges_processing ON challenges (authz_id) WHERE status = 'processing';
DROP INDEX orders_approval;
CREATE INDEX orders_pending_approval ON orders (created_at) WHERE approval = 'pending';
"""),
    # Rate-limit buckets shared by every process and node (gateway.core.ratelimits):
    # one row per bucket, the time it is full again; the index serves the clean-up
    # of buckets that are full (an absent row is a full bucket).
    (4, """
CREATE TABLE rate_buckets (
    key TEXT PRIMARY KEY,
    full_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_buckets_full_at ON rate_buckets (full_at);
"""),
    # ACME Renewal Information (RFC 9773): the certificate an order replaces (its
    # certID, as the client sent it), and the operator's word that a certificate
    # must be renewed now (gateway.core.renewals).
    (5, """
ALTER TABLE orders ADD COLUMN replaces TEXT;
CREATE INDEX orders_replaces ON orders (replaces) WHERE replaces IS NOT NULL;
CREATE TABLE renewal_advice (
    id TEXT PRIMARY KEY,
    advanced_at DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    explanation_url TEXT NOT NULL
);
"""),
    # SCEP (gateway.core.scep): one-time challenge passwords, kept as their SHA-256, and
    # each transactionID bound to its order and to the key that may poll it.
    (6, """
CREATE TABLE scep_otps (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    names TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION,
    used_by TEXT NOT NULL
);
CREATE TABLE scep_transactions (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    requester TEXT NOT NULL,
    signer_key_sha256 TEXT NOT NULL,
    csr_sha256 TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL
);
"""),
    # The operator's inventory: a certificate's history is the audit rows of its
    # order (request_id), and expiry searches and the expiring-soon gauges bound
    # not_after; without these indexes each read the whole table.
    (7, """
CREATE INDEX audit_events_request ON audit_events (request_id);
CREATE INDEX certificates_not_after ON certificates (not_after);
"""),
    # Retention (gateway.storage.retention): the pruner picks the oldest rows of each
    # kind by the time its window counts from, and asks whether a certificate still
    # holds an order (certificates by not_after: migration 7's index). Each column is
    # written once, when its row is inserted.
    (8, """
CREATE INDEX orders_expires ON orders (expires);
CREATE INDEX authorizations_expires ON authorizations (expires);
CREATE INDEX certificates_order ON certificates (order_id);
"""),
)
