-- Musubi engine schema v3: quarantined journal groups (issue 9, "the apply can never be poisoned").
--
-- A group of acknowledged writes that the database refuses as such (a constraint or a
-- conversion fails: retrying cannot help) is set aside instead of blocking every later write:
-- its mutations are kept in the file `$MUSUBI_HOME/<file>` (written and fsynced first), and
-- this row is written in the same transaction that moves engine_meta.journal_applied past it.
-- `audit` lists the audit events the group held, per tenant, so `audit verify` can bridge the
-- gap they leave in the chain (re-checking them from the file) and the engine chains on after
-- them: [{"tenant_id", "first_seq", "last_seq", "prev_hash", "last_hash"}].
CREATE TABLE quarantined_groups (
    group_no        BIGINT NOT NULL,
    quarantined_at  TIMESTAMP NOT NULL,
    file            VARCHAR NOT NULL,         -- relative to $MUSUBI_HOME, e.g. quarantine/123.json
    error           VARCHAR NOT NULL,         -- what the database said
    mutations       INTEGER NOT NULL,
    tenants         VARCHAR[] NOT NULL,       -- tenants whose rows the group held
    audit           JSON NOT NULL
);
