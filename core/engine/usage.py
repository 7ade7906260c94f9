"""Quota limits and usage: record, reserve → settle → release, expiry, alerts.

Admission is exact because every check-and-charge runs on the event loop
thread against in-memory counters, with no await in between; the charge is
answered only after its ledger row commits.

Worst-case overshoot (docs/quotas.md): a hard limit is never exceeded by
``usage record`` or ``reserve``.  ``settle`` records what a call really used, so
a window can exceed its limit by at most the sum, over reservations settled in
it, of max(0, actual − reserved) per metric.  An expired reservation cannot be
settled (404), so late usage goes through ``usage record`` and its admission.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from core import limits, names
from core.api.models import DEFAULT_TTL_S
from core.audit import format_ts
from core.engine.access import Caller
from core.engine.runner import ENGINE_ACTOR, OpRunner
from core.engine.usage_price import Cost, cost_of
from core.errors import BadRequest, NotFound, PermissionDenied, QuotaExceeded
from core.models.pricing import hold_cost, usage_cost
from core.models.registry import check_task
from core.quotas import (
    Charge,
    Quota,
    Reservation,
    check_metric,
    check_period,
    micros_to_usd,
    parse_alerts,
    parse_limit,
    window_end,
)
from core.storage.base import Delete, Insert, Update

if TYPE_CHECKING:
    from core.models.registry import ModelSpec, Registry

MAX_TTL_S = limits.TTL_S.hi


def _unit(metric: str, v: int) -> int | str:
    """Amounts in audit details: counts as integers, cost_usd as an exact dollar string."""
    return micros_to_usd(v) if metric == "cost_usd" else v


def _fmt_amount(metric: str, v: int) -> str:
    return f"${micros_to_usd(v)}" if metric == "cost_usd" else f"{v:,} {metric}"


class UsageService:
    """Quota definitions, status, charges and reservations (``engine.usage``)."""

    def __init__(self, runner: OpRunner) -> None:
        self.r = runner
        # A tenant's model registry, to price usage posted without a cost; handed over by the model
        # routes (routes_models.py) when the app is built.
        self.registry: Callable[[str], Registry] | None = None

    # -- limits ---------------------------------------------------------------------------

    def put_quota(
        self, tenant: str, metric: str, period: str, limit: int, user: str | None, alerts: tuple[float, ...], actor: Caller | str
    ) -> Quota:
        """Set (or replace) ``tenant``'s limit of ``metric`` per ``period`` (for ``user``, or everyone); audited."""
        now = self.r.now()
        by = actor.user if isinstance(actor, Caller) else actor
        existing = next(
            (q for q in self.r.state.quotas[tenant].values() if q.metric == metric and q.period == period and q.user == user),
            None,
        )
        if existing:
            prev = existing.limit
            existing.limit, existing.alerts = limit, alerts
            self.r.write(Update("quotas", {"limit_value": limit, "alerts": list(alerts), "updated_at": now, "updated_by": by}, {"quota_id": existing.id}))
            details: dict[str, Any]
            q, details = existing, {"previous_limit": _unit(metric, prev)}
        else:
            q = Quota(self.r.state.next_quota_id, tenant, metric, period, limit, user, alerts)
            self.r.state.next_quota_id += 1
            self.r.state.quotas[tenant][q.id] = q
            self.r.write(Insert("quotas", {"quota_id": q.id, "tenant_id": tenant, "metric": metric, "period": period, "user_name": user or "", "limit_value": limit, "alerts": list(alerts), "updated_at": now, "updated_by": by}))
            details = {}
        details.update({"metric": metric, "period": period, "limit": _unit(metric, limit), "scope": q.scope, "alerts": list(alerts)})
        if user:
            details["user"] = user
        details["quota_id"] = q.id
        self.r.audit(tenant, actor, "quota.set", q.resource, details=details)
        return q

    def quota_set(
        self, ctx: Caller, metric: str, limit: object, period: str, user: str | None = None, alerts: object = None
    ) -> dict[str, Any]:
        metric = check_metric(metric)
        period = check_period(period)
        lim = parse_limit(metric, limit)
        al = parse_alerts(alerts)
        if user:
            names.user_name(user)
        self.r.require(ctx, "quotas.manage")
        q = self.put_quota(ctx.tenant, metric, period, lim, user or None, al, ctx)
        return self._quota_json(q, self.r.now())

    def quota_remove(self, ctx: Caller, metric: str, period: str, user: str | None = None) -> dict[str, Any]:
        metric = check_metric(metric)
        period = check_period(period)
        if user:
            names.user_name(user)
        q = next(
            (q for q in self.r.state.quotas.get(ctx.tenant, {}).values() if q.metric == metric and q.period == period and q.user == (user or None)),
            None,
        )
        if q is None:
            who = f" for user {user}" if user else ""
            raise NotFound(f"no {metric} per {period} quota{who} in tenant {ctx.tenant!r}. See: musubi quota status")
        self.r.require(ctx, "quotas.manage")
        del self.r.state.quotas[ctx.tenant][q.id]
        self.r.write(Delete("quotas", {"quota_id": q.id}))
        self.r.audit(ctx.tenant, ctx, "quota.remove", q.resource, details={"quota_id": q.id, "metric": metric, "period": period, "scope": q.scope, **({"user": user} if user else {})})
        return {"removed": True, "quota_id": q.id, "metric": metric, "period": period, "user": user or None}

    def _quota_json(self, q: Quota, now: datetime) -> dict[str, Any]:
        used, reserved, ws = self.r.state.usage_for(q, now)
        remaining = max(q.limit - used - reserved, 0)
        cost = q.metric == "cost_usd"
        conv = micros_to_usd if cost else (lambda v: v)
        return {
            "id": q.id,
            "metric": q.metric,
            "period": q.period,
            "scope": q.scope,
            "user": q.user,
            "limit": conv(q.limit),
            "used": conv(used),
            "reserved": conv(reserved),
            "remaining": conv(remaining),
            "fraction_used": round((used + reserved) / q.limit, 6) if q.limit else (1.0 if used + reserved else 0.0),
            "window_start": format_ts(ws),
            "resets_at": format_ts(window_end(q.period, ws)),
            "alerts": list(q.alerts),
        }

    def quota_status(self, ctx: Caller, user: str | None = None) -> dict[str, Any]:
        # Headroom applies to the caller's requests in their project too; others' limits need tenant scope.
        self.r.require(ctx, "quotas.read", project=ctx.project, read=True)
        manage = "quotas.manage" in self.r.perms(ctx)
        now = self.r.now()
        out = []
        for q in sorted(self.r.state.quotas.get(ctx.tenant, {}).values(), key=lambda q: (q.user or "", q.metric, q.period)):
            if q.user and q.user != ctx.user and not manage:
                continue  # other users' limits are the managers' business
            if user and q.user not in (None, user):
                continue
            out.append(self._quota_json(q, now))
        tightest = min(out, key=lambda d: -d["fraction_used"], default=None)
        return {"tenant": ctx.tenant, "user": ctx.user, "quotas": out, "tightest": tightest}

    # -- admission ------------------------------------------------------------------------

    def _admit(self, ctx: Caller, charge: Charge, what: str) -> None:
        """Refuse unless every applicable limit still holds after ``charge``.

        A charge adding 0 of a metric is still refused while that metric's limit is used up
        (used + reserved >= limit): otherwise a reservation of 0 could be settled above the
        limit, and a record of 0 would be admitted into a window that allows nothing more.
        """
        now = self.r.now()
        for q in self.r.state.applicable_quotas(ctx.tenant, ctx.user):
            add = charge.get(q.metric)
            used, reserved, ws = self.r.state.usage_for(q, now)
            if add and used + reserved + add <= q.limit:
                continue
            if not add and used + reserved < q.limit:
                continue
            resets = format_ts(window_end(q.period, ws))
            if add:
                head = f"quota exceeded: {what} of {_fmt_amount(q.metric, add)} would exceed the limit of {q.describe()}"
            else:
                head = (f"quota exceeded: the limit of {q.describe()} is used up, so {what} is refused even though it "
                        f"adds no {q.metric}")
            raise QuotaExceeded(
                f"{head} (used {_fmt_amount(q.metric, used)}, reserved {_fmt_amount(q.metric, reserved)}). "
                f"Nothing was charged. The window resets at {resets}; an admin can raise it with: "
                f"musubi quota set {q.metric} N --per {q.period}" + (f" --user {q.user}" if q.user else ""),
                quota={
                    "id": q.id, "metric": q.metric, "period": q.period, "scope": q.scope, "user": q.user,
                    "limit": _unit(q.metric, q.limit), "used": _unit(q.metric, used),
                    "reserved": _unit(q.metric, reserved), "requested": _unit(q.metric, add), "resets_at": resets,
                },
            )

    def _check_settle_bound(self, ctx: Caller, res: Reservation, charge: Charge) -> None:
        """Refuse a settle that charges more than SETTLE_FACTOR × reserved of a limited metric.

        Only metrics on which a limit applies to the holder are bounded: the bound exists so a
        window can never pass twice its limit (docs/quotas.md#worst-case-overshoot).
        """
        limited = {q.metric for q in self.r.state.applicable_quotas(ctx.tenant, res.user)}
        for m in ("tokens", "requests", "cost_usd"):
            most = limits.SETTLE_FACTOR * res.amount.get(m)
            if m not in limited or charge.get(m) <= most:
                continue
            raise QuotaExceeded(
                f"settle refused: {_fmt_amount(m, charge.get(m))} is more than {limits.SETTLE_FACTOR}x the "
                f"{_fmt_amount(m, res.amount.get(m))} reserved by {res.id}, the most a settle may charge while a "
                f"{m} limit applies (at most {_fmt_amount(m, most)}). Nothing was charged and the reservation is "
                f"still open: settle at most that and charge the rest with musubi usage record (checked against "
                f"the limits), or release it and record the whole usage. Reserve enough next time "
                f"(--tokens, --requests, --cost-usd).",
                code="settle_over_reservation",
                reservation={"id": res.id, "metric": m, "reserved": _unit(m, res.amount.get(m)),
                             "requested": _unit(m, charge.get(m)), "most": _unit(m, most)},
            )

    def _charge(self, ctx: Caller, charge: Charge, model: str | None, input_tokens: int, output_tokens: int, source: str, rid: str | None, task_kind: str | None = None, run: tuple[str, str] | None = None) -> dict[str, Any]:
        now = self.r.now()
        eid = self.r.state.next_ledger_id
        self.r.state.next_ledger_id += 1
        self.r.state.add_usage(ctx.tenant, ctx.user, charge, now)
        self.r.write(
            Insert(
                "usage_ledger",
                {
                    "tenant_id": ctx.tenant, "entry_id": eid, "ts": now, "user_name": ctx.user, "project": ctx.project,
                    "model": model, "input_tokens": input_tokens, "output_tokens": output_tokens, "tokens": charge.tokens,
                    "requests": charge.requests, "cost_micros": charge.cost_usd, "source": source, "reservation_id": rid,
                    "task_kind": task_kind,  # migration 002: the cost estimator learns output/input per task kind
                    # migration 006: a run's calls name their run and step (every row has both keys: bulk insert)
                    "run_id": run[0] if run else None, "step_path": run[1] if run else None,
                },
            )
        )
        self._check_alerts(ctx.tenant, ctx.user, now)
        return {"entry_id": eid, "ts": format_ts(now)}

    def _check_alerts(self, tenant: str, user: str, now: datetime) -> None:
        for q in self.r.state.applicable_quotas(tenant, user):
            if not q.alerts:
                continue
            used, _res, ws = self.r.state.usage_for(q, now)
            for thr in q.alerts:
                key = (q.id, ws, thr)
                if key in self.r.state.alerts_sent or used <= 0 or used < thr * q.limit:
                    continue
                self.r.state.alerts_sent.add(key)
                self.r.write(Insert("quota_alerts", {"quota_id": q.id, "window_start": ws, "threshold": thr, "ts": now}))
                details = {
                    "metric": q.metric, "period": q.period, "scope": q.scope, "user": q.user,
                    "limit": _unit(q.metric, q.limit), "used": _unit(q.metric, used), "threshold": thr,
                    "window_start": format_ts(ws),
                }
                self.r.audit(tenant, ENGINE_ACTOR, "quota.alert", q.resource, details={"quota_id": q.id, **details})
                payload = {"type": "quota.alert", "tenant": tenant, "quota_id": q.id, **details}
                self.r.committer.on_commit(partial(self.r.bus.publish, tenant, payload))

    def _cost(
        self, verb: str, tenant: str, holder: str, given: int | None, model: str | None,
        price: Callable[[ModelSpec], int],
    ) -> Cost:
        """The cost to charge or hold: ``given``, else the registry's price (core/engine/usage_price.py)."""
        reg = self.registry
        return cost_of(verb, given, model, (lambda: reg(tenant)) if reg else None, holder,
                       self.r.state.applicable_quotas(tenant, holder), price)

    # Values arrive typed and within core/limits.py's ranges: the request models
    # (core/api/models.py) check them at the HTTP boundary; cost is in micro-dollars, None when
    # left out (then priced from the registry: docs/quotas.md#pricing).

    def usage_record(
        self, ctx: Caller, model: str, input_tokens: int = 0, output_tokens: int = 0, requests: int = 1,
        cost_micros: int | None = None, task_kind: object = None,
    ) -> dict[str, Any]:
        """Charge usage made outside the workstation; refused whole when over a hard limit."""
        i, o = input_tokens, output_tokens
        task = check_task(task_kind) if task_kind is not None else None
        self.r.require(ctx, "usage.record", project=ctx.project)
        cost = self._cost("record", ctx.tenant, ctx.user, cost_micros, model,
                          lambda spec: usage_cost(spec, i, o, requests))
        charge = Charge(i + o, requests, cost.micros)
        self._admit(ctx, charge, "recording")
        entry = self._charge(ctx, charge, model, i, o, "record", None, task)
        details = {**charge.as_json(), "input_tokens": i, "output_tokens": o, "entry_id": entry["entry_id"],
                   **({"project": ctx.project} if ctx.project else {}), **({"task_kind": task} if task else {}),
                   "cost_source": cost.source}
        self.r.audit(ctx.tenant, ctx, "usage.record", f"model:{model}", details=details)
        return {"recorded": True, "tenant": ctx.tenant, "user": ctx.user, "model": model, **charge.as_json(), **entry,
                **cost.answer()}

    def usage_reserve(
        self, ctx: Caller, tokens: int = 0, requests: int = 1, cost_micros: int | None = None,
        ttl_s: int = DEFAULT_TTL_S, model: str | None = None,
    ) -> dict[str, Any]:
        """Hold an estimate against the limits before an LLM call (without a cost: ``model``'s price of it)."""
        self.r.require(ctx, "usage.record", project=ctx.project)
        cost = self._cost("reserve", ctx.tenant, ctx.user, cost_micros, model,
                          lambda spec: hold_cost(spec, tokens, requests))
        charge, ttl = Charge(tokens, requests, cost.micros), ttl_s
        self._admit(ctx, charge, "reserving")
        now = self.r.now()
        rid = "rsv_" + secrets.token_hex(12)
        res = Reservation(rid, ctx.tenant, ctx.user, charge, now, now + timedelta(seconds=ttl), ctx.project)
        self.r.state.add_reservation(res)
        self.r.write(Insert("reservations", {"reservation_id": rid, "tenant_id": ctx.tenant, "user_name": ctx.user, "project": ctx.project, "tokens": charge.tokens, "requests": charge.requests, "cost_micros": charge.cost_usd, "created_at": now, "expires_at": res.expires_at, "state": "open"}))
        details = {**charge.as_json(), "ttl_s": ttl, **({"model": model} if model else {}), "cost_source": cost.source}
        self.r.audit(ctx.tenant, ctx, "usage.reserve", f"reservation:{rid}", details=details)
        return {"reservation_id": rid, **charge.as_json(), "expires_at": format_ts(res.expires_at), **cost.answer()}

    def _own_reservation(self, ctx: Caller, rid: str) -> Reservation:
        if not isinstance(rid, str) or not rid.startswith("rsv_"):
            raise BadRequest(f"{rid!r} is not a reservation id (they look like rsv_…).", field="reservation_id")
        res = self.r.state.reservations.get(rid)
        if res is None or res.tenant_id != ctx.tenant:
            raise NotFound(f"no open reservation {rid} in tenant {ctx.tenant!r}: it was settled, released, expired, or never existed.")
        if res.user != ctx.user:
            self.r.require(ctx, "quotas.manage")
        return res

    def usage_settle(
        self, ctx: Caller, rid: str, input_tokens: int = 0, output_tokens: int = 0, requests: int = 1,
        cost_micros: int | None = None, model: str | None = None, task_kind: object = None,
    ) -> dict[str, Any]:
        """Record what the reserved call really used and close the reservation."""
        i, o = input_tokens, output_tokens
        task = check_task(task_kind) if task_kind is not None else None
        res = self._own_reservation(ctx, rid)
        self.r.require(ctx, "usage.record", project=res.project)
        cost = self._cost("settle", ctx.tenant, res.user, cost_micros, model,
                          lambda spec: usage_cost(spec, i, o, requests))
        charge = Charge(i + o, requests, cost.micros)
        self._check_settle_bound(ctx, res, charge)
        self.r.state.drop_reservation(rid)
        now = self.r.now()
        self.r.write(Update("reservations", {"state": "settled", "closed_at": now}, {"reservation_id": rid}))
        owner = Caller(ctx.real_user, res.user, ctx.tenant, res.project)
        entry = self._charge(owner, charge, model, i, o, "settle", rid, task)
        over = {m: charge.get(m) - res.amount.get(m) for m in ("tokens", "requests", "cost_usd") if charge.get(m) > res.amount.get(m)}
        details = {**charge.as_json(), "reserved": res.amount.as_json(), "overshoot": over,
                   "entry_id": entry["entry_id"], "cost_source": cost.source}
        self.r.audit(ctx.tenant, ctx, "usage.settle", f"reservation:{rid}", details=details)
        return {"reservation_id": rid, "settled": True, **charge.as_json(), "reserved": details["reserved"],
                "overshoot": over, **entry, **cost.answer()}

    def usage_release(self, ctx: Caller, rid: str) -> dict[str, Any]:
        res = self._own_reservation(ctx, rid)
        self.r.require(ctx, "usage.record", project=res.project)
        self.r.state.drop_reservation(rid)
        self.r.write(Update("reservations", {"state": "released", "closed_at": self.r.now()}, {"reservation_id": rid}))
        self.r.audit(ctx.tenant, ctx, "usage.release", f"reservation:{rid}", details=res.amount.as_json())
        return {"reservation_id": rid, "released": True}

    def reservation_list(self, ctx: Caller) -> list[dict[str, Any]]:
        self.r.require(ctx, "quotas.read", read=True)
        manage = "quotas.manage" in self.r.perms(ctx)
        return [
            {"reservation_id": r.id, "user": r.user, **r.amount.as_json(), "created_at": format_ts(r.created_at), "expires_at": format_ts(r.expires_at)}
            for r in sorted(self.r.state.reservations.values(), key=lambda r: r.created_at)
            if r.tenant_id == ctx.tenant and (manage or r.user == ctx.user)
        ]

    def expire_reservations(self) -> int:
        """Release reservations whose holder crashed (past ``expires_at``). Runs every second."""
        now = self.r.now()
        expired = [r for r in self.r.state.reservations.values() if r.expires_at <= now]
        for r in expired:
            self.r.state.drop_reservation(r.id)
            self.r.write(Update("reservations", {"state": "expired", "closed_at": now}, {"reservation_id": r.id}))
            self.r.audit(r.tenant_id, ENGINE_ACTOR, "usage.expire", f"reservation:{r.id}", details={**r.amount.as_json(), "user": r.user})
        self.r.state.forget_old_windows(now)
        return len(expired)

    async def usage_history(self, ctx: Caller, bucket: str = "hour", since_hours: int = 24, user: str | None = None) -> dict[str, Any]:
        """Usage per time bucket from the ledger (needs 'quotas.read'; others' usage needs 'quotas.manage')."""
        if bucket not in ("minute", "hour", "day", "month"):
            raise BadRequest(f"unknown bucket {bucket!r}: use minute, hour, day or month.", field="bucket")

        def check() -> None:
            self.r.require(ctx, "quotas.read", read=True)
            if user and user != ctx.user and "quotas.manage" not in self.r.perms(ctx):
                raise PermissionDenied(
                    f"permission denied: {ctx.user} may see only their own usage (needs 'quotas.manage').",
                    permission="quotas.manage",
                )

        await self.r.run(ctx, "usage.history", "usage", check)
        since = self.r.now() - timedelta(hours=since_hours)
        rows = await self.r.read(self.r.storage.usage_history, ctx.tenant, since, bucket, user)
        return {"tenant": ctx.tenant, "bucket": bucket, "rows": rows}
