-- Musubi engine schema v6: orchestration runs (issue 12; docs/runs.md, docs/schema.md#runs).
--
-- A run executes a workflow as a tree of steps; every model call is recorded under an
-- idempotency key (run, step path, call label, attempt) when it is sent and again when it
-- completes, in the same group commit as its ledger row, so a resume answers a completed call
-- from here and never re-sends or re-bills it.  Approval gates and artefacts persist here too.
-- Money is integer micro-dollars; JSON columns hold JSON text.  All written through the
-- engine's group commit.
CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,      -- r-<12 hex digits>
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,         -- '' when started outside a project
    workflow        VARCHAR NOT NULL,         -- a workflow of core/models/workflows.toml
    feature         VARCHAR NOT NULL,         -- the user's --feature text
    model           VARCHAR,                  -- the --model override; NULL: the router picks per call
    state           VARCHAR NOT NULL,         -- queued | running | waiting | stopped | interrupted | done | failed | cancelled
    stop_code       VARCHAR,                  -- quota | budget | turn_cap | stuck | cancelled | gate_timeout | rejected | error
    reason          VARCHAR,                  -- why it stopped, failed or was cancelled
    created_by      VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    started_at      TIMESTAMP,
    finished_at     TIMESTAMP,
    updated_at      TIMESTAMP NOT NULL,
    job_id          VARCHAR,                  -- the job of its current or last attempt (table jobs)
    attempts        INTEGER NOT NULL,         -- attempts started (1 + resumes)
    input_tokens    BIGINT NOT NULL,          -- as the providers reported, summed over completed calls
    output_tokens   BIGINT NOT NULL,
    cost_micros     BIGINT NOT NULL,
    turns           INTEGER NOT NULL,         -- model calls sent
    est_tokens      BIGINT,                   -- the cost estimator's expected total
    est_cost_micros BIGINT,
    budget_tokens   BIGINT,                   -- NULL: no run budget
    budget_micros   BIGINT,
    max_turns       INTEGER NOT NULL,
    max_step_turns  INTEGER NOT NULL,
    gate_timeout_s  INTEGER NOT NULL
);
CREATE INDEX runs_tenant ON runs (tenant_id, created_at);

CREATE TABLE run_steps (
    run_id          VARCHAR NOT NULL,
    path            VARCHAR NOT NULL,         -- "1", "2/1", "2/1/3": its place in the run's step tree
    parent          VARCHAR,                  -- the parent's path; NULL for a top-level step
    ord             INTEGER NOT NULL,         -- order among its siblings
    title           VARCHAR NOT NULL,
    type            VARCHAR NOT NULL,         -- the pattern: agent | sequential | parallel | approval | ...
    agent           VARCHAR,
    status          VARCHAR NOT NULL,         -- pending | running | waiting | done | failed | stopped | rejected | interrupted | cancelled
    model           VARCHAR,                  -- of its last call
    input_tokens    BIGINT NOT NULL,
    output_tokens   BIGINT NOT NULL,
    cost_micros     BIGINT NOT NULL,
    turns           INTEGER NOT NULL,         -- model calls sent in this step (not its children)
    est_tokens      BIGINT,
    est_cost_micros BIGINT,
    budget_tokens   BIGINT,                   -- the agent's budget, if it has one
    budget_micros   BIGINT,
    latency_ms      DOUBLE,                   -- of its last call
    output          VARCHAR,                  -- what it produced (done steps: a resume reuses it)
    reason          VARCHAR,
    started_at      TIMESTAMP,
    ended_at        TIMESTAMP,
    PRIMARY KEY (run_id, path)
);

CREATE TABLE run_calls (
    call_key        VARCHAR PRIMARY KEY,      -- idempotency key <run>:<step path>:<label>:<attempt>
    run_id          VARCHAR NOT NULL,
    tenant_id       VARCHAR NOT NULL,
    step_path       VARCHAR NOT NULL,
    label           VARCHAR NOT NULL,         -- the pattern's name for the call within the step
    attempt         INTEGER NOT NULL,         -- 1, 2, ... per (run, step path, label)
    agent           VARCHAR NOT NULL,
    model           VARCHAR NOT NULL,         -- registry model id
    provider        VARCHAR,                  -- the configured provider's name
    outcome         VARCHAR NOT NULL,         -- sent | ok | failed | interrupted | cancelled
    response        VARCHAR,                  -- the full response text (ok calls)
    input_tokens    BIGINT NOT NULL,          -- as the provider reported (0 until it completes)
    output_tokens   BIGINT NOT NULL,
    cost_micros     BIGINT NOT NULL,
    est_tokens      BIGINT NOT NULL,          -- what was reserved
    est_cost_micros BIGINT NOT NULL,
    latency_ms      DOUBLE,
    stop_reason     VARCHAR,
    request_id      VARCHAR,                  -- the provider's request id
    reservation_id  VARCHAR,
    ledger_entry    BIGINT,                   -- usage_ledger.entry_id of its charge
    error           VARCHAR,
    sent_at         TIMESTAMP NOT NULL,
    ended_at        TIMESTAMP
);
CREATE INDEX run_calls_run ON run_calls (run_id);

CREATE TABLE run_artefacts (
    artefact_id     VARCHAR PRIMARY KEY,      -- a-<12 hex digits>
    run_id          VARCHAR NOT NULL,
    step_path       VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,         -- text | requirements | design | tasks | diff | review | tests
    name            VARCHAR NOT NULL,
    content         VARCHAR NOT NULL,
    sha256          VARCHAR NOT NULL,
    state           VARCHAR NOT NULL,         -- proposed | approved | applied | refused
    created_at      TIMESTAMP NOT NULL,
    applied_at      TIMESTAMP,
    applied_by      VARCHAR,
    detail          VARCHAR                   -- files written, or why it was refused
);
CREATE INDEX run_artefacts_run ON run_artefacts (run_id);

CREATE TABLE run_approvals (
    run_id          VARCHAR NOT NULL,
    gate            VARCHAR NOT NULL,
    step_path       VARCHAR NOT NULL,
    artefact_id     VARCHAR,
    shown_sha256    VARCHAR NOT NULL,         -- the hash of what the gate showed
    shown           VARCHAR NOT NULL,         -- what it showed
    state           VARCHAR NOT NULL,         -- pending | approved | rejected | changes_requested | timed_out | closed
    asked_at        TIMESTAMP NOT NULL,
    deadline        TIMESTAMP,                -- when it fails closed; NULL: never
    decided_by      VARCHAR,
    decided_at      TIMESTAMP,
    comment         VARCHAR,
    PRIMARY KEY (run_id, gate)
);

CREATE TABLE run_log (
    run_id          VARCHAR NOT NULL,
    n               BIGINT NOT NULL,          -- 1, 2, ... per run
    ts              TIMESTAMP NOT NULL,
    step_path       VARCHAR,
    kind            VARCHAR NOT NULL,         -- note | state | step | call | gate | apply
    text            VARCHAR NOT NULL,         -- never a prompt or model output
    PRIMARY KEY (run_id, n)
);

-- A run's model calls are charged with the run and step they belong to.
ALTER TABLE usage_ledger ADD COLUMN run_id VARCHAR;
ALTER TABLE usage_ledger ADD COLUMN step_path VARCHAR;
