"""Clicks on a Teams bot's approval card, verified and acted on inside the engine (docs/integrations.md#teams-bot).

``musubi serve hooks`` forwards the Bot Connector's ``POST /api/messages`` as received (raw body
and ``Authorization``) to ``POST /v1/inbound/teams``.  Here, in order, and refusing (401/403,
audited ``integration.inbound`` denied, nothing changed) at the first failure: the forwarder is
the engine's OS user; a bot is set up (``bot_app_id``); the body is an activity; its JWT passes
:func:`core.integrations.botauth.verify` (signature, issuer, audience, expiry, ``serviceUrl``
claim, endorsement, allow-listed host); the activity was not accepted before (the replay guard
below).  Then an ``Action.Submit`` (a ``message`` whose
``value`` is the button's data) or an ``Action.Execute`` (an ``invoke`` named
``adaptiveCard/action``) names run, gate and decision; ``from.aadObjectId`` (else ``from.id``)
is mapped to a musubi user (``musubi integrations map-user teams ...``) and the decision goes
through the same operation as Slack's and ``musubi runs approve`` as that user (``runs.approve``
checked, a gate never answered twice).  After a Submit that decided the gate, the bot updates
the clicked card in place (Update Activity): the decision, who and when, buttons gone (so does a
click on a card whose gate was decided elsewhere); any other outcome, or an update the Bot
Connector refuses, gets a short threaded reply instead.  An Execute
is answered with that line as its invoke response.  A failed update or reply is audited and never
undoes the decision.

Replays: the JWT does not sign the body, and the Bot Connector reuses one token for many activities
(so its ``jti``, when it has one, names no single activity).  What names one is the activity's
``id`` in its conversation (api-notes §5.3), so each accepted activity is remembered by
``(channelId, conversation.id, id)`` in the replay guard Slack uses (:mod:`core.integrations.replay`,
migration 012's ``inbound_replay``, system ``teams``), written in the same commit as the gate's
decision.  The same activity again is refused as a replay (401, audited), also after an engine
restart or kill -9, for as long as its token could still be accepted (``exp`` plus the 5-minute
skew); later the token's expiry refuses it.  An activity without an ``id`` cannot be told from its
replay and is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.engine.access import Caller
from core.errors import BadRequest, MusubiError
from core.integrations import botauth
from core.integrations.contracts import Message, Replier, error_info

if TYPE_CHECKING:
    from core.integrations.inbound import InboundService
    from core.integrations.replay import Claim

SYSTEM = "teams"
_SEVERITY = {"approved": "good", "rejected": "danger", "changes_requested": "warning"}  # gate states
DECIDED = ("approved", "rejected", "changes requested")  # the outcomes of InboundService.decide that decided
REPLAYED = "replayed activity (this activity was already accepted)"
MAX_ID = 500  # an activity or conversation id longer than this is no Bot Connector's
MAX_KEEP_S = 7 * 86_400  # its tokens live about an hour; a row is never kept longer than this


def submitted(activity: dict[str, Any]) -> dict[str, Any] | None:
    """The data of musubi's button in an activity (Action.Submit or Action.Execute), else None."""
    value: Any = None
    if activity.get("type") == "message":
        value = activity.get("value")
    elif activity.get("type") == "invoke" and activity.get("name") == "adaptiveCard/action":
        action = (activity.get("value") or {}).get("action") if isinstance(activity.get("value"), dict) else None
        value = action.get("data") if isinstance(action, dict) else None
    return value if isinstance(value, dict) and value.get("musubi") == "gate" else None


def answer(outcome: str, text: str, invoke: bool) -> dict[str, Any]:
    """The engine's answer; ``response`` is what the Bot Connector gets back (an invoke response, or nothing)."""
    response: dict[str, Any] = ({"statusCode": 200, "type": "application/vnd.microsoft.activity.message",
                                 "value": text} if invoke else {})
    return {"outcome": outcome, "text": text, "response": response}


class TeamsInbound:
    """``engine.inbound.teams``: one per engine, its Bot Framework key caches by metadata URL."""

    def __init__(self, svc: InboundService) -> None:
        self.svc = svc
        self._keys: dict[str, botauth.BotKeys] = {}

    def keys(self, url: str) -> botauth.BotKeys:
        k = self._keys.get(url)
        if k is None:
            k = self._keys[url] = botauth.BotKeys(url)
        return k

    async def handle(self, ctx: Caller, body: str, authorization: str | None) -> dict[str, Any]:
        svc = self.svc
        await svc.e.run(ctx, "integration.inbound", "integration:teams", lambda: svc._forwarder(ctx, SYSTEM))
        settings = (await asyncio.to_thread(svc.integrations.store.settings, ctx.tenant)).get(SYSTEM) or {}
        app_id = str(settings.get("bot_app_id") or "")
        if not app_id:
            await svc._refuse(ctx, SYSTEM, "no Teams bot set up")
            raise botauth.BotRefused("teams bot request refused: no bot is set up for this tenant (musubi "
                                     "integrations set teams bot_app_id=APP_ID ...).", code="bad_token")
        try:
            activity = json.loads(body)
        except ValueError:
            activity = None
        if not isinstance(activity, dict):
            raise BadRequest("the body is not a Bot Framework activity (a JSON object).", field="body")
        hosts = botauth.allowed_hosts(settings.get("bot_service_hosts"))
        keys = self.keys(str(settings.get("bot_openid_url") or botauth.OPENID_URL))
        try:
            claims = await asyncio.to_thread(botauth.verify, authorization, activity, keys, app_id, hosts)
        except botauth.BotRefused as exc:
            await svc._refuse(ctx, SYSTEM, exc.message.removeprefix("teams bot request refused: ").rstrip("."))
            raise
        key = activity_key(activity)
        if key is None:
            await svc._refuse(ctx, SYSTEM, "the activity has no id")
            raise BadRequest("the activity has no id (or one over 500 characters), so a replay of it could not be "
                             "told apart: not a Bot Connector activity.", field="id")
        # Claimed right after the verification, with no await in between: two copies arriving together
        # cannot both pass.  Kept until the token expires (plus the skew it is accepted with).
        claim = svc.replay.claim(ctx.tenant, SYSTEM, key, replay_ts(claims["exp"], svc.replay.window_s))
        if claim is None:
            await svc._refuse(ctx, SYSTEM, REPLAYED, {"activity": str(activity["id"])[:200]})
            raise botauth.BotRefused(f"teams bot request refused: {REPLAYED}.", code="bad_token",
                                     permission="teams-bot")
        try:
            result = await self._verified(ctx, activity, claim)
            await claim.commit()  # unless the decision's own commit already holds it
        except BaseException:
            claim.release()  # its handling failed: the Bot Connector's retry is not a replay
            raise
        return result

    async def _verified(self, ctx: Caller, activity: dict[str, Any], claim: Claim) -> dict[str, Any]:
        """An authentic activity, seen for the first time: act on musubi's button, ignore anything else."""
        svc = self.svc
        data = submitted(activity)
        invoke = activity.get("type") == "invoke"
        if data is None or data.get("decision") not in ("approve", "reject", "request_changes"):
            # Audited with where it came from: how an admin finds bot_service_url and bot_conversation
            # (mention the bot once in the channel, then: musubi audit list --action integration.inbound).
            conv = activity.get("conversation")
            where = {"service_url": str(activity.get("serviceUrl") or "")[:300],
                     "conversation": str(conv.get("id") if isinstance(conv, dict) else "")[:300]}
            await svc.e.run(None, "integration.inbound", "integration:teams", lambda: svc.e.audit(
                ctx.tenant, ctx, "integration.inbound", "integration:teams", outcome="success",
                details={"system": SYSTEM, "reason": "not a musubi button: ignored", **where}))
            return answer("ignored", "musubi only answers its own approve/reject/request changes buttons.", invoke)
        sender: dict[str, Any] = activity["from"] if isinstance(activity.get("from"), dict) else {}
        external = str(sender.get("aadObjectId") or sender.get("id") or "")[:64]
        run_id, gate = str(data.get("run") or "")[:100], str(data.get("gate") or "")[:200]
        user = await asyncio.to_thread(svc.mapped_user, ctx.tenant, SYSTEM, external) if external else None
        if user is None:
            await svc._refuse(ctx, SYSTEM, "unknown Teams user", {"teams_user": external, "run": run_id})
            outcome, text = "unknown_user", (
                f"Your Teams user ({external or 'unknown'}) is not mapped to a musubi user, so musubi cannot act for "
                f"you. Ask an admin to run: musubi integrations map-user teams {external or 'AAD_OBJECT_ID'} YOUR_USER")
        else:
            outcome, text = await svc.decide(ctx, SYSTEM, external, user, run_id, str(data["decision"]), gate,
                                             str(data.get("sha") or "")[:64], record=claim.write)
            if outcome in DECIDED:
                claim.durable = True  # its row was written in the decision's own commit
        if not invoke:
            decided = None
            if user is not None and (outcome in DECIDED or outcome == "already_decided"):
                # Also a stale card (decided elsewhere: the CLI, Slack, another click) loses its buttons.
                decided = self._decided_card(ctx.tenant, run_id, gate, str(data.get("sha") or "")[:64])
            await self._confirm(ctx.tenant, activity, text, decided)
        return answer(outcome, text, invoke)

    def _decided_card(self, tenant: str, run_id: str, gate: str, sha: str) -> Message | None:
        """The card showing the gate's recorded decision (state, by, at), or None if it has none."""
        d = self.svc.runs.data.get(run_id)
        ap = d.approvals.get(gate) if d is not None and d.run.tenant == tenant else None
        if ap is None or ap.decided_by is None or ap.decided_at is None or ap.state not in _SEVERITY:
            return None
        return decided_card(run_id, gate, sha, ap.state.replace("_", " "), ap.decided_by, ap.decided_at)

    async def _confirm(self, tenant: str, activity: dict[str, Any], text: str, decided: Message | None) -> None:
        """After a click: the decided card in place of the clicked one, else (or if that fails) a threaded reply.

        Audited ``integration.notify`` (``card_update`` / ``bot_reply``); a failure is audited and never
        undoes the decision.
        """
        conv_of = activity.get("conversation")
        conversation: dict[str, Any] = conv_of if isinstance(conv_of, dict) else {}
        service_url, conv = str(activity.get("serviceUrl") or ""), str(conversation.get("id") or "")
        card_id = str(activity.get("replyToId") or "") or None  # the card the button was on
        integ = self.svc.integrations
        resource = "integration:teams"
        try:
            conn = await integ.open_connector(tenant, SYSTEM)
        except MusubiError as exc:
            await integ._audit(tenant, "engine", "integration.notify", resource, "error",
                               {"event": "bot_reply", **error_info(exc, SYSTEM)})
            return
        try:
            if not isinstance(conn, Replier):
                raise BadRequest("the teams connector cannot reply as a bot.")
            if decided is not None and card_id:
                try:
                    aid = await conn.update_card(service_url, conv, card_id, decided)
                except MusubiError as exc:  # fall back to the threaded confirmation (docs/integrations.md)
                    await integ._audit(tenant, "engine", "integration.notify", f"teams:bot:{conv[:200]}", "error",
                                       {"event": "card_update", "id": card_id[:200], **error_info(exc, SYSTEM)})
                else:
                    await integ._audit(tenant, "engine", "integration.notify", f"teams:bot:{conv[:200]}",
                                       "success", {"event": "card_update", "id": aid[:200]})
                    return
            aid = await conn.reply(service_url, conv, card_id or str(activity.get("id") or "") or None, text)
        except MusubiError as exc:
            await integ._audit(tenant, "engine", "integration.notify", resource, "error",
                               {"event": "bot_reply", **error_info(exc, SYSTEM)})
            return
        finally:
            await conn.close()
        await integ._audit(tenant, "engine", "integration.notify", f"teams:bot:{conv[:200]}", "success",
                           {"event": "bot_reply", "id": aid})


def decided_card(run_id: str, gate: str, sha: str, outcome: str, user: str, at: datetime) -> Message:
    """The card that replaces a decided approval card: the decision, who made it and when, no buttons."""
    when = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    facts: tuple[tuple[str, str], ...] = (("Run", run_id), ("Gate", gate), ("Decision", outcome), ("By", user),
                                          ("At", when))
    if sha:
        facts += (("Content sha256", sha[:12]),)
    return Message(f"Gate {gate} of run {run_id}: {outcome}", f"{outcome.capitalize()} by {user} at {when}.",
                   facts, severity=_SEVERITY.get(outcome.replace(" ", "_"), "info"))


def activity_key(activity: dict[str, Any]) -> str | None:
    """What names one activity in the replay guard: channel, conversation and activity id; None without an id."""
    aid, conv = activity.get("id"), activity.get("conversation")
    conv_id = conv.get("id") if isinstance(conv, dict) else None
    if not isinstance(aid, str) or not aid or len(aid) > MAX_ID:
        return None
    conv_id = conv_id if isinstance(conv_id, str) and len(conv_id) <= MAX_ID else ""
    return json.dumps([str(activity.get("channelId") or "")[:100], conv_id, aid])  # unambiguous: ids may hold ":"


def replay_ts(exp: object, window_s: int, now: float | None = None) -> int:
    """The time to claim an activity at, so that its replay-guard row (kept ``window_s`` past it) lives as long as
    its token is accepted: until ``exp`` plus the skew, never more than :data:`MAX_KEEP_S` from ``now``."""
    longest = int(time.time() if now is None else now) + MAX_KEEP_S
    try:
        until = min(int(float(str(exp))), longest)  # PyJWT took it as a number: an int, a float or their text
    except (ValueError, OverflowError):
        until = longest  # cannot be: keep it the longest, never the shortest
    return until + botauth.SKEW_S - window_s
