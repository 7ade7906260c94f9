"""Test hook ``MUSUBI_TEST_RUNS=1`` (a test hook, not a feature; docs/runs.md#test-hook).

Under it the engine's run service uses, instead of real providers:

- **workflows** from ``$MUSUBI_HOME/test-workflows.json`` (``{"name": {"steps": [...], "agents": {...},
  "budget": {...}, "agent_budgets": {...}}}``, steps as :class:`StepSpec` fields);
- when ``$MUSUBI_HOME/test-provider.json`` exists, a **scripted provider** for every model, driven by it:
  ``{"delay_s": 0.01, "replies": {"<step path>": ["first", "second", ...]}, "hang": ["<path>"],
  "stall": ["<path>"] (its text streamed, then no end),
  "fail": {"<path>": "upstream"}, "usage": [in, out], "die": ["<path>" or "<path>:<label>"]}`` (read at
  each call).  Every request it answers is appended to ``$MUSUBI_HOME/test-provider.log`` (one JSON line:
  key, model, usage) *before* the answer is returned, like a vendor that has billed — so a test can count
  sends across kill -9.  A request named in ``die`` is logged (``"died": true``) and then the engine
  SIGKILLs itself at once, before the event loop turns again: a kill -9 after the request left and
  before its ``sent`` row's group commit could be written (docs/runs.md#charge-once);
- three patterns for tests: ``test.loop`` (the same agent ``n`` times), ``test.fanout``
  (preflight, then each agent once as a child), ``test.gate`` (an agent's output as a diff artefact
  behind an approval gate).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from core.config import env
from core.orchestration.catalog import Budget, RunPlan
from core.orchestration.contracts import (
    PATTERNS,
    AgentSpec,
    Artefact,
    ChatMessage,
    ChatRequest,
    Finished,
    ProviderCheck,
    ProviderError,
    ProviderSettings,
    StepContext,
    StepResult,
    StepSpec,
    StreamEvent,
    TextDelta,
    Usage,
)

HOOK = "MUSUBI_TEST_RUNS"


def enabled() -> bool:
    return env(HOOK) == "1"


def scripted(home: Path) -> bool:
    """Under the hook, with a provider script in the home: the scripted provider replaces real ones."""
    return enabled() and (home / "test-provider.json").exists()


def _read(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return {}


def _step(raw: dict[str, Any]) -> StepSpec:
    return StepSpec(id=raw["id"], type=raw.get("type", "agent"), agents=tuple(raw.get("agents", ())),
                    options=dict(raw.get("options", {})), children=tuple(_step(c) for c in raw.get("children", ())))


def plan(home: Path, name: str) -> RunPlan | None:
    wf = _read(home / "test-workflows.json").get(name)
    if wf is None:
        return None
    register_patterns()
    agents = {n: AgentSpec(name=n, role=a.get("role", n), system_prompt=a.get("system_prompt", f"You are {n}."),
                           task_kind=a.get("task_kind", "summarise"), artefact=a.get("artefact", "text"))
              for n, a in wf.get("agents", {}).items()}

    def budget(b: dict[str, Any]) -> Budget:
        return Budget(b.get("tokens"), b.get("cost_micros"), b.get("turns"))

    return RunPlan(name, tuple(_step(s) for s in wf["steps"]), agents, budget(wf.get("budget", {})),
                   {k: budget(v) for k, v in wf.get("agent_budgets", {}).items()}, wf.get("on_error", "stop"))


class ScriptedProvider:
    """A provider answering from the script, logging each answered request (see the module doc)."""

    is_replay = False

    def __init__(self, home: Path) -> None:
        self.home = home
        self.settings = ProviderSettings(name="scripted-test", kind="scripted-test")
        self._sent: dict[str, int] = {}

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        script = _read(self.home / "test-provider.json")
        run, path, label, _attempt = request.idempotency_key.rsplit(":", 3)
        n = self._sent.get(f"{run}:{path}", 0)
        self._sent[f"{run}:{path}"] = n + 1
        ins, outs = script.get("usage", [100, 20])
        if path in script.get("die", []) or f"{path}:{label}" in script.get("die", []):
            self._bill(request, ins, outs, died=True)
            os.kill(os.getpid(), signal.SIGKILL)
        await asyncio.sleep(float(script.get("delay_s", 0.0)))
        if path in script.get("hang", []):
            await asyncio.sleep(3600)
        if path in script.get("fail", {}):
            raise ProviderError(script["fail"][path], "scripted failure", provider="scripted-test", status=500)
        replies = script.get("replies", {}).get(path)
        text = replies[min(n, len(replies) - 1)] if replies else f"reply {path}/{label} #{n + 1}"
        # Billed now, as a vendor does once it has answered: logged before the answer reaches the engine.
        self._bill(request, ins, outs)
        for i in range(0, len(text), 16):
            yield TextDelta(text[i:i + 16])
        if path in script.get("stall", []):  # streamed, then no end: a call still running
            await asyncio.sleep(3600)
        yield Finished(Usage(int(ins), int(outs)), "stop", request_id=f"req-{request.idempotency_key}")

    def _bill(self, request: ChatRequest, ins: int, outs: int, *, died: bool = False) -> None:
        line = json.dumps({"key": request.idempotency_key, "model": request.model, "input_tokens": ins,
                           "output_tokens": outs, **({"died": True} if died else {})})
        fd = os.open(self.home / "test-provider.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)

    async def check(self) -> ProviderCheck:
        return ProviderCheck(True, "scripted")

    async def aclose(self) -> None:
        return None


class ScriptedProviders:
    """``for_model`` for the run service: the scripted provider serves every model."""

    def __init__(self, home: Path) -> None:
        self.provider = ScriptedProvider(home)

    def for_model(self, model_id: str) -> tuple[ScriptedProvider, str]:
        return self.provider, model_id


# -- patterns for tests ----------------------------------------------------------------------------


def _msgs(ctx: StepContext, text: str) -> Sequence[ChatMessage]:
    return [ChatMessage("system", "test"), ChatMessage("user", f"{ctx.feature}\n\n{text}")]


async def loop(step: StepSpec, text: str, ctx: StepContext) -> StepResult:
    out = text
    for i in range(int(step.options.get("n", 3))):
        out = (await ctx.call(step.agents[0], _msgs(ctx, out), label=f"turn{i + 1}")).text
    return StepResult(out)


async def fanout(step: StepSpec, text: str, ctx: StepContext) -> StepResult:
    await ctx.preflight(step.agents)
    kids = [ctx.child(f"{i}", title=a) for i, a in enumerate(step.agents, 1)]
    replies = await asyncio.gather(*(k.call(a, _msgs(k, text), label="reply") for k, a in zip(kids, step.agents,
                                                                                                strict=True)))
    return StepResult("\n".join(r.text for r in replies))


async def gate(step: StepSpec, text: str, ctx: StepContext) -> StepResult:
    reply = await ctx.call(step.agents[0], _msgs(ctx, text), label="draft")
    art = Artefact("diff", f"{step.id}.diff", reply.text)
    timeout = step.options.get("timeout_s")
    decision = await ctx.approval(step.id, art, timeout_s=float(timeout) if timeout else None)
    if decision.decision != "approve":
        return StepResult(reply.text, status="rejected", reason=f"{decision.decision} by {decision.by}")
    return StepResult(reply.text, (art,))


def register_patterns() -> None:
    PATTERNS.setdefault("test.loop", loop)
    PATTERNS.setdefault("test.fanout", fanout)
    PATTERNS.setdefault("test.gate", gate)
