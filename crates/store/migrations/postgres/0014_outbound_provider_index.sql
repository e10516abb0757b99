-- A status from Meta (or a connector's receipt) finds its outbound message by the provider's id
-- on a line. With only `messages (provider_id)` and `messages (line_id, seq)` to choose from,
-- a planner without fresh statistics (a new database, a burst of sends before the first
-- ANALYZE) combined both, reading every index entry of the line for each status: half of
-- PostgreSQL's CPU in bench_meta. One index answers the whole condition.
CREATE INDEX messages_outbound_provider ON messages (provider_id, line_id)
    WHERE direction = 'outbound';
DROP INDEX messages_provider_id;
