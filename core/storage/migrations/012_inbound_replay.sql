-- Musubi engine schema v12: Slack's replay guard survives a restart (issue 17 gaps; docs/integrations.md#inbound,
-- docs/schema.md#inbound_replay).
--
-- inbound_replay: the signatures of the signed Slack requests the engine accepted, kept while their
-- timestamp is inside Slack's 5-minute window (a replay later than that is refused as stale anyway).
-- A request's row is written in the same group commit as what the request did (the gate's decision),
-- so a crash keeps both or neither: a replay is never handled twice, a first delivery never lost.
CREATE TABLE inbound_replay (
    tenant_id       VARCHAR NOT NULL,
    system          VARCHAR NOT NULL,         -- slack
    signature       VARCHAR NOT NULL,         -- X-Slack-Signature (v0=<hex HMAC>): not a secret
    request_ts      TIMESTAMP NOT NULL,       -- X-Slack-Request-Timestamp (UTC); pruned once 5 minutes past
    seen_at         TIMESTAMP NOT NULL,       -- when the engine accepted it
    PRIMARY KEY (tenant_id, system, signature)
);
