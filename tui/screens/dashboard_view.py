"""What the Dashboard says: pure functions from runs, steps and quotas to text (no widgets, testable alone).

Every state reads by a symbol and a word, never by colour alone (NO_COLOR, 16 colours); colours
are theme variables so 256- and 16-colour terminals get the theme's own choices.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from textual.content import Content

from tui.widgets.format import amount, bar, headroom, parse_ts, quota_level, quota_name

if TYPE_CHECKING:
    from datetime import datetime

    from rich.text import Text

RUN_STATES: dict[str, tuple[str, str]] = {
    "queued": ("○", "$text-muted"), "running": ("↻", "$accent"), "waiting": ("⚑", "$warning"),
    "stopped": ("■", "$warning"), "interrupted": ("↯", "$warning"), "done": ("✔", "$success"),
    "failed": ("✘", "$error"), "cancelled": ("⊘", "$text-muted"),
}
STEP_STATES: dict[str, tuple[str, str]] = {
    **RUN_STATES, "pending": ("○", "$text-muted"), "rejected": ("⊗", "$error"),
}
# Tree labels and table cells are rich Text (neither takes Content): ANSI colour names, kept at 16 colours.
TREE_STYLES = {"$accent": "cyan", "$warning": "yellow", "$success": "green", "$error": "red", "$text-muted": "dim"}
ENDED = frozenset({"done", "failed", "cancelled"})
RESUMABLE = frozenset({"stopped", "failed", "interrupted"})
RETRYABLE_STEPS = frozenset({"failed", "cancelled", "stopped", "interrupted"})  # POST /v1/runs/{id}/retry

NO_RUNS = (
    "No runs yet in this tenant. Start one from a shell:\n"
    '  musubi run WORKFLOW --feature "what to build"\n'
    "(musubi workflows list names them.) A run shows here live: steps, output, approval gates."
)
NO_PROVIDER = (
    "No model provider configured, so a run cannot call a model. Set one of, where the engine starts (or in "
    "config.toml [providers]): OpenAI: OPENAI_API_KEY (OPENAI_BASE_URL for another endpoint); Anthropic: "
    "ANTHROPIC_API_KEY; Azure OpenAI: AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY and OPENAI_API_VERSION; "
    "Ollama or another OpenAI-compatible server: OLLAMA_HOST. Then: musubi engine reload."
)


def provider_step(plist: Mapping[str, Any]) -> str | None:
    """From ``GET /v1/providers``: what to set when no real provider is ready (the engine's own hints), else None."""
    real = [p for p in plist.get("providers") or [] if not p.get("is_replay")]
    if any(p.get("status") == "ready" for p in real):
        return None
    parts = ["No model provider is ready in the engine, so a run cannot call a model."]
    if plist.get("config_error"):
        parts.append(f"{plist.get('config')}: {plist['config_error']}.")
    parts += [f"{p['name']} is configured but unavailable: {p.get('problem') or 'no reason given'}." for p in real]
    hints = plist.get("hints") or []
    if hints:
        parts.append("Set one: " + "; ".join(f"{h['provider']}: {h['hint']}" for h in hints) + ".")
    parts.append("Check with: musubi providers list")
    return " ".join(parts)


NO_ROUTE = "This engine has no runs API (/v1/runs): it is older than the workstation. Restart it: musubi engine stop."


def state_text(state: str, table: Mapping[str, tuple[str, str]] = RUN_STATES) -> Content:
    """``⚑ waiting`` in the state's colour: the symbol and the word carry it without colour."""
    sym, style = table.get(state, ("?", "$text"))
    return Content.styled(f"{sym} {state}", style)


def kilo(n: int | None) -> str:
    """``18.4k``, ``950``, ``1.2M``: token counts in a few characters."""
    if n is None:
        return "—"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k"
    return str(n)


def money(usd: str | None) -> str:
    """``$0.14`` (cents), ``$0.0123`` below ten cents, ``—`` for unknown."""
    if usd is None:
        return "—"
    try:
        v = float(usd)
    except ValueError:
        return f"${usd}"
    return f"${v:.4f}" if 0 < v < 0.1 else f"${v:,.2f}"


def duration(secs: float | None) -> str:
    """``45s``, ``2m05s``, ``1h20m``."""
    if secs is None:
        return "—"
    s = int(secs)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def millis(ms: float) -> str:
    """``640ms``, ``2.3s``: a latency in a few characters."""
    return f"{ms:.0f}ms" if ms < 1000 else f"{ms / 1000:.1f}s"


def against(used: str, limit: str) -> str:
    """``12.4k/40k``: an amount against its estimate or budget (just the amount without one)."""
    return used if limit == "—" else f"{used}/{limit}"


def quota_share(run: Mapping[str, Any], quotas: Iterable[Mapping[str, Any]]) -> str:
    """The share of the tenant's tightest tokens (else dollars) quota this run has used: ``18%``."""
    best: float | None = None
    for q in quotas:
        if q.get("user"):
            continue
        try:
            if q.get("metric") == "tokens":
                share = run["tokens"] / float(q["limit"])
            elif q.get("metric") == "cost_usd":
                share = float(run["cost_usd"]) / float(q["limit"])
            else:
                continue
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        best = share if best is None else max(best, share)
    return "—" if best is None else f"{best * 100:.0f}%"


RUN_COLUMNS = ("run", "workflow", "state", "elapsed", "tokens/est", "cost/est", "quota")
NARROW_COLUMNS = ("run", "state", "elapsed", "tokens/est", "cost/est", "quota")  # the steps' title names the workflow


def shown_state(run: Mapping[str, Any]) -> str:
    """The run's state word; a run with a pending gate is ``waiting`` whatever the last state event said."""
    return "waiting" if run.get("pending_gate") and run["state"] not in ENDED else str(run["state"])


def live(run: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """``run`` with its elapsed time up to ``now`` while it is under way (the engine's figure is as of its answer)."""
    started = parse_ts(run.get("started_at"))
    if run["state"] in ("queued", "running", "waiting") and started is not None and not run.get("finished_at"):
        return {**run, "elapsed_s": max(0.0, (now - started).total_seconds())}
    return dict(run)


def path_key(path: str) -> list[Any]:
    """Step paths in tree order: ``2/10`` after ``2/9``."""
    return [int(x) if x.isdigit() else x for x in path.split("/")]


def cents(usd: str | None) -> str:
    """``$0.14``: dollars to the cent, for the runs list."""
    try:
        return "—" if usd is None else f"${float(usd):,.2f}"
    except ValueError:
        return f"${usd}"


def run_row(run: Mapping[str, Any], quotas: Iterable[Mapping[str, Any]], wide: bool) -> tuple[Any, ...]:
    """The runs table's cells for one ``Run`` (rich Text for the state: DataTable measures it right)."""
    from rich.text import Text

    est = run.get("estimate") or {}
    sym, style = RUN_STATES.get(shown_state(run), ("?", ""))
    cells = (
        run["id"], run["workflow"], Text(f"{sym} {shown_state(run)}", style=TREE_STYLES.get(style, "")),
        duration(run.get("elapsed_s")), against(kilo(run["tokens"]), kilo(est.get("tokens"))),
        against(cents(run["cost_usd"]), cents(est.get("cost_usd"))), quota_share(run, quotas),
    )
    return cells if wide else cells[:1] + cells[2:]


def step_tokens(s: Mapping[str, Any]) -> int:
    return int(s["input_tokens"]) + int(s["output_tokens"])


def step_label(s: Mapping[str, Any], width: int) -> Text:
    """A tree label: state, title, and as many of tokens, cost and elapsed as ``width`` allows."""
    from rich.text import Text

    sym, style = STEP_STATES.get(s["status"], ("?", ""))
    head = Text.assemble((f"{sym} {s['status']}", TREE_STYLES.get(style, "")), " ", (s["title"], "bold"))
    extra = [kilo(step_tokens(s)) + " tok" if step_tokens(s) else "", money(s["cost_usd"]) if s.get("model") else "",
             duration(s.get("elapsed_s")) if s.get("elapsed_s") is not None else ""]
    tail = " · ".join(x for x in extra if x)
    if tail and len(head.plain) + 3 + len(tail) <= width:
        head.append(f"  {tail}", style="dim")
    return head


def step_detail(s: Mapping[str, Any]) -> str:
    """One line for the output pane's title: who, model, tokens against estimate, cost against budget, time."""
    parts = [s["path"], s.get("agent") or s["type"]]
    if s.get("model"):
        parts.append(s["model"])
    est = (s.get("estimate") or {}).get("tokens")
    parts.append(f"{against(kilo(step_tokens(s)), kilo(est))} tok")
    budget = (s.get("budget") or {}).get("cost_usd")
    parts.append(against(money(s["cost_usd"]), money(budget)) + (" budget" if budget else ""))
    parts.append(duration(s.get("elapsed_s")))
    if s.get("latency_ms") is not None:
        parts.append(f"last call {s['latency_ms']:.0f} ms")
    return " · ".join(parts)


def run_title(run: Mapping[str, Any]) -> str:
    """The steps panel's title: the run, its workflow and state word."""
    return f"Steps {run['id']} · {run['workflow']}"


def run_reason(run: Mapping[str, Any]) -> str | None:
    """Why a run stopped or failed, and what to do next."""
    if run["state"] not in ("stopped", "failed", "interrupted", "cancelled") or not run.get("reason"):
        return None
    tail = " Press u to resume." if run["state"] in RESUMABLE and run.get("stop_code") not in (
        "stuck", "rejected", "cancelled") else ""
    return f"{run['state']} ({run.get('stop_code') or 'no code'}): {run['reason']}.{tail}"


def quota_lines(quotas: list[Mapping[str, Any]], width: int) -> list[Content]:
    """One-line gauges for the small Quotas panel, in columns: name, bar, share left and word, and (with room)
    the amount used of the limit."""
    lefts = [f" {headroom(q)} {quota_level(q)[0]}" for q in quotas]
    useds = [f" {amount(str(q.get('metric')), q.get('used'))} / {amount(str(q.get('metric')), q.get('limit'))} used"
             for q in quotas]
    lw, uw = max(map(len, lefts)), max(map(len, useds))
    name_w = max(6, min(14, width - lw - 4))
    with_used = width - name_w - 1 - lw - uw >= 6
    out = []
    for q, left, used in zip(quotas, lefts, useds, strict=True):
        word, _ = quota_level(q)
        style = {"OK": "$success", "NEAR": "$warning", "FULL": "$error"}[word]
        tail = f"{left:>{lw}}" + (f"{used:<{uw}}" if with_used else "")
        bar_w = max(3, width - name_w - 1 - len(tail))
        name = f"{quota_name(q):<{name_w}.{name_w}} "
        out.append(Content.assemble(name, (bar(float(q.get("fraction_used") or 0.0), bar_w), style), tail))
    return out


def gate_header(ap: Mapping[str, Any]) -> str:
    """What the gate asks and the keys that answer it."""
    deadline = parse_ts(ap.get("deadline"))
    closes = f" closes {deadline:%m-%d %H:%M} UTC" if deadline else ""
    return f"⚑ {ap['gate']} (step {ap['step']}){closes}\na approve · r reject · c request changes"


def highlight(text: str, theme: str) -> Any:
    """``text`` as a highlighted unified diff (pygments; call it off the event loop); plain text if not a diff."""
    from rich.syntax import Syntax
    from rich.text import Text

    if not any(line.startswith(("--- ", "+++ ", "@@")) for line in text.splitlines()[:50]):
        return Text(text)
    out = Syntax(text, "diff", theme=theme, background_color="default", word_wrap=False).highlight(text)
    out.no_wrap = True  # long lines scroll sideways (a wrapped diff line reads like two)
    out.rstrip()
    return out


class Latencies:
    """p95 latency per model from the ``run.call`` events this Dashboard saw (the engine has no latency route)."""

    WINDOW = 200

    def __init__(self) -> None:
        self.samples: dict[str, deque[float]] = {}

    def add(self, model: str, ms: float) -> None:
        self.samples.setdefault(model, deque(maxlen=self.WINDOW)).append(float(ms))

    def p95(self) -> list[tuple[str, float, int]]:
        """(model, p95 ms by nearest rank, calls) for each model seen, slowest first."""
        out = []
        for model, xs in self.samples.items():
            s = sorted(xs)
            out.append((model, s[max(1, math.ceil(0.95 * len(s))) - 1], len(s)))
        return sorted(out, key=lambda r: -r[1])


# -- a step's stream, spliced from the output route's answer and run.output events (by offset) -------


def take(end: int | None, offset: int | None, more: str) -> tuple[str, int]:
    """What of ``more`` (streamed from ``offset``) is new after the ``end`` characters already shown, and the new end.

    Overlap is dropped; a gap (events lost) is shown as is — the next read of the output route mends it.
    Without an offset (an older engine) the text is simply appended."""
    if offset is None:
        return more, (end or 0) + len(more)
    if end is None or offset >= end:
        return more, offset + len(more)
    if offset + len(more) <= end:
        return "", end
    return more[end - offset:], offset + len(more)


def merge_answer(shown: str, end: int | None, text: str, answer_end: int) -> str:
    """The output route's live tail (``text``, ending at ``answer_end``) with what events brought since."""
    if not shown or end is None or end <= answer_end:
        return text
    return text + shown[-(end - answer_end):]


# -- events that arrived while a run's details were read, replayed onto the answer -------------------------------

HELD_KINDS = ("run.state", "run.step", "run.gate")  # what the details answer carries (output joins by offset)


def gate_order(ap: Mapping[str, Any]) -> tuple[str, bool]:
    """A gate's place in its own history: asked again means a newer ``asked_at``; an answer follows the ask."""
    return str(ap["asked_at"]), ap["state"] != "pending"


def newer(run: Mapping[str, Any], than: Mapping[str, Any]) -> bool:
    """Whether ``run`` (a summary) was saved after ``than`` (of the same run)."""
    return str(run["updated_at"]) > str(than["updated_at"])


def stale(ev: Mapping[str, Any], version: str | None, shown: Mapping[str, Any]) -> bool:
    """Whether a held ``run.*`` event is older than the details answer ``shown`` (replaying it would go back).

    ``version`` is the ``updated_at`` of the run's last ``run.state`` event when ``ev`` came: the engine
    publishes a save's ``run.state`` and then its ``run.step`` events, so it dates both (None: unknown, replay).
    A gate is dated by its own ask and answer: a time-out or a decision does not save the run.  An event as new
    as the answer is replayed: it carries the same values, so replaying is idempotent."""
    if ev["type"] == "run.gate":
        ap = ev["approval"]
        had = next((a for a in shown["approvals"] if a["gate"] == ap["gate"]), None)
        return had is not None and gate_order(had) > gate_order(ap)
    return version is not None and version < str(shown["updated_at"])


def latency_lines(rows: Iterable[Mapping[str, Any]], most: int = 2) -> list[str]:
    """``p95 1.9s gpt-5.4`` per provider and model, slowest first (the figure first: a narrow panel cuts names)."""
    ranked = sorted(rows, key=lambda r: -float(r["p95_ms"]))
    return [f"p95 {millis(float(r['p95_ms']))} {r['model']}" for r in ranked[:most]]


def latency_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """Every provider and model of the tenant: p50, p95 and calls, one line each (a notification's body)."""
    lines = [f"{r['provider']} {r['model']}: p50 {millis(float(r['p50_ms']))} · p95 {millis(float(r['p95_ms']))} "
             f"· {int(r['count']):,} calls" for r in sorted(rows, key=lambda r: -float(r["p95_ms"]))]
    return "\n".join(lines) or "No model calls in this tenant since the engine started."
