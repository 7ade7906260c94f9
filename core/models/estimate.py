"""The pre-run cost estimate: tokens, cost range, context fit and quota headroom per model.

An estimate prices a run before it starts.  A run is a list of steps (one agent
call each: a task kind and its prompt template); every step sends the prompt,
the chosen files and the retrieval budget, and produces output whose size comes
from the tenant's ledger history or, until there is enough of it, the per-task
defaults.  For each model the result gives input, cached input and output tokens,
the cost as low / expected / high integer micro-dollars, whether each step fits
the context window (and how many chunks it needs if not), and what the run
would leave of each quota.

Bounds: *low* takes the bottom of the token band, cache hits on repeated context
and the short-answer output; *expected* the middle of the band, cache hits and
the median output; *high* the top of the band, no cache hits and the p90 output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from core.errors import BadRequest, NotFound
from core.models.history import RatioStats, expected_output
from core.models.pricing import micros_to_usd, request_cost, to_micros
from core.models.registry import ModelSpec, Registry, check_task
from core.models.tokens import (
    ENCODINGS,
    TokenCount,
    chat_overhead,
    content_kind,
    count_exact,
    count_tokens,
)

BOUNDS = ("low", "expected", "high")

# The message layout every priced request assumes -- and the one orchestration must send
# (:func:`messages`): providers cache by prefix, so what the steps of a run share (a fixed
# preamble and the files) comes first, and each step's own instructions come after it.
SHARED_PREAMBLE = ("You are one step of a Musubi workflow. The material for the whole run comes first; "
                   "your instructions for this step follow it.")
LAYOUT = ("prompt layout: a fixed preamble, then the files (the shared prefix), then each step's instructions; "
          "chunks of a split step each repeat the instructions.")
CACHE_ASSUMPTION = ("cache: steps 2+ read the shared prefix from the provider's prompt cache at the cached price "
                    "(OpenAI and Gemini cache prefixes automatically; Anthropic needs cache_control and bills cache "
                    "writes at 1.25x, not priced here); the high bound assumes no cache hits.")
Counter = Callable[["Document", str], int]


@dataclass
class Document:
    """One input the user chose: a file (``name`` is its path) or pasted text."""

    name: str
    text: str
    size: int = 0


@dataclass(frozen=True)
class Step:
    task: str
    prompt: str


@dataclass(frozen=True)
class Workflow:
    name: str
    description: str
    steps: tuple[Step, ...]


def load_workflows(*, project_root: str | None = None, user_dir: str | None = None) -> dict[str, Workflow]:
    """Every workflow the caller sees, as the calls a run makes (``core.orchestration.spec``).

    The shipped ``workflows.toml``, then the user's and the project's files; each step of
    the answer is one planned call (its agent's task kind and instructions), so what is
    priced is exactly what runs.
    """
    from core.orchestration.spec import (  # lazy: pydantic, only when a workflow is named
        load_catalog,
        plan,
    )

    cat = load_catalog(project_root=project_root, user_dir=user_dir)
    return {name: Workflow(name, w.description, tuple(Step(c.task, c.prompt) for c in plan(w, cat.agents)))
            for name, w in cat.workflows.items()}


def workflow(name: str, *, project_root: str | None = None, user_dir: str | None = None) -> Workflow:
    """The workflow ``name`` as priced steps (NotFound naming the known workflows)."""
    wfs = load_workflows(project_root=project_root, user_dir=user_dir)
    if name not in wfs:
        raise NotFound(f"unknown workflow {name!r}: known workflows are {', '.join(sorted(wfs))} "
                       "(see: musubi cost workflows).", code="unknown_workflow")
    return wfs[name]


def single_step(task: str) -> list[Step]:
    """A one-call run of ``task`` with no prompt template (just the files)."""
    return [Step(check_task(task), "")]


def messages(step: Step, material: str) -> list[dict[str, str]]:
    """The chat messages of one step in the layout the estimate prices (shared prefix first)."""
    out = [{"role": "system", "content": SHARED_PREAMBLE}, {"role": "user", "content": material}]
    if step.prompt:
        out.append({"role": "user", "content": step.prompt})
    return out


def _default_counter(doc: Document, enc: str) -> int:
    return count_exact(doc.text, enc)


# -- per document -------------------------------------------------------------------------


def document_counts(doc: Document, families: Sequence[str], counter: Counter = _default_counter) -> dict[str, TokenCount]:
    """Token counts of ``doc`` per tokenizer family (exact encodings counted once each)."""
    o200k = counter(doc, "o200k_base")
    out = {}
    for fam in families:
        if fam in out:
            continue
        if fam in ENCODINGS and fam != "o200k_base":
            n = counter(doc, fam)
            out[fam] = TokenCount(n, n, n, True, f"exact: {fam}", content_kind(doc.text, doc.name))
        else:
            out[fam] = count_tokens(doc.text, fam, doc.name, o200k=o200k)
    return out


# -- per model ------------------------------------------------------------------------------


def _quota_view(quotas: Sequence[Mapping[str, Any]], need: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """Headroom of each quota after the run (expected and high) and whether it would trip."""
    out = []
    for q in quotas:
        metric = q["metric"]
        n = need[metric]
        remaining = int(q["remaining"])
        limit = int(q["limit"])
        after = {b: remaining - n[b] for b in ("expected", "high")}
        out.append({
            "id": q.get("id"), "metric": metric, "period": q["period"], "scope": q.get("scope"), "user": q.get("user"),
            "limit": limit, "remaining_now": remaining, "needed": {b: n[b] for b in BOUNDS},
            "remaining_after": after,
            "headroom_after": {b: (round(after[b] / limit, 4) if limit else 0.0) for b in after},
            "trips": {b: n[b] > remaining for b in ("expected", "high")},
        })
    return out


def _step_cost(
    registry: Registry,
    model: ModelSpec,
    step: Step,
    fixed: Mapping[str, int],
    over: int,
    ctx_b: Mapping[str, int],
    chunks: int,
    cached_ok: bool,
    history: Mapping[tuple[str, str], RatioStats] | None,
) -> tuple[dict[str, Decimal], dict[str, dict[str, int]]]:
    """Cost and token totals of one step sent as ``chunks`` requests (each with the step's template)."""
    cost = dict.fromkeys(BOUNDS, Decimal(0))
    tot = {k: dict.fromkeys(BOUNDS, 0) for k in ("input", "cached_input", "output")}
    for b in BOUNDS:
        per_ctx = math.ceil(ctx_b[b] / chunks)
        prompt_in = fixed[b] + over + per_ctx
        out = expected_output(registry, model.id, step.task, prompt_in, model.max_output, history)
        out_n = {"low": out.low, "expected": out.expected, "high": out.high}[b]
        # The shared preamble and the files are the prompt's prefix (see LAYOUT), so a later step
        # of one run reads them from the provider's prompt cache -- never at the 'high' bound.
        cached = (per_ctx + fixed["shared"]) if (cached_ok and chunks == 1 and b != "high") else 0
        cost[b] += chunks * request_cost(model, prompt_in - cached, cached, out_n)
        tot["input"][b] = chunks * prompt_in
        tot["cached_input"][b] = chunks * cached
        tot["output"][b] = chunks * out_n
    return cost, tot


def _no_fit(model: ModelSpec, reason: str) -> dict[str, Any]:
    """The row of a model that cannot take the run at all (kept in a comparison, priced at nothing)."""
    zero = dict.fromkeys(BOUNDS, 0)
    return {
        "model": model.id, "provider": model.provider, "tier": model.tier, "tokenizer": model.tokenizer,
        "exact_tokens": model.exact_tokens, "context_window": model.context_window, "max_output": model.max_output,
        "input_tokens": zero, "cached_input_tokens": dict(zero), "output_tokens": dict(zero), "requests": 0,
        "cost_micros": dict(zero), "cost_usd": {b: micros_to_usd(0) for b in BOUNDS}, "fits": False,
        "does_not_fit": reason, "max_chunks": 0, "steps": [], "quotas": [], "trips": [], "trips_high": [],
        "prices_checked": model.prices_checked.isoformat(),
    }


def estimate_model(
    registry: Registry,
    model: ModelSpec,
    docs: Sequence[Document],
    counts: Sequence[Mapping[str, TokenCount]],
    steps: Sequence[Step],
    *,
    history: Mapping[tuple[str, str], RatioStats] | None = None,
    retrieval_tokens: int = 0,
    cache: bool = True,
    quotas: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The estimate of running ``steps`` over ``docs`` on ``model`` (``counts`` from :func:`document_counts`).

    A model whose window cannot hold a step's prompt plus its output is not an error: its
    row says ``does_not_fit`` so a comparison keeps the other models.
    """
    fam = model.tokenizer
    ctx = TokenCount(0, 0, 0, True, f"exact: {fam}") if not counts else sum(
        (c[fam] for c in counts[1:]), counts[0][fam])
    ctx_b = {"low": ctx.low + retrieval_tokens, "expected": ctx.tokens + retrieval_tokens, "high": ctx.high + retrieval_tokens}
    cacheable = cache and model.cached_input_per_mtok < model.input_per_mtok
    shared = count_tokens(SHARED_PREAMBLE, fam, None)
    totals = {k: dict.fromkeys(BOUNDS, 0) for k in ("input", "cached_input", "output")}
    cost = dict.fromkeys(BOUNDS, Decimal(0))
    requests = 0
    step_out: list[dict[str, Any]] = []
    all_fit = True
    lc = model.long_context
    for i, step in enumerate(steps):
        tmpl = count_tokens(step.prompt, fam, None) if step.prompt else TokenCount(0, 0, 0, True, "")
        fixed = {"low": tmpl.low + shared.low, "expected": tmpl.tokens + shared.tokens, "high": tmpl.high + shared.high,
                 "shared": shared.tokens}
        over = chat_overhead(3 if step.prompt else 2)
        d = registry.output_default(step.task)
        reserve = min(model.max_output, d.cap)
        room = model.context_window - fixed["high"] - over - reserve
        if room <= 0:
            return _no_fit(model, f"its context window ({model.context_window:,}) cannot hold even the "
                                  f"'{step.task}' prompt plus its output")
        single_in_high = fixed["high"] + over + ctx_b["high"]
        out_single = expected_output(registry, model.id, step.task, single_in_high, model.max_output, history)
        fits = single_in_high + out_single.high <= model.context_window
        chunks = 1 if fits else max(1, math.ceil(ctx_b["high"] / room))
        cached_ok = cacheable and i > 0
        s_cost, s_tot = _step_cost(registry, model, step, fixed, over, ctx_b, chunks, cached_ok, history)
        chunking = None
        if not fits and lc is not None and lc.threshold - fixed["high"] - over > 0:
            # Chunks filled to the window all pay the long-context premium; chunks kept below the
            # threshold pay the base rate.  Take whichever is cheaper at the expected figure.
            lc_chunks = max(chunks, math.ceil(ctx_b["high"] / (lc.threshold - fixed["high"] - over)))
            if lc_chunks != chunks:
                c2, t2 = _step_cost(registry, model, step, fixed, over, ctx_b, lc_chunks, cached_ok, history)
                if c2["expected"] < s_cost["expected"]:
                    chunking = (f"{lc_chunks} chunks kept below the {lc.threshold:,}-token long-context threshold "
                                f"(cheaper than {chunks} full-window chunks at the premium rate)")
                    chunks, s_cost, s_tot = lc_chunks, c2, t2
        all_fit = all_fit and fits
        for b in BOUNDS:
            cost[b] += s_cost[b]
        for k in totals:
            for b in BOUNDS:
                totals[k][b] += s_tot[k][b]
        requests += chunks
        row = {
            "task": step.task, "prompt_tokens": tmpl.tokens, "fits": fits, "chunks": chunks, "requests": chunks,
            "input_tokens": s_tot["input"], "cached_input_tokens": s_tot["cached_input"],
            "output_tokens": s_tot["output"], "output_source": out_single.source, "output_samples": out_single.samples,
        }
        if chunking:
            row["chunking"] = chunking
        step_out.append(row)
    micros = {b: to_micros(cost[b], b) for b in BOUNDS}
    need = {
        "tokens": {b: totals["input"][b] + totals["output"][b] for b in BOUNDS},
        "requests": dict.fromkeys(BOUNDS, requests),
        "cost_usd": micros,
    }
    quota_rows = _quota_view(quotas, need)
    out: dict[str, Any] = {
        "model": model.id, "provider": model.provider, "tier": model.tier, "tokenizer": fam,
        "exact_tokens": model.exact_tokens, "context_window": model.context_window, "max_output": model.max_output,
        "input_tokens": totals["input"], "cached_input_tokens": totals["cached_input"], "output_tokens": totals["output"],
        "requests": requests, "cost_micros": micros, "cost_usd": {b: micros_to_usd(v) for b, v in micros.items()},
        "fits": all_fit, "max_chunks": max((s["chunks"] for s in step_out), default=1), "steps": step_out,
        "quotas": quota_rows,
        "trips": sorted({f"{q['metric']} per {q['period']} ({q['scope']})" for q in quota_rows if q["trips"]["expected"]}),
        "trips_high": sorted({f"{q['metric']} per {q['period']} ({q['scope']})" for q in quota_rows if q["trips"]["high"]}),
        "prices_checked": model.prices_checked.isoformat(),
    }
    notes = [s["chunking"] for s in step_out if "chunking" in s]
    if notes:
        out["chunking"] = notes[0]
    return out


def estimate(
    registry: Registry,
    models: Sequence[ModelSpec],
    docs: Sequence[Document],
    steps: Sequence[Step],
    *,
    counter: Counter = _default_counter,
    history: Mapping[tuple[str, str], RatioStats] | None = None,
    retrieval_tokens: int | Mapping[str, int] = 0,
    cache: bool = True,
    quotas: Sequence[Mapping[str, Any]] = (),
    today: date | None = None,
) -> dict[str, Any]:
    """Estimates for every model plus the per-file breakdown of token counts.

    ``retrieval_tokens``: one figure for every model, or per model id (an actual context pack,
    counted by each model's tokenizer); the answer's ``retrieval_tokens`` is then the largest.

    A retired model (on ``today``, default the local date) is refused with its replacement
    named; a legacy or deprecated one is estimated with a warning.
    """
    day = today or date.today()
    for m in models:
        m.check_usable(day)
    if not models:
        raise BadRequest("name at least one model, e.g. --model gpt-5.4 (see: musubi models list).", field="model")
    if not steps:
        raise BadRequest("nothing to estimate: give a workflow or a task kind.", field="workflow")
    per_id = dict(retrieval_tokens) if isinstance(retrieval_tokens, Mapping) else {m.id: retrieval_tokens for m in models}
    if any(v < 0 for v in per_id.values()):
        raise BadRequest("retrieval_tokens must be >= 0.", field="retrieval_tokens")
    families = list(dict.fromkeys(m.tokenizer for m in models))
    counts = [document_counts(d, families, counter) for d in docs]
    files = []
    for d, c in zip(docs, counts, strict=True):
        files.append({"name": d.name, "bytes": d.size or len(d.text.encode("utf-8")),
                      "tokens": {fam: tc.as_json() for fam, tc in c.items()}})
    per_model = [
        estimate_model(registry, m, docs, counts, steps, history=history, retrieval_tokens=per_id.get(m.id, 0),
                       cache=cache, quotas=quotas)
        for m in models
    ]
    warnings = [n for n in (m.lifecycle_note(day) for m in models if m.status_on(day) != "active") if n]
    for row, m in zip(per_model, models, strict=True):
        note = m.lifecycle_note(day)
        row["status"] = m.status_on(day)
        if note and row["status"] != "active":
            row["lifecycle"] = note
    assumptions = [LAYOUT]
    if cache and len(steps) > 1:
        assumptions.append(CACHE_ASSUMPTION)
    return {
        "warnings": warnings,
        "assumptions": assumptions,
        "steps": [{"task": s.task, "prompt_chars": len(s.prompt)} for s in steps],
        "files": files,
        "totals": {"files": len(docs), "bytes": sum(f["bytes"] for f in files)},
        "retrieval_tokens": max(per_id.values(), default=0),
        "cache": cache,
        "models": per_model,
    }
