-- WhatsApp Web sessions, in wagate's own database (the `wagate-whatsapp` connector). A linked
-- device is many small values (its identity and noise keys, Signal sessions, pre-keys, sender
-- keys, app-state keys, the LID <-> phone-number map, ...): one row each, keyed by the line.
-- The store sees them as opaque text: the connector seals every value with the server key
-- (WAGATE_SECRET_KEY) and names it by a keyed hash, so neither the keys nor the contacts'
-- numbers they are about are readable in the database.
CREATE TABLE wa_session_values (
    line_id    TEXT NOT NULL,
    -- What the value is (`device`, `session`, `prekey`, ...), in the clear: sweeps and a
    -- logout act on whole kinds.
    kind       TEXT NOT NULL,
    -- The keyed hash of the value's own key (an address, a pre-key id, ...).
    key_id     TEXT NOT NULL,
    -- The sealed value (base64 of nonce and ciphertext).
    value      TEXT NOT NULL,
    -- A unix-seconds time some kinds are swept by (sent messages, pending inbound), or NULL.
    stamp      BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (line_id, kind, key_id)
);

-- One row: the check value of the server key the sessions are sealed with, written by the
-- first server that opens them. A server started with another key finds it does not open
-- and refuses to start, instead of treating every line as unlinked.
CREATE TABLE wa_key_check (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    check_value TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
