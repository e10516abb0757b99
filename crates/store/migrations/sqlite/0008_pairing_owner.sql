-- Pairing runs on the line's owner only (two pairing clients would write two devices into
-- one line's session). The owner publishes what the other servers' connect pages show: its
-- current QR code, and its answer to a pairing-code request; those pages record that they
-- look, so the owner keeps its pairing client alive for them.
ALTER TABLE line_owners ADD COLUMN qr TEXT;
ALTER TABLE line_owners ADD COLUMN qr_expires_at BIGINT;
ALTER TABLE line_owners ADD COLUMN looked_at BIGINT;
ALTER TABLE line_owners ADD COLUMN pair_request TEXT;
ALTER TABLE line_owners ADD COLUMN pair_answer TEXT;
