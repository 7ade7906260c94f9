"""The tenant switch that puts prompt and output text into the ``run.call`` audit events (docs/runs.md#audit).

Off by default: a run's audit events name the call (run, step, model, tokens, cost, latency,
outcome) but never what was said.  A holder of ``tenant.manage`` may turn it on for the tenant
(``PUT /v1/run-settings``, audited as ``run.settings``, before and after); from then on each
completed or failed call's audit event also carries ``prompt`` (the messages sent, ``role: text``)
and ``output`` (the answer so far), each cut to :data:`AUDIT_TEXT_MAX` characters and redacted
first: the configured provider keys, token shapes (``sk-...``, ``ghp_...``, JWTs, ``Bearer ...``)
and ``key = value`` pairs whose name says secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from core.audit import format_ts
from core.engine.access import Caller, suspended_read_check
from core.identity.redact import redact as redact_tokens
from core.storage.base import Insert, Update

if TYPE_CHECKING:
    from core.orchestration.contracts import ChatMessage
    from core.orchestration.service import RunService

AUDIT_TEXT_MAX = 32_000  # characters of prompt and of output per audit event
MASK = "[redacted]"
_SHAPES = re.compile(
    r"(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{8,}|xox[abposr]-[A-Za-z0-9\-]{8,}|glpat-[A-Za-z0-9_\-]{8,}"
    r"|gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,}|AKIA[0-9A-Z]{16})"
)
_NAMED = re.compile(r"(?i)\b([A-Za-z0-9_.-]*(?:api[_-]?key|secret|password|passwd|token)[A-Za-z0-9_.-]*)"
                    r"(\s*[:=]\s*[\"']?)([^\s\"',;]{4,})")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with the ``secrets`` given, token shapes and ``name = value`` secrets masked."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SHAPES.sub(MASK, text)
    text = _NAMED.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return redact_tokens(text)


def prompt_text(messages: Sequence[ChatMessage]) -> str:
    return "\n\n".join(f"{m.role}: {m.content}" for m in messages)


def _provider_keys(svc: RunService) -> list[str | None]:
    pset = svc.hub.current if svc.hub is not None else None
    return [s.settings.api_key for s in pset.slots] if pset is not None else []


def text_details(svc: RunService, tenant: str, prompt: Sequence[ChatMessage] | None,
                 output: str | None) -> dict[str, Any]:
    """The audit fields the switch adds (nothing while it is off)."""
    if not enabled(svc, tenant):
        return {}
    keys = _provider_keys(svc)
    out: dict[str, Any] = {}
    for name, text in (("prompt", prompt_text(prompt) if prompt is not None else None), ("output", output)):
        if text is not None:
            clean = redact(text, keys)
            out[name] = clean[:AUDIT_TEXT_MAX]
            if len(clean) > AUDIT_TEXT_MAX:
                out[f"{name}_truncated_chars"] = len(clean) - AUDIT_TEXT_MAX
    return out


def enabled(svc: RunService, tenant: str) -> bool:
    row = svc.settings.get(tenant)
    return bool(row and row["audit_text"])


def show(svc: RunService, ctx: Caller) -> dict[str, Any]:
    """``GET /v1/run-settings``: any member of the tenant may read them."""
    suspended_read_check(svc.r.state, ctx)
    row = svc.settings.get(ctx.tenant)
    return {"tenant": ctx.tenant, "audit_text": bool(row and row["audit_text"]),
            "updated_at": format_ts(row["updated_at"]) if row else None,
            "updated_by": row["updated_by"] if row else None}


def set_(svc: RunService, ctx: Caller, audit_text: bool) -> dict[str, Any]:
    """``PUT /v1/run-settings`` (``tenant.manage``): the change is audited with the value before and after."""
    svc.r.require(ctx, "tenant.manage")
    before = enabled(svc, ctx.tenant)
    now = svc.r.now()
    row = {"tenant_id": ctx.tenant, "audit_text": audit_text, "updated_at": now, "updated_by": ctx.user}
    if ctx.tenant in svc.settings:
        svc.r.write(Update("run_settings", {k: v for k, v in row.items() if k != "tenant_id"},
                           {"tenant_id": ctx.tenant}))
    else:
        svc.r.write(Insert("run_settings", row))
    svc.settings[ctx.tenant] = row
    svc.r.audit(ctx.tenant, ctx, "run.settings", f"tenant:{ctx.tenant}",
                details={"audit_text": audit_text, "was": before})
    return show(svc, ctx)
