-- What a message carries (text, image, voice, ...): inbound media is reported with its type
-- and caption. Every earlier message was text.
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';

-- A connector redelivers an inbound message whose acknowledgement it did not see: one row
-- per message the connector reported (its own id), whatever happens.
CREATE UNIQUE INDEX messages_inbound_provider ON messages (line_id, provider_id)
    WHERE direction = 'inbound';
