"""Inbound calls from Slack and GitLab, verified and acted on inside the engine (docs/integrations.md#inbound).

``musubi serve hooks`` (an HTTP server run by the engine's OS user) forwards each call over
the engine's socket **as received**: the raw body and the headers that authenticate it.  The
engine, not the forwarder, checks them, so the signing secret and the webhook token never
leave the engine and its replay guard survives a restart of the forwarder (and of the engine):

- only the engine's own OS user acting as themself (no ``--as``, no remote session) may
  forward: anyone else is refused before any body is looked at;
- Slack: the v0 signature on the raw body, a 5-minute window (:mod:`core.integrations.signing`),
  a replay guard kept in DuckDB (:mod:`core.integrations.replay`, written in the same commit as
  the decision, so a replay is refused as one even after an engine restart); then the payload's
  Slack user id is mapped to a musubi user through the tenant's mapping (``musubi integrations
  map-user slack U123 alice``) and the decision goes through the same operation as ``musubi runs
  approve`` **as that user**, so ``runs.approve`` is checked for them and a gate is never
  answered twice.  Nothing in the payload beyond the verified signature is trusted: the user id
  picks a mapping an admin set, the button's value names a run and gate that the engine looks up
  and checks;
- GitLab: ``X-Gitlab-Token`` in constant time against the tenant's ``webhook_token``; an
  ``Idempotency-Key`` already seen is acknowledged once; pipeline events update the pipeline
  status the engine serves (``GET /v1/integrations/gitlab/pipelines``).

Every refusal and every decision is audited (``integration.inbound``, ``run.approve`` ...).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from core import names
from core.engine import access
from core.engine.access import Caller
from core.errors import BadRequest, Conflict, MusubiError, NotFound, PermissionDenied
from core.integrations.contracts import PipelineRun
from core.integrations.replay import Claim, ReplayGuard
from core.integrations.signing import REPLAYED, SignatureVerifier, gitlab_token_ok
from core.integrations.teamsin import TeamsInbound

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.integrations.service import IntegrationService
    from core.orchestration.service import RunService

MAPPED_SYSTEMS = ("slack", "teams")
DECISIONS = {"approve": "approved", "reject": "rejected", "request_changes": "changes requested"}
SLACK_DECISIONS = ("approve", "reject")  # Slack's buttons; a Teams card adds request_changes
_GITLAB_STATES = {"created": "queued", "waiting_for_resource": "queued", "preparing": "queued", "pending": "queued",
                  "scheduled": "queued", "manual": "queued", "running": "running", "success": "success",
                  "failed": "failed", "canceled": "canceled", "skipped": "canceled"}
_EXTERNAL = {"slack": re.compile(r"^[A-Za-z0-9_]+$"), "teams": re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")}


def ephemeral(text: str) -> dict[str, Any]:
    """A Slack message only the clicker sees, leaving the original (with its buttons) in place."""
    return {"response_type": "ephemeral", "replace_original": False, "text": text}


class InboundService:
    """``engine.inbound``: user mapping, Slack interactions, GitLab webhooks."""

    def __init__(self, runner: OpRunner, integrations: IntegrationService, runs: RunService) -> None:
        self.e = runner
        self.integrations = integrations
        self.runs = runs
        self._verifiers: dict[str, SignatureVerifier] = {}
        saved = getattr(runner, "snapshot_integrations", None) or {}  # migration 012, loaded at engine start
        self.replay = ReplayGuard(runner, saved.get("inbound_replay", []))
        self._teams = TeamsInbound(self)

    # -- user mapping -----------------------------------------------------------------------

    def mapped_user(self, tenant: str, system: str, external: str) -> str | None:
        return (self.integrations.store.user_map(tenant).get(system) or {}).get(external)

    async def users(self, ctx: Caller) -> dict[str, Any]:
        """The tenant's external-user mapping (``integrations.manage``)."""
        await self.e.run(ctx, "integration.read", "integration:users",
                         lambda: self.e.require(ctx, "integrations.manage"))
        data = await asyncio.to_thread(self.integrations.store.user_map, ctx.tenant)
        rows = [{"system": s, "external": x, "user": u} for s in sorted(data) for x, u in sorted(data[s].items())]
        return {"tenant": ctx.tenant, "users": rows}

    async def map_user(self, ctx: Caller, system: str, external: str, user: str | None) -> dict[str, Any]:
        """Map (or, with no ``user``, unmap) an external user id; audited ``integration.map_user``."""
        if system not in MAPPED_SYSTEMS:
            raise BadRequest(f"users are mapped for {', '.join(MAPPED_SYSTEMS)}; not {system!r}.", field="system")
        if not _EXTERNAL[system].match(external):
            example = "U0123ABCD: letters and digits" if system == "slack" else \
                "the Entra object id (aadObjectId) or the Teams id 29:1abc..."
            raise BadRequest(f"{external!r} is not a {system} user id (e.g. {example}).", field="external")
        if user is not None:
            names.user_name(user)
        resource = f"integration:{system}:{external}"

        def op() -> None:
            self.e.require(ctx, "integrations.manage")
            if user is not None and not self.e.state.is_member(ctx.tenant, user):
                raise NotFound(f"{user!r} is not a member of tenant {ctx.tenant!r}; add them first "
                               f"(musubi member add {user} --role ...).", resource=f"user:{user}")

        await self.e.run(ctx, "integration.map_user", resource, op)
        await asyncio.to_thread(self.integrations.store.set_user, ctx.tenant, system, external, user)
        await self.e.run(ctx, "integration.map_user", resource, lambda: self.e.audit(
            ctx.tenant, ctx, "integration.map_user", resource, details={"system": system, "external": external,
                                                                         "user": user}))
        return await self.users(ctx)

    # -- shared -----------------------------------------------------------------------------

    async def _refuse(self, ctx: Caller, system: str, reason: str, details: dict[str, Any] | None = None) -> None:
        await self.e.run(None, "integration.inbound", f"integration:{system}", lambda: self.e.audit(
            ctx.tenant, ctx, "integration.inbound", f"integration:{system}", outcome="denied",
            details={"system": system, "reason": reason, **(details or {})}))

    def _forwarder(self, ctx: Caller, system: str) -> None:
        if not access.is_engine_user(ctx):
            raise PermissionDenied(f"permission denied: only the OS user who runs the engine "
                                   f"({access.engine_os_user()}), acting as themself, forwards {system} calls "
                                   "(musubi serve hooks).", permission="engine")

    # -- Slack ------------------------------------------------------------------------------

    def _verifier(self, tenant: str) -> SignatureVerifier:
        secret = self.integrations.store.secrets(tenant, "slack").get("signing_secret") or ""
        v = self._verifiers.get(tenant)
        if v is None or not secret or not v.same_secret(secret):
            v = self._verifiers[tenant] = SignatureVerifier(secret)  # raises when none is stored
        return v

    async def slack(self, ctx: Caller, body: str, timestamp: str | None, signature: str | None) -> dict[str, Any]:
        """A verified Slack interaction: approve/reject a gate as the mapped musubi user."""
        await self.e.run(ctx, "integration.inbound", "integration:slack", lambda: self._forwarder(ctx, "slack"))
        try:
            verifier = await asyncio.to_thread(self._verifier, ctx.tenant)
        except MusubiError as exc:
            await self._refuse(ctx, "slack", "no signing secret stored")
            raise PermissionDenied(exc.message, code="bad_signature") from None
        headers = {k: v for k, v in (("X-Slack-Request-Timestamp", timestamp), ("X-Slack-Signature", signature)) if v}
        why = verifier.verify(body.encode("utf-8"), headers)
        claim: Claim | None = None
        if why is None:  # authentic and in the window, so both headers are there and the timestamp an integer
            # Claimed synchronously (no await between the look-up and the reservation): two copies arriving
            # together cannot both pass.
            claim = self.replay.claim(ctx.tenant, "slack", str(signature), int(str(timestamp)))
            why = REPLAYED if claim is None else None
        if claim is None:
            await self._refuse(ctx, "slack", str(why))
            raise PermissionDenied(f"slack signature refused: {why}", code="bad_signature")
        try:
            answer = await self._slack_verified(ctx, body, claim)
            await claim.commit()  # unless the decision's own commit already holds it
        except BaseException:
            claim.release()
            raise
        return answer

    async def _slack_verified(self, ctx: Caller, body: str, claim: Claim) -> dict[str, Any]:
        try:
            payload = json.loads(parse_qs(body, strict_parsing=True)["payload"][0])
        except (ValueError, KeyError):
            raise BadRequest("expected a form with a JSON 'payload' field (a Slack interaction).",
                             field="body") from None
        if not isinstance(payload, dict):
            raise BadRequest("the interaction payload is not a JSON object.", field="body")
        actions = payload.get("actions") or []
        action = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        decision = action.get("action_id")
        slack_user = str((payload.get("user") or {}).get("id") or "")
        if payload.get("type") != "block_actions" or decision not in SLACK_DECISIONS:
            return self._answer("ignored", "musubi only answers its own approve/reject buttons.")
        run_id, _, rest = str(action.get("value") or "").partition("|")
        gate, _, shown = rest.partition("|")
        user = await asyncio.to_thread(self.mapped_user, ctx.tenant, "slack", slack_user) if slack_user else None
        if user is None:
            await self._refuse(ctx, "slack", "unknown Slack user", {"slack_user": slack_user, "run": run_id})
            return self._answer("unknown_user", f"Your Slack user ({slack_user or 'unknown'}) is not mapped to a "
                                "musubi user, so musubi cannot act for you. Ask an admin to run: musubi "
                                f"integrations map-user slack {slack_user or 'U…'} YOUR_USER")
        outcome, text = await self.decide(ctx, "slack", slack_user, user, run_id, decision, gate, shown,
                                          record=claim.write)
        if outcome in DECISIONS.values():
            claim.durable = True  # written in the decision's own commit
        return self._answer(outcome, text)

    async def decide(self, ctx: Caller, system: str, external: str, user: str, run_id: str, decision: str,
                     gate: str, shown: str, record: Callable[[], None] | None = None) -> tuple[str, str]:
        """Answer a gate as the mapped ``user`` (Slack and Teams clicks): (outcome, text for the clicker).

        ``record`` writes in the decision's own commit (the Slack request's replay-guard row).
        """
        # As the mapped user, never with the engine OS user's powers (a session never has them, even for a
        # musubi user named like that OS user); the audit shows where the decision came from.
        who = Caller(real_user=user, user=user, tenant=ctx.tenant, session=f"{system}:{external}")
        try:
            await self.runs.decide(who, run_id, decision, gate or None,
                                   comment=f"via {system.capitalize()} ({external})", shown_sha256=shown or None,
                                   also=record)
        except PermissionDenied as exc:  # already audited as a denial of run.<decision> for `user`
            return "denied", f"{user} may not {decision} run {run_id}: {exc.message}"
        except Conflict as exc:
            if getattr(exc, "code", "") == "gate_answered":
                return "already_decided", f"Already decided: {exc.message}"
            return "conflict", exc.message
        except NotFound as exc:
            return "not_found", exc.message
        past = DECISIONS[decision]
        return past, f"Gate {gate or ''} of run {run_id} {past} by {user}."

    # -- teams bot ----------------------------------------------------------------------------

    async def teams(self, ctx: Caller, body: str, authorization: str | None) -> dict[str, Any]:
        """A Bot Connector activity (a click on a Teams approval card): see core/integrations/teamsin.py."""
        return await self._teams.handle(ctx, body, authorization)

    @staticmethod
    def _answer(outcome: str, text: str) -> dict[str, Any]:
        return {"outcome": outcome, "text": text, "response": ephemeral(text)}

    # -- GitLab -----------------------------------------------------------------------------

    async def gitlab(self, ctx: Caller, body: str, token: str | None, event: str | None,
                     idempotency_key: str | None) -> dict[str, Any]:
        """A GitLab webhook: token checked in constant time; pipeline events update pipeline status."""
        await self.e.run(ctx, "integration.inbound", "integration:gitlab", lambda: self._forwarder(ctx, "gitlab"))
        expected = (await asyncio.to_thread(self.integrations.store.secrets, ctx.tenant, "gitlab")).get(
            "webhook_token") or ""
        if not gitlab_token_ok(expected, token):
            why = "no webhook_token stored" if not expected else "invalid X-Gitlab-Token"
            await self._refuse(ctx, "gitlab", why, {"event": (event or "")[:100]})
            raise PermissionDenied(f"gitlab webhook refused: {why}.", code="bad_token")
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadRequest("the GitLab webhook body is not JSON.", field="body") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("object_kind"), str):
            raise BadRequest("no object_kind: not a GitLab event.", field="body")
        kind = payload["object_kind"]
        hooks = self.integrations.webhooks
        key = idempotency_key[:200] if idempotency_key else None
        if key and hooks.seen(ctx.tenant, key):
            return {"accepted": True, "duplicate": True, "kind": kind}
        run = self._pipeline(payload) if kind == "pipeline" else None
        # Durable (webhook_deliveries, webhook_pipelines) before GitLab is answered: after a restart a
        # retried delivery is still recognised and the pipeline status still served.
        await hooks.record(ctx.tenant, "gitlab", key, kind[:100], run)
        return {"accepted": True, "duplicate": False, "kind": kind}

    @staticmethod
    def _pipeline(payload: dict[str, Any]) -> PipelineRun | None:
        attrs = payload.get("object_attributes") or {}
        if not isinstance(attrs, dict) or attrs.get("id") is None:
            return None
        status = str(attrs.get("status") or "")
        project = payload.get("project") or {}
        url = str((project.get("web_url") or "") + f"/-/pipelines/{attrs['id']}") if project.get("web_url") else ""
        return PipelineRun("gitlab", str(attrs["id"])[:100], str(attrs.get("ref") or "")[:500],
                           _GITLAB_STATES.get(status, "unknown"), status[:100], url[:2000],
                           str(attrs.get("sha") or "")[:100], str(attrs.get("name") or "")[:500])
