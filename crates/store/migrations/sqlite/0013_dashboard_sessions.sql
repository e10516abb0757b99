-- Dashboard sign-ins (PRODUCT.md §13, docs/dashboard.md). Only a SHA-256 of the session's
-- secret is kept: a copy of the database cannot sign anyone in. A session belongs to the API
-- key that opened it and is only valid while that key is not revoked (checked by a join on
-- every request), so revoking a key ends its sessions.
CREATE TABLE dashboard_sessions (
    token_hash  TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    key_id      TEXT NOT NULL REFERENCES api_keys (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
