-- Musubi engine schema v4: background jobs (issue 11, "Background jobs in the engine").
--
-- One row per job: long work the engine runs in the background (indexing now, orchestration
-- runs and syncs later), written through the engine's group commit like every other table.
-- Progress is persisted at a bounded rate (with each checkpoint and state change, and at most
-- every few seconds in between), so `done` may trail what the live API shows by a few seconds;
-- `checkpoint` is exactly what the job has committed: after a crash it resumes from there.
-- JSON columns hold JSON text.  See docs/jobs.md and docs/schema.md#jobs.
CREATE TABLE jobs (
    job_id          VARCHAR PRIMARY KEY,      -- j-<12 hex digits>
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,         -- '' when the job concerns the whole tenant
    kind            VARCHAR NOT NULL,         -- e.g. index; a registered job kind
    state           VARCHAR NOT NULL,         -- queued | running | cancelling | done | failed | cancelled | interrupted
    created_by      VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    started_at      TIMESTAMP,                -- when it first ran
    finished_at     TIMESTAMP,                -- when it reached done, failed, cancelled or interrupted
    updated_at      TIMESTAMP NOT NULL,
    done            BIGINT NOT NULL,          -- units of work done (as of updated_at)
    total           BIGINT,                   -- units in all, NULL while unknown
    unit            VARCHAR NOT NULL,         -- what is counted: files, chunks, steps, ...
    error           VARCHAR,                  -- why it failed, was cancelled or interrupted
    params          JSON NOT NULL,            -- what it was asked to do
    checkpoint      JSON,                     -- the committed point it resumes from; NULL before the first
    checkpoint_at   TIMESTAMP,
    result          JSON,                     -- what it produced (set when done)
    attempts        INTEGER NOT NULL,         -- times it started running (1 + resumes)
    cancelled_by    VARCHAR
);
CREATE INDEX jobs_tenant ON jobs (tenant_id, created_at);
