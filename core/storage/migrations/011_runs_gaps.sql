-- Musubi engine schema v11: runs gaps (issue 12; docs/runs.md#audit, docs/schema.md#run_settings).
--
-- run_settings: per tenant, whether the run.call audit events carry the call's prompt and
-- output text (redacted of keys and secrets).  Off unless a row says otherwise; changed only by
-- holders of tenant.manage, each change audited (run.settings).
CREATE TABLE run_settings (
    tenant_id       VARCHAR PRIMARY KEY,
    audit_text      BOOLEAN NOT NULL,         -- prompt and output text in run.call audit events
    updated_at      TIMESTAMP NOT NULL,
    updated_by      VARCHAR NOT NULL
);
