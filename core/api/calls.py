"""The engine's routes as typed calls: the one place a client writes a route's verb, path and fields.

Each function here builds a :class:`Call` — method, path, JSON body or query — typed with
the answer the route gives (a ``TypedDict`` of :mod:`core.api.models` or
:mod:`core.api.responses`).  Every client sends it the same way::

    data = client.call(calls.member_add("bob", "member"))        # EngineClient (the CLI): MemberAdded
    data = await api.call(calls.member_add("bob", "member"))     # AsyncEngineClient (the TUI), the TUI's fake

so the sync client, the async client and the TUI's test fake share one definition of each
route, and mypy knows the shape of every answer.  The body and query keys are the wire
names of the route's request model in :mod:`core.api.models` (the engine parses them
there); tests/engine/test_api_calls.py checks every function here against the engine's
route table, so a renamed field or a moved route fails a test, not a user.

Adding a route a client uses is one function here: its arguments, the route, and the
answer type (see DEVELOPERS.md, "Adding a client call").  Nothing here imports an HTTP
library or msgspec: the TUI imports this module before its first frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

from core.errors import BadRequest

if TYPE_CHECKING:
    from core.api.inbound import (  # notify (issue 17)
        GitLabAccepted,
        SlackAnswer,
        TeamsAnswer,  # teams bot (issue 17)
        UserMap,
    )
    from core.api.integrations import (  # integrations (issue 17)
        EntraLogin,
        Integrations,
        IntegrationSaved,
        IntegrationTested,
        Notified,
        PipelineStatus,
        RunPipeline,
        SyncStarted,
    )
    from core.api.models import (
        AuditEvent,
        Health,
        QuotaRow,
        QuotaStatus,
        Released,
        Reserved,
        UsageRecorded,
        Whoami,
    )
    from core.api.providers import ProviderList, ProviderTested, Reloaded
    from core.api.responses import (
        Allowed,
        Checkpoint,
        ContextPack,
        Estimate,
        Imported,
        IndexStarted,
        IndexStatus,
        Linked,
        MemberAdded,
        MemberRemoved,
        MemberRow,
        ModelEntry,
        ModelList,
        Project,
        ProjectRemoved,
        ProjectRow,
        Pruned,
        QuotaRemoved,
        ReservationRow,
        Reviewed,
        Role,
        RoleDeleted,
        RoleShown,
        Routed,
        SearchAnswer,
        SearchBatchAnswer,
        Settled,
        SpecLint,
        Tenant,
        TenantRow,
        TenantShown,
        TraceExported,
        TraceGaps,
        TraceImpact,
        TraceReport,
        TraceRequirement,
        UsageHistory,
        Verified,
        Workflows,
    )
    from core.api.sessions import RemoteEventAudited, SessionMinted, SessionRevoked, SessionRow
    from core.api.sso import (
        SsoPolicy,
        SsoProvider,
        SsoRule,
        SsoSessionShown,
        SsoSignedIn,
        SsoSignedOut,
        SsoVerified,
    )
    from core.api.tune_embed import (  # issue 19
        TunedEmbedders,
        TuneEmbedActivating,
        TuneEmbedDeleted,
        TuneEmbedStarted,
    )
    from core.api.tutorials import (  # tutorials (issue 18)
        Checked,
        Progress,
        ResetDone,
        Started,
        StepDone,
        TutorialShown,
        TutorialSummary,
    )

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Json = dict[str, Any]


@dataclass(frozen=True)
class Call(Generic[T_co]):
    """One request to the engine whose successful answer has the shape ``T_co`` (covariant: a call answering
    a ``Whoami`` may be sent where a ``Whoami | None`` is expected).

    ``body`` is sent as JSON (POST and PUT always carry one, ``{}`` when empty); ``query``
    values that are None or empty are left out of the URL (:func:`core.wire.prepare`).
    """

    method: str
    path: str
    body: Json | None = None
    query: Json | None = None


def get(route: str, /, **query: Any) -> Call[Any]:
    """A GET with ``query`` (None values left out)."""
    return Call("GET", route, query=_fields(query) or None)


def post(route: str, /, **body: Any) -> Call[Any]:
    """A POST with ``body`` (None values left out, so the engine applies its defaults)."""
    return Call("POST", route, body=_fields(body))


def put(route: str, /, **body: Any) -> Call[Any]:
    """A PUT with ``body`` (None values left out)."""
    return Call("PUT", route, body=_fields(body))


def delete(route: str, /, **query: Any) -> Call[Any]:
    """A DELETE with ``query`` (None values left out)."""
    return Call("DELETE", route, query=_fields(query) or None)


def _fields(values: dict[str, Any]) -> Json:
    return {k: v for k, v in values.items() if v is not None}


def path_segment(value: str) -> str:
    """Quote ``value`` as one URL path segment (``/`` too), for names and ids put into a route.

    An empty ``value`` is refused (BadRequest, exit 2): ``/v1/jobs/`` names no job, and the engine could only
    answer "no such route"."""
    if not value:
        raise BadRequest("an empty name, id or version was given for what this command acts on: give its value "
                         "(the command's --help shows which).")
    return quote(value, safe="")


# -- engine -------------------------------------------------------------------------------------


def health() -> Call[Health]:
    return get("/v1/health")


def whoami() -> Call[Whoami]:
    return get("/v1/whoami")


# -- tenants and projects ---------------------------------------------------------------------


def tenants() -> Call[list[TenantRow]]:
    return get("/v1/tenants")


def tenant_create(name: str) -> Call[Tenant]:
    return post("/v1/tenants", name=name)


def tenant_show(name: str) -> Call[TenantShown]:
    return get(f"/v1/tenants/{path_segment(name)}")


def tenant_suspend(name: str, reason: str | None = None) -> Call[Tenant]:
    return post(f"/v1/tenants/{path_segment(name)}/suspend", reason=reason)


def tenant_resume(name: str) -> Call[Tenant]:
    return post(f"/v1/tenants/{path_segment(name)}/resume")


def projects() -> Call[list[ProjectRow]]:
    return get("/v1/projects")


def project_add(path: str, name: str | None = None, shared: bool | None = None) -> Call[Project]:
    return post("/v1/projects", path=path, name=name, shared=shared)


def project_remove(name: str) -> Call[ProjectRemoved]:
    return delete(f"/v1/projects/{path_segment(name)}")


# -- roles and members ------------------------------------------------------------------------


def roles() -> Call[list[Role]]:
    return get("/v1/roles")


def role_show(name: str) -> Call[RoleShown]:
    return get(f"/v1/roles/{path_segment(name)}")


def role_create(name: str, permissions: list[str], description: str | None = None) -> Call[Role]:
    return post("/v1/roles", name=name, permissions=permissions, description=description)


def role_delete(name: str) -> Call[RoleDeleted]:
    return delete(f"/v1/roles/{path_segment(name)}")


def members() -> Call[list[MemberRow]]:
    return get("/v1/members")


def member_add(user: str, role: str, project: str | None = None) -> Call[MemberAdded]:
    return post("/v1/members", user=user, role=role, project=project)


def member_remove(user: str, project: str | None = None) -> Call[MemberRemoved]:
    return delete(f"/v1/members/{path_segment(user)}", project=project)


# -- quotas and usage -------------------------------------------------------------------------


def quota_status(user: str | None = None) -> Call[QuotaStatus]:
    return get("/v1/quotas", user=user)


def quota_set(
    metric: str, period: str, limit: int | str, user: str | None = None, alerts: str | list[float] | None = None
) -> Call[QuotaRow]:
    """``limit`` and ``alerts`` may be text as typed (the engine checks them: their range depends on the metric)."""
    return put("/v1/quotas", metric=metric, period=period, limit=limit, user=user, alerts=alerts)


def quota_remove(metric: str, period: str, user: str | None = None) -> Call[QuotaRemoved]:
    return delete("/v1/quotas", metric=metric, period=period, user=user)


def usage_record(
    model: str,
    input_tokens: int,
    output_tokens: int,
    requests: int | None = None,
    cost_usd: str | None = None,
    task_kind: str | None = None,
) -> Call[UsageRecorded]:
    """``cost_usd`` in dollars as text (exact to the micro-dollar); None: the engine prices the usage
    from the model registry (``priced`` in the answer; docs/quotas.md#pricing)."""
    return post(
        "/v1/usage", model=model, input_tokens=input_tokens, output_tokens=output_tokens, requests=requests,
        cost_usd=cost_usd, task_kind=task_kind,
    )


def usage_history(bucket: str = "hour", since_hours: int = 24, user: str | None = None) -> Call[UsageHistory]:
    return get("/v1/usage/history", bucket=bucket, since_hours=since_hours, user=user)


def reservations() -> Call[list[ReservationRow]]:
    return get("/v1/reservations")


def usage_reserve(
    tokens: int, requests: int | None = None, cost_usd: str | None = None, ttl_s: int | None = None,
    model: str | None = None,
) -> Call[Reserved]:
    """Without ``cost_usd``, ``model`` prices the hold from the registry (docs/quotas.md#pricing)."""
    return post("/v1/reservations", tokens=tokens, requests=requests, cost_usd=cost_usd, ttl_s=ttl_s, model=model)


def usage_settle(
    rid: str,
    input_tokens: int,
    output_tokens: int,
    requests: int | None = None,
    cost_usd: str | None = None,
    model: str | None = None,
    task_kind: str | None = None,
) -> Call[Settled]:
    return post(
        f"/v1/reservations/{path_segment(rid)}/settle", input_tokens=input_tokens, output_tokens=output_tokens,
        requests=requests, cost_usd=cost_usd, model=model, task_kind=task_kind,
    )


def usage_release(rid: str) -> Call[Released]:
    return post(f"/v1/reservations/{path_segment(rid)}/release")


# -- audit ------------------------------------------------------------------------------------


def audit_list(**filters: str | int | bool | None) -> Call[list[AuditEvent]]:
    """``filters`` are the query fields of :class:`core.api.models.AuditList` (since, actor, limit...)."""
    return get("/v1/audit", **filters)


def audit_verify(anchor: Json | None = None, system: bool | None = None) -> Call[Verified]:
    return post("/v1/audit/verify", anchor=anchor, system=system)


def audit_prune(before: str) -> Call[Pruned]:
    return post("/v1/audit/prune", before=before)


def audit_checkpoint(destination: str | None = None, dry_run: bool | None = None) -> Call[Checkpoint]:
    """The signed checkpoint of the chain's head; ``destination`` (where the client writes it) is only recorded."""
    return post("/v1/audit/checkpoint", destination=destination, dry_run=dry_run)


# -- traceability (docs/trace.md) -------------------------------------------------------------


def trace_report(path: str | None = None, view: str | None = None) -> Call[TraceReport]:
    return get("/v1/trace", path=path, view=view)


def trace_requirement(rid: str, path: str | None = None) -> Call[TraceRequirement]:
    return get(f"/v1/trace/requirements/{path_segment(rid)}", path=path)


def trace_gaps(path: str | None = None) -> Call[TraceGaps]:
    return get("/v1/trace/gaps", path=path)


def trace_export(fmt: str, path: str | None = None) -> Call[TraceExported]:
    return get("/v1/trace/export", path=path, format=fmt)


def spec_lint(path: str | None = None) -> Call[SpecLint]:
    return get("/v1/spec/lint", path=path)


def trace_impact(rid: str, path: str | None = None) -> Call[TraceImpact]:
    return get(f"/v1/trace/impact/{path_segment(rid)}", path=path)


def trace_review(rid: str, path: str | None = None) -> Call[Reviewed]:
    return post("/v1/trace/review", path=path, id=rid)


def trace_link(
    requirement: str, kind: str, target: str, *, path: str | None = None, line: int | None = None,
    state: str | None = None, source: str | None = None,
) -> Call[Linked]:
    return post(
        "/v1/trace/links", path=path, requirement=requirement, kind=kind, target=target, line=line, state=state,
        source=source,
    )


# -- models and cost (docs/models.md) ---------------------------------------------------------


def models_list() -> Call[ModelList]:
    return get("/v1/models")


def model_show(model_id: str) -> Call[ModelEntry]:
    """One model by id or alias (an id may hold ``/``: it is quoted as one segment)."""
    return get(f"/v1/models/{path_segment(model_id)}")


def models_allowed() -> Call[Allowed]:
    return get("/v1/models/allowed")


def models_allow(models: list[str]) -> Call[Allowed]:
    return put("/v1/models/allowed", models=models)


def models_allow_all() -> Call[Allowed]:
    return delete("/v1/models/allowed")


def models_route(task: str, input_tokens: int, kind: str | None = None) -> Call[Routed]:
    return post("/v1/models/route", task=task, input_tokens=input_tokens, kind=kind)


def models_import(table: Json, source: str, scope: str | None = None, dry_run: bool | None = None) -> Call[Imported]:
    """A price table (``core.models.importer.slim_table``) as the override of ``scope`` (tenant or user)."""
    return post("/v1/models/import", table=table, source=source, scope=scope, dry_run=dry_run)


def cost_workflows() -> Call[Workflows]:
    return get("/v1/cost/workflows")


def cost_estimate(
    models: list[str],
    paths: list[str] | None = None,
    *,
    workflow: str | None = None,
    task: str | None = None,
    retrieval_tokens: int | None = None,
    cache: bool | None = None,
    retrieval_task: str | None = None,
    retrieval_budget: int | str | None = None,
) -> Call[Estimate]:
    """An estimate of ``paths`` (absolute) for each of ``models``: a workflow's steps, or one call of ``task``.

    ``retrieval_task`` with ``retrieval_budget``: the retrieved context is an actual context pack.
    """
    return post(
        "/v1/cost/estimate", models=models, paths=paths, workflow=workflow, task=task,
        retrieval_tokens=retrieval_tokens, cache=cache, retrieval_task=retrieval_task,
        retrieval_budget=retrieval_budget,
    )


# -- code index and search (docs/search.md) ------------------------------------------------------


def index_start(path: str | None = None, force: bool | None = None) -> Call[IndexStarted]:
    """Index the project holding ``path`` (absolute), else the request's project; answers ``{"job": Job}``."""
    return post("/v1/index", path=path, force=force)


def index_status() -> Call[IndexStatus]:
    return get("/v1/index/status")


def search(query: str, k: int | str | None = None, path: str | None = None,
           lang: str | None = None) -> Call[SearchAnswer]:
    """Hybrid search in the request's project: ``k`` results, ``path`` a glob, ``lang`` a language."""
    return post("/v1/search", query=query, k=k, path=path or None, lang=lang or None)


def search_batch(queries: list[str], k: int | str | None = None, path: str | None = None,
                 lang: str | None = None) -> Call[SearchBatchAnswer]:
    return post("/v1/search/batch", queries=queries, k=k, path=path, lang=lang)


# -- context packs (docs/search.md#context-packs) ---------------------------------------------------


def context(task: str, budget: int | str, model: str, k: int | str | None = None, path: str | None = None,
            lang: str | None = None, min_score: float | None = None) -> Call[ContextPack]:
    """The project's best code for ``task`` packed into ``budget`` tokens of ``model``, with its manifest."""
    return post("/v1/context", task=task, budget=budget, model=model, k=k, path=path, lang=lang, min_score=min_score)


# -- runs (issue 12; docs/runs.md, core/api/runs.py) -------------------------------------------------

if TYPE_CHECKING:
    from core.api.runs import Run, RunApplied, RunDecided, RunLogs, RunShown


def run_start(workflow: str, feature: str, model: str | None = None, budget_tokens: int | str | None = None,
              budget_usd: str | None = None, max_turns: int | str | None = None,
              max_step_turns: int | str | None = None, gate_timeout_s: int | str | None = None) -> Call[Run]:
    """Start ``workflow`` on ``feature`` in the request's project; answers the queued run."""
    return post("/v1/runs", workflow=workflow, feature=feature, model=model, budget_tokens=budget_tokens,
                budget_usd=budget_usd, max_turns=max_turns, max_step_turns=max_step_turns,
                gate_timeout_s=gate_timeout_s)


def runs(state: str | None = None, limit: int | str | None = None) -> Call[list[Run]]:
    return get("/v1/runs", state=state, limit=limit)


def run_show(run_id: str) -> Call[RunShown]:
    return get(f"/v1/runs/{path_segment(run_id)}")


def run_cancel(run_id: str) -> Call[Run]:
    return post(f"/v1/runs/{path_segment(run_id)}/cancel")


def run_resume(run_id: str, budget_tokens: int | str | None = None, budget_usd: str | None = None,
               max_turns: int | str | None = None, max_step_turns: int | str | None = None) -> Call[Run]:
    return post(f"/v1/runs/{path_segment(run_id)}/resume", budget_tokens=budget_tokens, budget_usd=budget_usd,
                max_turns=max_turns, max_step_turns=max_step_turns)


def run_decide(run_id: str, decision: str, gate: str | None = None, comment: str | None = None,
               shown_sha256: str | None = None) -> Call[RunDecided]:
    """Answer a pending gate: ``decision`` is ``approve``, ``reject`` or ``request_changes``."""
    return post(f"/v1/runs/{path_segment(run_id)}/{path_segment(decision)}", gate=gate, comment=comment,
                shown_sha256=shown_sha256)


def run_apply(run_id: str, artefact: str | None = None) -> Call[RunApplied]:
    return post(f"/v1/runs/{path_segment(run_id)}/apply", artefact=artefact)


def run_logs(run_id: str, after: int | str | None = None, limit: int | str | None = None) -> Call[RunLogs]:
    return get(f"/v1/runs/{path_segment(run_id)}/logs", after=after, limit=limit)


# runs gaps (issue 12): output so far, retry one step, latency per tenant, the audit-text switch
if TYPE_CHECKING:
    from core.api.runs import ProviderLatency, RunOutput, RunRetried, RunSettings


def run_output(run_id: str, step: str) -> Call[RunOutput]:
    """Step ``step``'s output so far: the live tail while it streams, else what was recorded."""
    return get(f"/v1/runs/{path_segment(run_id)}/output", step=step)


def run_retry(run_id: str, step: str) -> Call[RunRetried]:
    """Run one failed, cancelled, stopped or interrupted step again with new calls (the rest is not re-run)."""
    return post(f"/v1/runs/{path_segment(run_id)}/retry", step=step)


def provider_stats() -> Call[list[ProviderLatency]]:
    """p50/p95/p99 latency of this tenant's model calls per provider and model."""
    return get("/v1/providers/stats")


def run_settings() -> Call[RunSettings]:
    return get("/v1/run-settings")


def run_settings_set(audit_text: bool) -> Call[RunSettings]:
    """Turn prompt and output text in the run.call audit events on or off (tenant.manage)."""
    return put("/v1/run-settings", audit_text=audit_text)


# -- providers (issue 12; docs/providers.md) ---------------------------------------------------


def providers_list() -> Call[ProviderList]:
    """The engine's configured LLM providers (never a key) and what to set for the missing ones."""
    return get("/v1/providers")


def providers_test(name: str | None = None) -> Call[ProviderTested]:
    """One tiny call per provider (or the one named); failures carry the vendor's own text, redacted."""
    return post("/v1/providers/test", name=name)


def engine_reload(env: dict[str, str] | None = None) -> Call[Reloaded]:
    """Re-read config.toml; ``env`` (the caller's provider variables) replaces the engine's, if given."""
    return post("/v1/engine/reload", env=env)


# -- identity / SSO (docs/identity.md) ---------------------------------------------------------------


def sso_providers() -> Call[list[SsoProvider]]:
    """The identity providers config.toml defines (public settings only)."""
    return get("/v1/sso/providers")


def sso_signin(provider: str, id_token: str, nonce: str | None = None,
               access_token: str | None = None) -> Call[SsoSignedIn]:
    """Hand the engine an ID token to validate; it answers a session bound to this OS user."""
    return post("/v1/sso/session", provider=provider, id_token=id_token, nonce=nonce, access_token=access_token)


def sso_session() -> Call[SsoSessionShown]:
    return get("/v1/sso/session")


def sso_signout() -> Call[SsoSignedOut]:
    return delete("/v1/sso/session")


def sso_rules() -> Call[list[SsoRule]]:
    return get("/v1/sso/rules")


def sso_rule_set(value: str, role: str, claim: str | None = None, provider: str | None = None) -> Call[SsoRule]:
    return put("/v1/sso/rules", value=value, role=role, claim=claim, provider=provider)


def sso_rule_remove(value: str, claim: str | None = None, provider: str | None = None) -> Call[SsoRule]:
    return delete("/v1/sso/rules", value=value, claim=claim, provider=provider)


def sso_policy() -> Call[SsoPolicy]:
    return get("/v1/sso/policy")


def sso_policy_set(required: bool, break_glass: str | None = None) -> Call[SsoPolicy]:
    return put("/v1/sso/policy", required=required, break_glass=break_glass)


# -- remote sessions (docs/remote.md) ----------------------------------------------------------------


def session_mint(user: str, tenant: str, purpose: str, ttl_s: int | None = None,
                 client: str | None = None, *, auth: str | None = None, groups: list[str] | None = None,
                 roles: list[str] | None = None, subject: str | None = None) -> Call[SessionMinted]:
    """A session token for ``user`` in ``tenant`` (the engine's OS user only: what ``musubi serve`` calls);
    ``auth`` says how the user was authenticated (docs/api.md#remote-sessions)."""
    return post("/v1/sessions", user=user, tenant=tenant, purpose=purpose, ttl_s=ttl_s, client=client, auth=auth,
                groups=groups or None, roles=roles or None, subject=subject or None)


def sessions() -> Call[list[SessionRow]]:
    return get("/v1/sessions")


def session_revoke(id: str, reason: str | None = None) -> Call[SessionRevoked]:
    """End session ``id`` (logout, disconnect)."""
    return delete(f"/v1/sessions/{path_segment(id)}", reason=reason)


def remote_event(mode: str, event: str, user: str | None = None, tenant: str | None = None,
                 client: str | None = None, reason: str | None = None) -> Call[RemoteEventAudited]:
    """Audit a remote log-in, refusal or log-out (``event``: login, refused, logout)."""
    return post("/v1/remote/events", mode=mode, event=event, user=user, tenant=tenant, client=client, reason=reason)


# -- integrations (issue 17; docs/integrations.md) -------------------------------------------------


def integrations() -> Call[Integrations]:
    """Every system with its settings and the names (never values) of its stored secrets."""
    return get("/v1/integrations")


def integration_set(name: str, settings: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
                    unset: list[str] | None = None) -> Call[IntegrationSaved]:
    return put(f"/v1/integrations/{path_segment(name)}", settings=settings, secrets=secrets, unset=unset)


def integration_test(name: str) -> Call[IntegrationTested]:
    return post(f"/v1/integrations/{path_segment(name)}/test")


def integration_notify(name: str, title: str, text: str, target: str | None = None) -> Call[Notified]:
    """Send one message through Slack or Teams (``target``: a channel, or ``webhook``)."""
    return post(f"/v1/integrations/{path_segment(name)}/notify", title=title, text=text, target=target)


def pipeline_status(name: str, ref: str, project_key: str | None = None) -> Call[PipelineStatus]:
    return get(f"/v1/integrations/{path_segment(name)}/pipelines", ref=ref, project_key=project_key)


def sync_start(name: str, project_key: str, dry_run: bool | None = None, resolve: dict[str, str] | None = None,
               include: list[str] | None = None) -> Call[SyncStarted]:
    """Start a sync job of the request's project into ``project_key``; answers ``{"job": Job}``."""
    return post(f"/v1/sync/{path_segment(name)}", project_key=project_key, dry_run=dry_run, resolve=resolve,
                include=include)


# -- identity x remote sessions (serve web --oidc) -------------------------------------------------


def sso_verify(provider: str, id_token: str, nonce: str) -> Call[SsoVerified]:
    """Have the engine validate a browser sign-in's ID token (the engine's OS user only: ``serve web --oidc``)."""
    return post("/v1/sso/verify", provider=provider, id_token=id_token, nonce=nonce)


# -- notify (issue 17; docs/integrations.md#inbound) -------------------------------------------------


def inbound_slack(body: str, timestamp: str | None = None, signature: str | None = None) -> Call[SlackAnswer]:
    """Forward a Slack interaction as received (``musubi serve hooks``; the engine's OS user only)."""
    return post("/v1/inbound/slack", body=body, timestamp=timestamp, signature=signature)


def inbound_gitlab(body: str, token: str | None = None, event: str | None = None,
                   idempotency_key: str | None = None) -> Call[GitLabAccepted]:
    """Forward a GitLab webhook as received (``musubi serve hooks``; the engine's OS user only)."""
    return post("/v1/inbound/gitlab", body=body, token=token, event=event, idempotency_key=idempotency_key)


def integration_users() -> Call[UserMap]:
    """The tenant's external-user mapping (Slack user id -> musubi user)."""
    return get("/v1/integrations/users")


def integration_map_user(name: str, external: str, user: str | None = None) -> Call[UserMap]:
    """Map ``external`` (a Slack user id) to musubi ``user``; no ``user`` removes the mapping."""
    return put(f"/v1/integrations/{path_segment(name)}/users/{path_segment(external)}", user=user)


# -- tutorials (issue 18; docs/tutorials.md) --------------------------------------------------------


def tutorials() -> Call[list[TutorialSummary]]:
    """The tutorial catalogue with the caller's progress in each."""
    return get("/v1/tutorials")


def tutorial_show(tutorial: str) -> Call[TutorialShown]:
    """One tutorial: its steps (placeholders filled in once a sandbox exists) and the caller's progress."""
    return get(f"/v1/tutorials/{path_segment(tutorial)}")


def tutorial_progress(tutorial: str) -> Call[Progress]:
    """The caller's progress in one tutorial."""
    return get(f"/v1/tutorials/{path_segment(tutorial)}/progress")


def tutorial_start(tutorial: str) -> Call[Started]:
    """Start or resume: make (or keep) the sandbox, complete steps already satisfied."""
    return post(f"/v1/tutorials/{path_segment(tutorial)}/start")


def tutorial_check(tutorial: str, step: str) -> Call[Checked]:
    """Have the engine check a step against the sandbox (``ok`` false is an answer, not an error)."""
    return post(f"/v1/tutorials/{path_segment(tutorial)}/check", step=step)


def tutorial_complete(tutorial: str, step: str) -> Call[StepDone]:
    """Report a key, mode, palette or unchecked cli step done."""
    return post(f"/v1/tutorials/{path_segment(tutorial)}/complete", step=step)


def tutorial_skip(tutorial: str, step: str) -> Call[StepDone]:
    """Skip a step."""
    return post(f"/v1/tutorials/{path_segment(tutorial)}/skip", step=step)


def tutorial_reset(tutorial: str) -> Call[ResetDone]:
    """Clean the sandbox and forget the progress."""
    return post(f"/v1/tutorials/{path_segment(tutorial)}/reset")
# -- run pipelines (issue 17 gaps; docs/integrations.md#pipelines) ---------------------------------


def run_pipeline(id: str) -> Call[RunPipeline]:
    """The git ref run ``id`` built on and the state of its newest CI pipeline."""
    return get(f"/v1/runs/{path_segment(id)}/pipeline")


def run_pipeline_link(id: str, ref: str, system: str | None = None) -> Call[RunPipeline]:
    """Show the pipeline of ``ref`` (on ``system``, else the tenant's CI system) for run ``id``."""
    return put(f"/v1/runs/{path_segment(id)}/pipeline", ref=ref, system=system)


def integration_login(name: str) -> Call[EntraLogin]:
    """Start the Entra device-code sign-in of ``name`` (teams, ado): answers the code and the address."""
    return post(f"/v1/integrations/{path_segment(name)}/login")


def integration_login_status(name: str) -> Call[EntraLogin]:
    """How the last Entra sign-in of ``name`` went (pending, signed_in, failed) or none."""
    return get(f"/v1/integrations/{path_segment(name)}/login")


# -- teams bot (issue 17; docs/integrations.md#teams-bot) -----------------------------------------


def inbound_teams(body: str, authorization: str | None = None) -> Call[TeamsAnswer]:
    """Forward a Bot Connector activity as received (``musubi serve hooks``; the engine's OS user only)."""
    return post("/v1/inbound/teams", body=body, authorization=authorization)


# -- local embedder (issue 19; docs/finetune.md) ------------------------------------------------------


def tune_embedders() -> Call[TunedEmbedders]:
    """The project's tuned embedder versions, newest first, and which one serves search."""
    return get("/v1/tune/embedders")


def tune_embed_start(budget_s: int | None = None) -> Call[TuneEmbedStarted]:
    """Start the ``tune.embed`` job for the request's project; answers ``{"job": Job}``."""
    return post("/v1/tune/embedders", budget_s=budget_s)


def tune_embed_activate(version: int) -> Call[TuneEmbedActivating]:
    """Serve ``version`` (0: the base model) once the index is re-embedded with it (a ``tune.activate`` job)."""
    return post("/v1/tune/embedders/activate", version=version)


def tune_embed_rollback() -> Call[TuneEmbedActivating]:
    """Serve the model that served before the current one (a ``tune.activate`` job)."""
    return post("/v1/tune/embedders/rollback")


def tune_embed_delete(version: int | str) -> Call[TuneEmbedDeleted]:
    """Remove tuned embedder ``version``'s files for good; its row stays as ``deleted`` (the record)."""
    return delete(f"/v1/tune/embedders/{path_segment(str(version))}")
