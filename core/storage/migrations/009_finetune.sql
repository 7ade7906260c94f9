-- Musubi engine schema v9: fine-tuning (issue 19; docs/finetune.md, docs/schema.md#fine-tuning).
-- All written through the engine's group commit.  Money is integer micro-dollars; JSON columns hold JSON text.

-- local embedder
-- One row per tuned embedder version of a tenant's project: the data it was trained on (pairs.json's
-- sha256 and the counts per kind and side), the held-out measures of the model it was compared with
-- and of itself, the decision of the activation rule, and which version serves search.  The model
-- files live under $MUSUBI_HOME/tenants/<tenant>/tuned/<project>/v<version>/ (written atomically).
CREATE TABLE tuned_embedders (
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,
    version         INTEGER NOT NULL,         -- 1, 2, ... per tenant and project (0 is the base model, never stored)
    state           VARCHAR NOT NULL,         -- training | rejected | ready | active | retired | failed
    base_model      VARCHAR NOT NULL,         -- model id of the model it was trained from (the one serving then)
    model_id        VARCHAR,                  -- name@weights-hash of the tuned model, once saved
    job_id          VARCHAR NOT NULL,         -- the tune.embed job that trained it
    pairs_sha256    VARCHAR NOT NULL,         -- sha256 of the training data file (pairs.json)
    pairs           VARCHAR NOT NULL,         -- JSON: pairs per kind, train and held-out, and files per side
    params          VARCHAR NOT NULL,         -- JSON: epochs, batch, learning rate, seed, time budget
    current_r1      DOUBLE,                   -- held-out measures of the model serving when it was trained
    current_r10     DOUBLE,
    current_mrr     DOUBLE,
    tuned_r1        DOUBLE,                   -- held-out measures of this model
    tuned_r10       DOUBLE,
    tuned_mrr       DOUBLE,
    steps           INTEGER,                  -- training steps done (fewer than planned when the budget ran out)
    seconds         DOUBLE,                   -- training time
    decision        VARCHAR,                  -- the activation rule's verdict, in words
    created_by      VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    activated_at    TIMESTAMP,                -- last time it started serving
    PRIMARY KEY (tenant_id, project, version)
);

-- provider fine-tuning
-- A dataset is a chat fine-tuning JSONL built from approved run artefacts (the file itself is
-- <tenant dir>/finetune/<dataset id>.jsonl, written and fsynced before its row commits).
CREATE TABLE provider_tune_datasets (
    dataset_id      VARCHAR PRIMARY KEY,      -- d-<12 hex digits>
    tenant_id       VARCHAR NOT NULL,
    project         VARCHAR NOT NULL,         -- '' when built for the whole tenant
    base_model      VARCHAR NOT NULL,         -- registry id of the model it is priced for
    examples        INTEGER NOT NULL,         -- lines of the file
    tokens          BIGINT NOT NULL,          -- tokens of one epoch (content + chat overhead)
    epochs          INTEGER NOT NULL,
    est_cost_micros BIGINT NOT NULL,          -- tokens x epochs x the training price
    sha256          VARCHAR NOT NULL,         -- of the file
    path            VARCHAR NOT NULL,
    skipped         VARCHAR NOT NULL,         -- JSON {reason: count} of artefacts left out
    scrubbed        VARCHAR NOT NULL,         -- JSON {kind: count} of replacements made
    sources         VARCHAR NOT NULL,         -- JSON [{run, artefact}] per line
    created_by      VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL
);
CREATE INDEX provider_tune_datasets_tenant ON provider_tune_datasets (tenant_id, created_at);

-- A fine-tuning job at a provider, polled by an engine job of kind tune.provider.
CREATE TABLE provider_tune_jobs (
    tune_id          VARCHAR PRIMARY KEY,     -- t-<12 hex digits>
    tenant_id        VARCHAR NOT NULL,
    project          VARCHAR NOT NULL,
    dataset_id       VARCHAR NOT NULL,
    provider         VARCHAR NOT NULL,        -- openai | azure (the --provider given)
    provider_name    VARCHAR NOT NULL,        -- the configured provider's name
    base_model       VARCHAR NOT NULL,        -- registry id
    vendor_model     VARCHAR NOT NULL,        -- the id sent to the vendor (Azure: the base model name)
    epochs           INTEGER NOT NULL,
    suffix           VARCHAR,
    job_id           VARCHAR NOT NULL,        -- the engine job polling it (table jobs)
    state            VARCHAR NOT NULL,        -- queued | uploading | submitted | succeeded | failed | cancelled
    vendor_status    VARCHAR,                 -- the vendor's own status word
    file_id          VARCHAR,                 -- the vendor's id of the uploaded file
    vendor_job_id    VARCHAR,                 -- the vendor's id of the fine-tuning job
    fine_tuned_model VARCHAR,                 -- what the vendor named the result
    registered_model VARCHAR,                 -- the registry id it was registered as (tenant override)
    trained_tokens   BIGINT,
    cost_micros      BIGINT,                  -- charged to the tenant's usage on success
    est_cost_micros  BIGINT NOT NULL,
    error_code       VARCHAR,                 -- the vendor's error.code, or ours
    error_message    VARCHAR,
    created_by       VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    finished_at      TIMESTAMP
);
CREATE INDEX provider_tune_jobs_tenant ON provider_tune_jobs (tenant_id, created_at);
