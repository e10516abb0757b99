-- Calls (PRODUCT.md §9): one row per call, outbound or inbound, with its timeline on the
-- business clock. `media_token` authenticates the call's audio socket (good for that call
-- only, like a line's connect token).
CREATE TABLE calls (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    line_id      TEXT NOT NULL REFERENCES lines (id),
    version      BIGINT NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    from_number  TEXT,
    to_number    TEXT,
    status       TEXT NOT NULL,
    end_reason   TEXT,
    provider_id  TEXT,
    media_token  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    ringing_at   BIGINT,
    answered_at  BIGINT,
    ended_at     BIGINT,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX calls_line ON calls (line_id, seq);
-- One call at a time per line: a second call that is not over cannot be written, whichever
-- server races to write it.
CREATE UNIQUE INDEX calls_one_open_per_line ON calls (line_id) WHERE status <> 'ended';
-- The connector names calls by its own id (an inbound call, a remote hangup).
CREATE UNIQUE INDEX calls_provider ON calls (line_id, provider_id);

-- Fair use: seconds talked per line and UTC day (a call over midnight counts on both days).
CREATE TABLE call_days (
    line_id  TEXT NOT NULL REFERENCES lines (id),
    day      BIGINT NOT NULL,
    seconds  BIGINT NOT NULL,
    PRIMARY KEY (line_id, day)
);
