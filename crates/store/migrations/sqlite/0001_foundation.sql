-- Foundation: store metadata, accounts, API keys, idempotency keys, jobs, the sandbox clock.
-- Times are INTEGER microseconds since the Unix epoch; booleans are 0/1 integers;
-- `seq` orders lists newest first and serves as the pagination cursor.

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    calling_enabled INTEGER NOT NULL DEFAULT 0 CHECK (calling_enabled IN (0, 1)),
    mode            TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    is_demo         INTEGER NOT NULL DEFAULT 0 CHECK (is_demo IN (0, 1)),
    created_at      INTEGER NOT NULL
);

CREATE TABLE api_keys (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    hash       TEXT NOT NULL UNIQUE,
    hint       TEXT NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('live', 'test')),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_account ON api_keys (account_id, seq);

CREATE TABLE idempotency_keys (
    account_id      TEXT NOT NULL REFERENCES accounts (id),
    key             TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('running', 'done')),
    locked_until    INTEGER NOT NULL,
    response_status INTEGER,
    response_body   TEXT,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE TABLE jobs (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    account_id   TEXT,
    payload      TEXT NOT NULL,
    due_at       INTEGER NOT NULL,
    dedupe_key   TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_until INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (kind, dedupe_key)
);
CREATE INDEX jobs_due ON jobs (due_at, seq);

CREATE TABLE sandbox_clock (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    now INTEGER NOT NULL
);
