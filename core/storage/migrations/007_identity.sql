-- Musubi engine schema v7: identity and SSO (issue 16, "SSO").
--
-- sso_role_rules: the admin-edited rules that map a claim value of a signed-in identity (a group
-- id or name in `groups`, an app role in `roles`) to a role in one tenant.  Evaluated at each
-- sign-in (docs/identity.md#mapping); provider '' means any configured provider.
-- sso_policies: per tenant, whether callers known only by their OS user are refused ("SSO
-- required"), and the one break-glass owner who may still act without SSO.
-- No token, secret or session id is ever stored here (sessions live in the engine's memory).
CREATE TABLE sso_role_rules (
    tenant_id       VARCHAR NOT NULL,
    provider        VARCHAR NOT NULL,         -- '' = any provider
    claim           VARCHAR NOT NULL,         -- groups | roles
    value           VARCHAR NOT NULL,         -- the group id/name or app role, exactly as in the token
    role            VARCHAR NOT NULL,         -- a built-in or custom role of the tenant
    created_at      TIMESTAMP NOT NULL,
    created_by      VARCHAR NOT NULL,
    PRIMARY KEY (tenant_id, provider, claim, value)
);
CREATE TABLE sso_policies (
    tenant_id       VARCHAR PRIMARY KEY,
    sso_required    BOOLEAN NOT NULL,
    break_glass     VARCHAR,                  -- a tenant owner who may act without SSO; NULL = nobody
    updated_at      TIMESTAMP NOT NULL,
    updated_by      VARCHAR NOT NULL
);
