-- Musubi engine schema v1.  This schema is a public contract: auditors query it
-- directly (see docs/schema.md).  Timestamps are naive TIMESTAMP values in UTC.

CREATE TABLE tenants (
    tenant_id        VARCHAR PRIMARY KEY,
    status           VARCHAR NOT NULL,          -- active | suspended
    created_at       TIMESTAMP NOT NULL,
    created_by       VARCHAR NOT NULL,
    status_changed_at TIMESTAMP,
    status_reason    VARCHAR
);

CREATE TABLE roles (                          -- custom roles; built-in roles live in code
    tenant_id   VARCHAR NOT NULL,
    role        VARCHAR NOT NULL,
    permissions VARCHAR[] NOT NULL,
    description VARCHAR NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL,
    created_by  VARCHAR NOT NULL,
    PRIMARY KEY (tenant_id, role)
);

CREATE TABLE projects (
    tenant_id   VARCHAR NOT NULL,
    name        VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    created_by  VARCHAR NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE members (                        -- role bindings; project '' = tenant scope
    tenant_id   VARCHAR NOT NULL,
    user_name   VARCHAR NOT NULL,
    project     VARCHAR NOT NULL,
    role        VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    created_by  VARCHAR NOT NULL,
    PRIMARY KEY (tenant_id, user_name, project)
);

CREATE TABLE quotas (                         -- user_name '' = tenant scope
    quota_id    BIGINT PRIMARY KEY,
    tenant_id   VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,             -- tokens | requests | cost_usd
    period      VARCHAR NOT NULL,             -- minute | hour | day | month
    user_name   VARCHAR NOT NULL,
    limit_value BIGINT NOT NULL,              -- cost_usd in micro-dollars
    alerts      DOUBLE[] NOT NULL,
    updated_at  TIMESTAMP NOT NULL,
    updated_by  VARCHAR NOT NULL
);

CREATE TABLE usage_ledger (                   -- append-only
    tenant_id      VARCHAR NOT NULL,
    entry_id       BIGINT NOT NULL,
    ts             TIMESTAMP NOT NULL,
    user_name      VARCHAR NOT NULL,
    project        VARCHAR,
    model          VARCHAR,
    input_tokens   BIGINT NOT NULL,
    output_tokens  BIGINT NOT NULL,
    tokens         BIGINT NOT NULL,
    requests       BIGINT NOT NULL,
    cost_micros    BIGINT NOT NULL,
    source         VARCHAR NOT NULL,          -- record | settle
    reservation_id VARCHAR
);

CREATE TABLE reservations (
    reservation_id VARCHAR PRIMARY KEY,
    tenant_id      VARCHAR NOT NULL,
    user_name      VARCHAR NOT NULL,
    project        VARCHAR,
    tokens         BIGINT NOT NULL,
    requests       BIGINT NOT NULL,
    cost_micros    BIGINT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,
    state          VARCHAR NOT NULL,          -- open | settled | released | expired
    closed_at      TIMESTAMP
);

CREATE TABLE quota_alerts (                   -- one row per threshold crossed per window
    quota_id     BIGINT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    threshold    DOUBLE NOT NULL,
    ts           TIMESTAMP NOT NULL,
    PRIMARY KEY (quota_id, window_start, threshold)
);

CREATE TABLE audit_log (                      -- append-only, hash-chained per tenant
    tenant_id  VARCHAR NOT NULL,
    seq        BIGINT NOT NULL,
    ts         TIMESTAMP NOT NULL,
    actor      VARCHAR NOT NULL,
    action     VARCHAR NOT NULL,
    resource   VARCHAR NOT NULL,
    outcome    VARCHAR NOT NULL,              -- success | denied | error
    details    JSON NOT NULL,
    prev_hash  VARCHAR NOT NULL,
    hash       VARCHAR NOT NULL
);

CREATE TABLE audit_checkpoints (              -- written by prune; signed with Ed25519
    tenant_id     VARCHAR NOT NULL,
    seq           BIGINT NOT NULL,            -- last pruned seq
    hash          VARCHAR NOT NULL,           -- its hash: the next kept event's prev_hash
    created_at    TIMESTAMP NOT NULL,
    pruned_before TIMESTAMP NOT NULL,
    public_key    VARCHAR NOT NULL,           -- base64 raw Ed25519 public key
    signature     VARCHAR NOT NULL,           -- base64 signature of the canonical payload
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE engine_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
