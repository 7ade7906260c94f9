-- Musubi engine schema v9: fine-tuning (issue 19).  See docs/finetune.md and docs/schema.md.
--
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
