-- Musubi engine schema v2: models registry support (issue: models, tokens and cost).
--
-- usage_ledger.task_kind: what kind of agent work a charge was (requirements, design,
-- tasks, implementation, review, test, summarise, classify), NULL when unknown (e.g.
-- `musubi usage record` without --task).  The cost estimator learns expected output
-- per (model, task kind) from it: median and p90 of output_tokens / input_tokens.
ALTER TABLE usage_ledger ADD COLUMN task_kind VARCHAR;

-- The models a tenant may use, pinned by a tenant admin (quotas.manage).  No rows for
-- a tenant = every model in the registry is allowed.  Changes are audited
-- (action models.allow / models.allow_all).
CREATE TABLE tenant_models (
    tenant_id  VARCHAR NOT NULL,
    model_id   VARCHAR NOT NULL,
    added_at   TIMESTAMP NOT NULL,
    added_by   VARCHAR NOT NULL,
    PRIMARY KEY (tenant_id, model_id)
);
