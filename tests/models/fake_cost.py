"""Answers of the model and cost routes for the TUI's fake engine (tests/tui/fakes.py).

Computed with the real pure code (registry, estimate) on fixed texts, so the Cost
screen's snapshots show real numbers and never change from run to run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from core.errors import NotFound
from core.models.estimate import Document, estimate, load_workflows, single_step, workflow
from core.models.registry import load_registry
from core.quotas import usd_to_micros

SPEC = (
    "# Checkout service\n\nAs a shopper I want to pay with a saved card so that checkout takes one click.\n"
    "WHEN the card is expired THE SYSTEM SHALL ask for a new one.\n" * 12
)
CODE = "def total(items):\n    return sum(i.price * i.qty for i in items)\n\n" * 40
TODAY = date(2026, 12, 6)  # fixed, so lifecycle statuses (and the snapshots) do not move with the calendar
FILES = {"/src/webshop/spec.md": SPEC, "/src/webshop/checkout.py": CODE}


def _quotas(status: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for q in status.get("quotas", []):
        cost = q["metric"] == "cost_usd"
        limit = usd_to_micros(q["limit"]) if cost else int(q["limit"])
        used = usd_to_micros(q["used"]) if cost else int(q["used"])
        out.append({**q, "limit": limit, "remaining": max(limit - used, 0)})
    return out


def answer(method: str, path: str, body: dict[str, Any] | None, quota_status: dict[str, Any]) -> Any:
    reg = load_registry()
    if method == "GET" and path == "/v1/models":
        return {"tenant": "acme", "models": [{**m.as_json(TODAY), "allowed": True} for m in reg.all()], "allowed": None,
                "config": "/tmp/musubi-snap-home/config.toml", "today": TODAY.isoformat()}
    if method == "GET" and path == "/v1/cost/workflows":
        return {"workflows": [{"name": w.name, "description": w.description, "steps": [s.task for s in w.steps]}
                              for w in load_workflows().values()]}
    if method == "POST" and path == "/v1/cost/estimate":
        b = body or {}
        models = [reg.get(n) for n in b.get("models", [])]
        docs = [Document(p, FILES.get(p, SPEC)) for p in b.get("paths", [])] or [Document("/src/webshop/spec.md", SPEC)]
        steps = (
            list(workflow(b["workflow"]).steps)
            if b.get("workflow")
            else single_step(b.get("task") or "implementation")
        )
        out = estimate(reg, models, docs, steps, quotas=_quotas(quota_status), today=TODAY)
        out.update({"tenant": "acme", "user": "alice", "workflow": b.get("workflow"), "task": b.get("task"),
                    "skipped": [], "history_samples": 0})
        return out
    raise NotFound(f"fake engine has no route {method} {path}")
