-- Foundation: store metadata, accounts, API keys, idempotency keys, jobs, the sandbox clock.
-- Times are BIGINT microseconds since the Unix epoch; booleans are 0/1 integers so that the
-- same queries run on SQLite; `seq` orders lists newest first and serves as the cursor.

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    calling_enabled BIGINT NOT NULL DEFAULT 0 CHECK (calling_enabled IN (0, 1)),
    mode            TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    is_demo         BIGINT NOT NULL DEFAULT 0 CHECK (is_demo IN (0, 1)),
    created_at      BIGINT NOT NULL
);

CREATE TABLE api_keys (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    hash       TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_account ON api_keys (account_id, seq);

CREATE TABLE idempotency_keys (
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'done')),
    locked_until    BIGINT NOT NULL,
    response_status BIGINT,
    response_body   TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE jobs (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    account_id   TEXT,
    payload      TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    dedupe_key   TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    leased_until BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    UNIQUE (kind, dedupe_key)
);
CREATE INDEX jobs_due ON jobs (due_at, seq);

CREATE TABLE sandbox_clock (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    now BIGINT NOT NULL
);
