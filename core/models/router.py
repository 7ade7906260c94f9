"""The router: the cheapest allowed model of at least the task's tier whose context fits.

Rules are data (``[routing]`` in registry.toml, overridable in config.toml): task
kind -> minimum tier and the capabilities it needs, excluded providers and models,
how many fallbacks to list.  Every model is either a candidate or rejected with a
reason, so the choice can be explained; candidates are ordered by the expected
cost of *this* request (its input plus the expected output), then by tier, then by
id.  A retired model is never a candidate; legacy and deprecated models are used
only when no active (or preview) model fits, and the explanation says so.  The
fallback chain prefers other providers first, so one provider's outage does not
take out every alternative, and never lists the same underlying model twice
(gpt-5.4 and azure/gpt-5.4 are one model).

Input counts are given in o200k_base tokens (what ``musubi cost`` counts exactly);
for models whose tokenizer is estimated, the fit check uses the top of that
family's band and the cost uses its expected ratio.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from core.errors import MusubiError
from core.models.history import OutputEstimate, RatioStats, expected_output
from core.models.pricing import micros_to_usd, request_cost, to_micros
from core.models.registry import PROVIDERS, TIERS, ModelSpec, Registry, check_task
from core.models.tokens import CALIBRATION, ENCODINGS, chat_overhead


class NoRoute(MusubiError):
    """No allowed model satisfies the task's tier and context needs."""

    code = "no_route"
    http_status = 422
    exit_code = 1


@dataclass
class Candidate:
    model: ModelSpec
    input_tokens: int  # in the model's own tokens (expected)
    input_high: int
    output: OutputEstimate
    cost_micros: int
    reason: str | None = None  # why it was rejected; None = eligible
    status: str = "active"

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model": self.model.id, "provider": self.model.provider, "tier": self.model.tier, "status": self.status,
            "input_tokens": self.input_tokens, "input_tokens_high": self.input_high,
            "output_tokens": self.output.expected, "cost_micros": self.cost_micros,
            "cost_usd": micros_to_usd(self.cost_micros),
        }
        if self.reason:
            d["rejected"] = self.reason
        return d


@dataclass
class RouteDecision:
    task: str
    tier: str
    input_tokens: int
    choice: Candidate
    fallbacks: list[Candidate]
    rejected: list[Candidate] = field(default_factory=list)
    considered: int = 0
    extra_eligible: int = 0
    needs: tuple[str, ...] = ()
    fallback_to_old: bool = False  # no active model fitted: a legacy/deprecated one was picked

    def explanation(self) -> list[str]:
        c = self.choice
        need = f" and {', '.join(self.needs)}" if self.needs else ""
        lines = [
            f"task '{self.task}' needs tier '{self.tier}' or higher{need} (routing rules).",
            f"{self.considered} models considered, {len(self.rejected)} rejected, "
            f"{1 + len(self.fallbacks) + self.extra_eligible} eligible.",
            f"chose {c.model.id} ({c.model.provider}, tier {c.model.tier}): the cheapest eligible model for "
            f"{c.input_tokens:,} input + ~{c.output.expected:,} output tokens at ${micros_to_usd(c.cost_micros)}; "
            f"its context window of {c.model.context_window:,} fits.",
        ]
        if self.fallback_to_old:
            note = f"{c.model.id} is {c.status}" + (f"; its replacement {c.model.replacement} does not fit or is not allowed"
                                                   if c.model.replacement else "")
            lines.append(f"no active model fits, so a {c.status} one was picked: {note}.")
        if self.fallbacks:
            lines.append("fallbacks, other providers first, each a different model: " + ", ".join(
                f"{f.model.id} (${micros_to_usd(f.cost_micros)})" for f in self.fallbacks))
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "task": self.task, "tier": self.tier, "needs": list(self.needs), "input_tokens": self.input_tokens,
            "picked_non_active": self.fallback_to_old,
            "choice": self.choice.as_json(), "fallbacks": [f.as_json() for f in self.fallbacks],
            "rejected": [r.as_json() for r in self.rejected], "explanation": self.explanation(),
        }


def in_model_tokens(model: ModelSpec, o200k_tokens: int, kind: str = "code") -> tuple[int, int]:
    """(expected, high) size in ``model``'s tokens of a text that has ``o200k_tokens`` o200k tokens."""
    if model.tokenizer in ENCODINGS:
        return o200k_tokens, o200k_tokens
    exp, _lo, hi = CALIBRATION[model.tokenizer][kind]
    return round(o200k_tokens * exp), math.ceil(o200k_tokens * hi)


def route(
    registry: Registry,
    task: str,
    input_tokens: int,
    *,
    allowed: Collection[str] | None = None,
    history: Mapping[tuple[str, str], RatioStats] | None = None,
    kind: str = "code",
    today: date | None = None,
) -> RouteDecision:
    """Pick a model for one request of ``input_tokens`` (o200k_base) doing ``task``.

    ``allowed`` is the tenant's pinned set of model ids (None: every model); ``today``
    decides each model's lifecycle status (default: the local date).
    """
    task = check_task(task)
    if isinstance(input_tokens, bool) or not isinstance(input_tokens, int) or input_tokens < 0:
        raise MusubiError(f"input tokens must be a whole number >= 0 (got {input_tokens!r}).", code="bad_request")
    day = today or date.today()
    rules = registry.routing
    need = rules.tasks.get(task, "standard")
    need_rank = TIERS.index(need)
    needs = tuple(rules.needs.get(task, ()))
    if input_tokens > rules.long_context_above and "long_context" not in needs:
        needs = (*needs, "long_context")
    excluded = {registry.get(n).id for n in rules.exclude_models}
    eligible: list[Candidate] = []
    old: list[Candidate] = []  # legacy / deprecated: only when nothing else fits
    rejected: list[Candidate] = []
    for m in registry.all():
        exp_in, high_in = in_model_tokens(m, input_tokens, kind)
        exp_in += chat_overhead(2)
        high_in += chat_overhead(2)
        out = expected_output(registry, m.id, task, exp_in, m.max_output, history)
        cost = to_micros(request_cost(m, exp_in, 0, out.expected))
        c = Candidate(m, exp_in, high_in, out, cost, status=m.status_on(day))
        missing = [n for n in needs if n not in m.capabilities]
        if c.status == "retired":
            c.reason = (f"retired{' on ' + str(m.retires_on) if m.retires_on else ''}"
                        + (f"; replaced by {m.replacement}" if m.replacement else ""))
        elif allowed is not None and m.id not in allowed:
            c.reason = "not in the tenant's allowed models"
        elif m.provider in rules.exclude_providers:
            c.reason = f"provider {m.provider} excluded by routing rules (exclude_providers)"
        elif m.id in excluded:
            c.reason = "excluded by routing rules (exclude_models)"
        elif m.tier_rank < need_rank:
            c.reason = f"tier {m.tier} is below the needed {need}"
        elif high_in + out.high > m.context_window:
            c.reason = (f"context window {m.context_window:,} < {high_in:,} input + {out.high:,} output tokens "
                        "(upper estimate)")
        elif missing:
            what = "a code-completion model" if "chat" in missing else "it lacks " + ", ".join(missing)
            c.reason = f"not for '{task}': {what} (needs {', '.join(needs)})"
        if c.reason:
            rejected.append(c)
        elif c.status in ("legacy", "deprecated"):
            old.append(c)
        else:
            eligible.append(c)
    fallback_to_old = not eligible and bool(old)
    if fallback_to_old:
        eligible = old
    else:
        for c in old:
            c.reason = f"{c.status}{' (retires ' + str(c.model.retires_on) + ')' if c.model.retires_on else ''}: " \
                       "used only when no active model fits"
            rejected.append(c)
    if not eligible:
        raise NoRoute(
            f"no model can do '{task}' (tier {need} or higher) with {input_tokens:,} input tokens"
            + (" among the tenant's allowed models" if allowed is not None else "")
            + ". Split the input, allow a larger model (musubi models allowed set ...), or relax [routing] in config.toml.",
            rejected=[r.as_json() for r in rejected],
        )
    # Ties go to the vendor's own API before a re-seller (openai before azure), then by id.
    eligible.sort(key=lambda c: (c.cost_micros, c.model.tier_rank, PROVIDERS.index(c.model.provider), c.model.id))
    choice = eligible[0]
    # One entry per underlying model: azure/gpt-5.4 is no fallback for gpt-5.4.
    rest: list[Candidate] = []
    seen_models = {choice.model.underlying}
    for c in eligible[1:]:
        if c.model.underlying not in seen_models:
            rest.append(c)
            seen_models.add(c.model.underlying)
    fallbacks: list[Candidate] = []
    seen = {choice.model.provider}
    for c in rest:  # other providers first ...
        if len(fallbacks) < rules.fallbacks and c.model.provider not in seen:
            fallbacks.append(c)
            seen.add(c.model.provider)
    for c in rest:  # ... then the cheapest of the rest
        if len(fallbacks) < rules.fallbacks and c not in fallbacks:
            fallbacks.append(c)
    return RouteDecision(
        task, need, input_tokens, choice, fallbacks, rejected, considered=len(eligible) + len(rejected),
        extra_eligible=len(eligible) - 1 - len(fallbacks), needs=needs, fallback_to_old=fallback_to_old,
    )
