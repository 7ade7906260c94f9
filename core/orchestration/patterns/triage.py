"""``triage``: classify the input into an SDD stage, then run the child step routed to it.

``method = "keyword"`` counts each stage's keywords (the built-in ones plus the step's
``keywords``) in the input; the confidence is the winning stage's share of all hits, and a
tie at the top is never confident (confidence 0).  ``method = "llm"`` asks the step's agent
for one line of JSON ``{"stage": ..., "confidence": ...}``; an answer that cannot be read
counts as confidence 0.  At or above ``threshold`` the stage's route runs; below it (or for
a stage with no route) the ``fallback`` child runs, or, with no fallback, the step stops
saying why — it never guesses.
"""

from __future__ import annotations

import json
import re

from core.orchestration.contracts import StepContext, StepResult, StepSpec
from core.orchestration.patterns._common import STAGE_KEYWORDS, call_agent, hits, run_child, words
from core.orchestration.steps import SDD_STAGES


def keyword_scores(text: str, extra: dict[str, list[str]]) -> dict[str, int]:
    """Keyword hits per stage in ``text``."""
    w = words(text)
    return {s: hits(w, (*STAGE_KEYWORDS[s], *extra.get(s, ()))) for s in SDD_STAGES}


def by_keyword(text: str, extra: dict[str, list[str]]) -> tuple[str | None, float, str]:
    """(stage, confidence, why) from keyword hits."""
    scores = keyword_scores(text, extra)
    total = sum(scores.values())
    if not total:
        return None, 0.0, "no stage keyword in the input"
    ranked = sorted(SDD_STAGES, key=lambda s: -scores[s])
    best, second = ranked[0], ranked[1]
    shown = ", ".join(f"{s} {scores[s]}" for s in ranked if scores[s])
    if scores[best] == scores[second]:
        return best, 0.0, f"a tie between {best} and {second} (hits: {shown})"
    return best, round(scores[best] / total, 3), f"keyword hits: {shown}"


def parse_verdict(text: str) -> tuple[str | None, float, str]:
    """(stage, confidence, why) from the classifier's JSON line; confidence 0 when unreadable."""
    m = re.search(r"\{.*\}", text, re.DOTALL)
    try:
        data = json.loads(m.group(0)) if m else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return None, 0.0, "the classifier's answer is not the JSON asked for"
    stage = str(data.get("stage", "")).strip().lower()
    conf = data.get("confidence")
    if stage not in SDD_STAGES:
        return None, 0.0, f"the classifier named an unknown stage {stage!r}"
    if isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 <= conf <= 1:
        return stage, 0.0, f"the classifier gave no confidence from 0 to 1 (got {conf!r})"
    return stage, float(conf), str(data.get("reason", "")) or "the classifier's verdict"


async def run(step: StepSpec, input_text: str, ctx: StepContext) -> StepResult:
    """Classify, then run the routed (or fallback) child; see the module docstring."""
    o = step.options
    threshold = float(o.get("threshold", 0.5))
    if o.get("method") == "llm":
        reply = await call_agent(ctx, step.agents[0], input_text, label="classify")
        stage, conf, why = parse_verdict(reply.text)
    else:
        stage, conf, why = by_keyword(input_text, o.get("keywords", {}))
    routes = o["routes"]
    children = {c.id: c for c in step.children}
    ctx.note(f"triage: {stage or 'no stage'} at confidence {conf:.2f} ({why})")
    if stage is not None and conf >= threshold and stage in routes:
        return await run_child(children[routes[stage]], input_text, ctx)
    if stage is not None and conf >= threshold:
        problem = f"stage {stage!r} has no route in this step"
    else:
        problem = f"confidence {conf:.2f} for {stage or 'any stage'} is below the threshold {threshold:.2f} ({why})"
    fallback = o.get("fallback")
    if fallback:
        ctx.note(f"triage: {problem}; running the fallback {fallback}")
        return await run_child(children[fallback], input_text, ctx)
    return StepResult(input_text, status="stopped", reason=(
        f"triage could not route the request: {problem}. Rephrase it with the stage you want "
        "(requirements, design, tasks, implementation, review, test), or set fallback on the step"))
