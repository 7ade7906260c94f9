-- Musubi engine schema v10: integrations persistence (issue 17 gaps; docs/integrations.md, docs/schema.md#integrations).
--
-- notify_queue: the run/approval/quota/coverage notifications, durable so a restart (even kill -9)
-- resumes them and never sends one twice.  A notice is first one row with system '*' (state new);
-- routing replaces it with one row per opted-in system.  A row is marked 'sending' (durably) before
-- each attempt; one still 'sending' at start is failed, not re-sent.  message holds what the channel
-- shows (JSON), never a token or a webhook URL.
-- webhook_deliveries: GitLab deliveries seen (Idempotency-Key), so a retried delivery is acted on once.
-- webhook_pipelines: the latest status of each pipeline a GitLab webhook reported.
-- run_refs: the git ref and commit an orchestration run's project was at (or the ref a user linked),
-- whose CI pipeline the Dashboard shows.
CREATE TABLE notify_queue (
    tenant_id       VARCHAR NOT NULL,
    notice_key      VARCHAR NOT NULL,         -- run:<id>:<state>:<finished_at>, gate:..., quota:..., cov:...
    system          VARCHAR NOT NULL,         -- slack | teams; '*' = not routed yet
    event           VARCHAR NOT NULL,         -- run_finished | run_failed | run_stopped | approval | quota_alert | coverage_low
    target          VARCHAR,                  -- a Slack channel for this event; NULL = the system's default
    project         VARCHAR,
    message         VARCHAR NOT NULL,         -- JSON: title, text, facts, link, buttons, severity
    data            VARCHAR,                  -- JSON: coverage_low's coverage and previous
    state           VARCHAR NOT NULL,         -- new | queued | sending | sent | failed | skipped
    attempts        INTEGER NOT NULL,         -- attempts started
    next_try        TIMESTAMP,                -- a queued row is not sent before this
    last_error      VARCHAR,                  -- the vendor's error (redacted), or why it was not re-sent
    created_at      TIMESTAMP NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, notice_key, system)
);
CREATE TABLE webhook_deliveries (
    tenant_id       VARCHAR NOT NULL,
    system          VARCHAR NOT NULL,         -- gitlab
    delivery_key    VARCHAR NOT NULL,         -- the Idempotency-Key header (the same across GitLab's retries)
    kind            VARCHAR NOT NULL,         -- object_kind: pipeline | issue | merge_request | ...
    received_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, system, delivery_key)
);
CREATE TABLE webhook_pipelines (
    tenant_id       VARCHAR NOT NULL,
    system          VARCHAR NOT NULL,         -- gitlab
    pipeline_id     VARCHAR NOT NULL,
    ref             VARCHAR NOT NULL,
    sha             VARCHAR NOT NULL,
    state           VARCHAR NOT NULL,         -- queued | running | success | failed | canceled | unknown
    vendor_status   VARCHAR NOT NULL,         -- as GitLab said it (pending, manual, ...)
    url             VARCHAR NOT NULL,
    name            VARCHAR NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (tenant_id, system, pipeline_id)
);
CREATE TABLE run_refs (
    run_id          VARCHAR PRIMARY KEY,      -- a run of table runs
    tenant_id       VARCHAR NOT NULL,
    system          VARCHAR,                  -- gitlab | github | ado; NULL = the tenant's configured one
    ref             VARCHAR NOT NULL,         -- branch (or tag / pipeline ref) whose pipelines are shown
    sha             VARCHAR,                  -- the commit; NULL when the user linked a ref only
    source          VARCHAR NOT NULL,         -- git (read from the project at start) | user (linked)
    recorded_at     TIMESTAMP NOT NULL,
    recorded_by     VARCHAR NOT NULL
);
