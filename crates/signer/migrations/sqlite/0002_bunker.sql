-- keyline-signer schema v2: the bunker's NIP-46 tables (spec §9, §12), as sketched there.
-- keyline-signer's `store` module does not read or write them yet; the bunker code that does
-- owns their queries. Same portability rules as 0001.

CREATE TABLE relays (
    url      TEXT    NOT NULL PRIMARY KEY,
    added_at BIGINT  NOT NULL,
    enabled  INTEGER NOT NULL
);

CREATE TABLE bunker_secrets (
    secret_sha256 TEXT   NOT NULL PRIMARY KEY,
    template      TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    used_at       BIGINT,
    used_by       TEXT
);

CREATE TABLE connections (
    client_pubkey TEXT   NOT NULL PRIMARY KEY,
    key_id        TEXT   NOT NULL,
    origin        TEXT   NOT NULL,                     -- bunker / nostrconnect
    name          TEXT,
    url           TEXT,
    image         TEXT,
    relays        TEXT,                                -- JSON array
    encryption    TEXT,
    connected_at  BIGINT NOT NULL,
    last_seen_at  BIGINT,
    logged_out_at BIGINT,
    revoked_at    BIGINT
);

CREATE TABLE grants (
    id            TEXT   NOT NULL PRIMARY KEY,
    client_pubkey TEXT   NOT NULL,
    method        TEXT   NOT NULL,
    kind          BIGINT,
    decision      TEXT   NOT NULL,                     -- allow / deny / ask
    constraints   TEXT,                                -- JSON
    expires_at    BIGINT,
    per_minute    BIGINT,
    per_day       BIGINT,
    created_at    BIGINT NOT NULL,
    created_by    TEXT
);

CREATE INDEX grants_by_client ON grants (client_pubkey);

CREATE TABLE approvals (
    approval_id   TEXT   NOT NULL PRIMARY KEY,
    client_pubkey TEXT   NOT NULL,
    request_id    TEXT   NOT NULL,
    method        TEXT   NOT NULL,
    kind          BIGINT,
    summary       TEXT,                                -- JSON
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    decided_at    BIGINT,
    decision      TEXT,
    remember      TEXT
);

CREATE TABLE operator_tokens (
    token_sha256 TEXT   NOT NULL PRIMARY KEY,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
