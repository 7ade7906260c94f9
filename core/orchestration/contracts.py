"""The shapes the orchestration parts agree on.

Three parts meet here, built separately:

* **providers** (``connectors/llm/...``, found through the ``musubi.providers`` entry-point
  group): a :class:`ChatProvider` streams one chat turn and reports the usage the API
  reported.  The provider retries only what failed before any answer came (connection
  errors, 429, 5xx, honouring Retry-After); a failure after the first streamed byte is
  raised as a :class:`ProviderError` and the run decides (a new *attempt*).
* **patterns** (``core/orchestration/patterns/``): one async function per step type
  (sequential, parallel, handoff, triage, approval, group chat, nested, auto), written only
  against :class:`StepContext`, so they are pure control flow and testable with a scripted
  context.
* **runs** (the engine's run service): implements :class:`StepContext` — every model call is
  durable (recorded with its usage under an idempotency key, replayed, never re-sent or
  re-billed, on resume), checked against RBAC, budgets, quotas and turn caps before dispatch,
  charged, audited and timed.

Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

PROVIDER_ENTRY_POINTS = "musubi.providers"
"""Entry-point group: name = provider kind (``openai``, ``anthropic``, ...), value = a
:data:`ProviderFactory`."""

Role = Literal["system", "user", "assistant"]


# -- providers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ChatRequest:
    """One chat turn to send.  ``model`` is the provider's own model id."""

    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    idempotency_key: str  # "<run>:<step path>:<call label>:<attempt>" — sent where the API takes one
    temperature: float | None = None
    timeout_s: float = 120.0  # whole call, first byte to last


@dataclass(frozen=True)
class Usage:
    """Tokens as the provider reported them (never our estimate)."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Finished:
    usage: Usage
    stop_reason: str  # the provider's word: "stop", "length", "end_turn", "max_tokens", ...
    request_id: str | None = None  # the vendor's request id, for support


StreamEvent = TextDelta | Finished

ProviderErrorKind = Literal[
    "auth", "rate_limited", "upstream", "timeout", "bad_request", "connection", "malformed", "cancelled",
]


class ProviderError(Exception):
    """A provider call that failed.  ``str(err)`` never contains a key or a prompt."""

    def __init__(
        self, kind: ProviderErrorKind, message: str, *, provider: str, status: int | None = None,
        retry_after_s: float | None = None, request_id: str | None = None, answered: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.provider = provider
        self.status = status
        self.retry_after_s = retry_after_s
        self.request_id = request_id
        self.answered = answered  # True when the failure came after streamed output (may be billed)


@dataclass(frozen=True)
class ProviderSettings:
    """One configured provider, from the config file or the conventional variables."""

    name: str  # the user's name for it ("openai", "work-azure", "local-ollama")
    kind: str  # entry-point name: "openai" | "azure-openai" | "anthropic" | "openai-compatible" | "replay"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never logged, audited or shown
    api_version: str | None = None
    models: tuple[str, ...] = ()  # registry model ids this provider serves (empty: by the registry's provider field)
    source: str = "config"  # where it came from: "config", "env:OPENAI_API_KEY", ...
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderCheck:
    ok: bool
    detail: str  # the vendor's own error text on failure (redacted), or the model that answered
    latency_ms: float | None = None


@runtime_checkable
class ChatProvider(Protocol):
    """A configured provider.  One pooled HTTP session per instance; ``aclose`` ends it."""

    settings: ProviderSettings
    is_replay: bool  # the replay provider says so everywhere it appears; never chosen silently

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one turn: ``TextDelta``s then exactly one ``Finished`` (or raise ProviderError).

        Cancelling the consuming task really stops the request (the connection is closed).
        """
        ...

    async def check(self) -> ProviderCheck:
        """One tiny call to see that the settings work."""
        ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[[ProviderSettings], ChatProvider]


# -- agents and steps -----------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSpec:
    """An agent as data (``agents.toml`` or a project/user file)."""

    name: str
    role: str
    system_prompt: str  # a template: {feature}, {input}, {context} ...
    task_kind: str  # core/models/kinds.py task kind: drives the router and the estimator
    tier: str | None = None  # preferred router tier
    # what it produces: "text" | "requirements" | "design" | "tasks" | "diff" | "review" | "tests"
    artefact: str = "text"
    context_pack: bool = False  # gets a code-knowledge context pack
    context_budget: int | None = None  # tokens for that pack


@dataclass(frozen=True)
class StepSpec:
    """One step of a workflow: ``type`` names the pattern, ``options`` its validated settings."""

    id: str
    # "agent" | "sequential" | "parallel" | "handoff" | "triage" | "approval" | "group_chat" | "nested" | "auto"
    type: str
    agents: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[StepSpec, ...] = ()


@dataclass(frozen=True)
class AgentReply:
    agent: str
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int
    replayed: bool = False  # answered from the record of an earlier attempt (not sent, not billed)


@dataclass(frozen=True)
class Artefact:
    kind: str  # AgentSpec.artefact
    name: str
    content: str


@dataclass(frozen=True)
class StepResult:
    output: str
    artefacts: tuple[Artefact, ...] = ()
    status: Literal["done", "failed", "rejected", "stopped"] = "done"
    reason: str | None = None


Decision = Literal["approve", "reject", "request_changes"]


@dataclass(frozen=True)
class ApprovalDecision:
    decision: Decision
    by: str
    comment: str = ""


class RunStop(Exception):
    """Stops the run cleanly at this step, state kept (quota hit, budget, turn cap, stuck, cancel).

    ``resumable`` says whether ``musubi runs resume`` may continue it later.
    """

    def __init__(self, reason: str, *, code: str, resumable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code  # "quota" | "budget" | "turn_cap" | "stuck" | "cancelled" | "gate_timeout" | "rejected"
        self.resumable = resumable


class StepContext(Protocol):
    """What a pattern sees.  Implemented by the run service (durable) and by test scripts."""

    run_id: str
    path: str  # this step's path in the run's step tree, e.g. "2" or "2/1/3"
    feature: str  # the user's --feature text

    def agent(self, name: str) -> AgentSpec: ...

    def agents(self) -> Sequence[AgentSpec]:
        """Every agent the workflow may use (for triage/auto scoring)."""
        ...

    async def call(self, agent: str, messages: Sequence[ChatMessage], *, label: str) -> AgentReply:
        """One durable model call.  The same ``label`` in the same step path answers from the
        record after a resume (``replayed=True``).  Raises :class:`RunStop` for budget, quota,
        turn cap, stuck output or cancellation."""
        ...

    async def preflight(self, agents: Sequence[str]) -> None:
        """Declare calls about to run at once (a parallel fan-out, a chat round): raises
        :class:`RunStop` (code ``budget``) before any starts if their estimated cost would pass
        the run's or an agent's budget."""
        ...

    def child(self, label: str, *, title: str) -> StepContext:
        """A sub-step shown under this one (a parallel branch, a nested delegation, a chat round)."""
        ...

    async def approval(self, gate: str, artefact: Artefact, *, timeout_s: float | None) -> ApprovalDecision:
        """Wait for a human decision; durable across restarts; a timeout raises RunStop(code="gate_timeout")."""
        ...

    def note(self, text: str) -> None:
        """A progress line for the event stream and the run log."""
        ...


Pattern = Callable[[StepSpec, str, StepContext], Awaitable[StepResult]]
"""``pattern(step, input_text, ctx)`` runs one step whose input is the previous step's output."""

PATTERNS: dict[str, Pattern] = {}
"""Step type → pattern; filled by ``core.orchestration.patterns``."""
