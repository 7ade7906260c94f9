"""Typed requests and responses of the engine API: the one place each field, default and range is defined.

Requests are msgspec ``Struct`` s, built once at the HTTP boundary
(``core/engine/routing.py``) from the strictly parsed body (or the query) plus
the path parameters; the operations then receive typed values.  Each model
declares its fields with their wire types and defaults, and in ``CHECKS`` the
check of each field that needs more than a type: the numeric ranges of
:mod:`core.limits` (which raise the typed 400 naming the field and its range,
docs/api.md#ranges), string lengths, true/false flags.  A field of the wrong
JSON type or a missing required one becomes a :class:`core.errors.BadRequest`
naming the field (:func:`parse`).  Unknown keys are ignored, as before.

Responses are ``TypedDict`` s: they cost the engine nothing at run time (the
operations build plain dicts, encoded by ``core/engine/jsontext.py``), give the
client and the TUI's fake one typed shape, and tests validate real engine
answers against them (tests/engine/test_api_models.py).

Why msgspec, measured (``benchmarks/bench_api_models.py``; µs per request: decode +
validate + encode with the engine's encoder, best of 5 on a shared 2-core machine;
import in a fresh interpreter)::

    request         hand-written  msgspec  pydantic v2
    usage record         8.3         8.8       9.4
    quota status         2.0         3.3       4.3
    audit list           0.1         1.5       3.6
    import (ms)                     35 *     121 **   (* this module; ** pydantic + 40 models)

Per request both cost a few µs next to the ~700 µs the engine spends on a usage
record.  The difference is start-up: pydantic builds every model at import,
which the CLI and the TUI (which keep pydantic off their first frame,
tui/config.py) could not afford if they import this module for typed answers;
with msgspec the whole module imports in ~35 ms.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypedDict, TypeVar

import msgspec

from core import limits, names
from core.errors import BadRequest

# -- field checks ------------------------------------------------------------------------------
# Each takes (value, field name) and returns the typed value or raises BadRequest naming the field.

Check = Callable[[Any, str], Any]


class RangeCheck:
    """A numeric field's check; ``range`` is what docs/api.md#ranges lists for it (tests/docs checks it)."""

    def __init__(self, r: limits.Range, fn: Callable[[object, str], int | None]) -> None:
        self.range, self._fn = r, fn

    def __call__(self, v: object, field: str) -> int | None:
        return self._fn(v, field)


def count(r: limits.Range, *, none_is: int | None = None) -> RangeCheck:
    """A whole number within ``r`` (:func:`core.limits.count`); ``null`` means ``none_is`` when given."""

    def check(v: object, field: str) -> int:
        return limits.count(none_is if v is None and none_is is not None else v, field, r)

    return RangeCheck(r, check)


def dollars(r: limits.Range, *, absent: int | None = 0) -> RangeCheck:
    """Dollars (number or text) as exact integer micro-dollars within ``r``; ``null`` or ``""`` is ``absent``."""

    def check(v: object, field: str) -> int | None:
        return absent if v is None or v == "" else limits.dollars(v, field, r)

    return RangeCheck(r, check)


def text(max_len: int, *, required: bool = False) -> Check:
    """A string of at most ``max_len`` characters (:func:`core.limits.text`), optional unless ``required``."""

    def check(v: object, field: str) -> str | None:
        return limits.text(v, field, max_len, required=required)

    return check


def flag(v: object, field: str) -> bool:
    """true or false, nothing else (no "yes", no 1)."""
    if not isinstance(v, bool):
        raise BadRequest(f"{field} must be true or false.", field=field)
    return v


def json_int(message: str, r: limits.Range) -> RangeCheck:
    """A JSON integer (not text: these fields come from programs, not the CLI's argv) within ``r``."""

    def check(v: object, field: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise BadRequest(message, field=field)
        return limits.count(v, field, r)

    return RangeCheck(r, check)


def blank_none(v: str | None, _field: str) -> str | None:
    """An optional name from a query (``?user=``): left out or empty means none."""
    return v or None


# A numeric field on the wire: a JSON number, or its text from the CLI's argv. Typed Any here so
# that every wrong value gets the range's own message (core/limits.py), not a type error.
Number = Any


# -- parsing ------------------------------------------------------------------------------------


class Request(msgspec.Struct, kw_only=True):
    """Base of every request model: fields are the JSON keys, query or path parameters of the route."""

    # Field -> its check, applied in this order after the types are checked.
    CHECKS: ClassVar[dict[str, Check]] = {}
    # Fields whose operation argument has another name (the wire says dollars, ops take micro-dollars).
    RENAME: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        for name, check in self.CHECKS.items():
            setattr(self, name, check(getattr(self, name), name))
        self.check()

    def check(self) -> None:
        """Checks across fields (after each field's own)."""

    def args(self) -> dict[str, Any]:
        """The operation's keyword arguments: every field, renamed where :attr:`RENAME` says."""
        r = self.RENAME
        return {r.get(k, k): getattr(self, k) for k in self.__struct_fields__}


R = TypeVar("R", bound=Request)
_AT = re.compile(r" - at `\$\.([^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]*)`")
_EXPECTED = re.compile(r"^Expected `([^`]*)`, got `([^`]*)`")
_WHAT = {
    "str": "a string",
    "array": "a list",
    "object": "a JSON object",
    "bool": "true or false",
    "int": "a whole number",
}


def parse(model: type[R], data: dict[str, Any]) -> R:
    """``data`` as ``model``; any refusal is a :class:`BadRequest` naming the field."""
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        if m := _MISSING.match(msg):
            field = m[1]
            raise BadRequest(
                f"{field} is missing; see docs/api.md for this route's fields.", field=field
            ) from None
        at = _AT.search(msg)
        field = at[1].split("[")[0] if at else "body"
        if e := _EXPECTED.match(msg):
            want = " or ".join(_WHAT.get(t, t) for t in e[1].replace(" | null", "").split(" | "))
            raise BadRequest(
                f"{field} must be {want} (got {e[2]}); see docs/api.md.", field=field
            ) from None
        raise BadRequest(f"{field} is not valid: {msg}; see docs/api.md.", field=field) from None


def fields(model: type[Request]) -> tuple[str, ...]:
    """The wire names of a request model's fields (docs/api.md lists them; tests/docs checks it)."""
    return model.__struct_fields__


# -- requests -----------------------------------------------------------------------------------

MAX_NAME = 128
MAX_DESTINATION = limits.MAX_PATH_LEN
DEFAULT_TTL_S = 600


class Empty(Request):
    """A route that takes nothing but the caller's headers."""


class NamePath(Request):
    """A route on one named thing: ``{name}`` in the path."""

    name: str


class TenantCreate(Request):
    name: Any = ""
    CHECKS = {"name": lambda v, _f: names.tenant_name(v)}


class TenantSuspend(Request):
    name: str
    reason: Any = None
    CHECKS = {"reason": text(limits.MAX_REASON_LEN)}


class ProjectAdd(Request):
    path: Any = None
    name: Any = None
    shared: Any = False
    CHECKS = {
        "path": text(limits.MAX_PATH_LEN, required=True),
        "name": text(MAX_NAME),
        "shared": flag,
    }


class RoleCreate(Request):
    name: str = ""
    permissions: Any = None
    description: Any = None
    CHECKS = {"description": text(limits.MAX_REASON_LEN)}

    def check(self) -> None:
        p = self.permissions or []
        if not isinstance(p, list) or not all(isinstance(x, str) for x in p):
            raise BadRequest("permissions must be a list of permission names.", field="permissions")
        self.permissions = p

    def args(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "permissions": self.permissions,
            "description": self.description or "",
        }


class MemberAdd(Request):
    user: str = ""
    role: str = ""
    project: Any = None
    CHECKS = {"project": text(MAX_NAME)}


class MemberRemove(Request):
    """``{user}`` in the path, ``?project=`` in the query."""

    user: str
    project: str | None = None
    CHECKS = {"project": blank_none}


class QuotaStatusQuery(Request):
    user: str | None = None
    CHECKS = {"user": blank_none}


class QuotaSet(Request):
    """The limit, metric, period and alerts are checked by the operation: the limit's range depends on the metric."""

    metric: Any = ""
    period: Any = ""
    limit: Any = None
    user: Any = None
    alerts: Any = None
    CHECKS = {"user": text(64)}


class QuotaRemove(Request):
    """In the query: which quota (its metric, period and user) to remove."""

    metric: str = ""
    period: str = ""
    user: str | None = None
    CHECKS = {"user": blank_none}


class UsageRecord(Request):
    """``POST /v1/usage``: usage made outside the workstation (numbers arrive as ints, costs as micro-dollars)."""

    model: Any = None
    input_tokens: Number = 0
    output_tokens: Number = 0
    requests: Number = 1
    cost_usd: Number = None
    task_kind: Any = None
    CHECKS = {
        "input_tokens": count(limits.TOKENS),
        "output_tokens": count(limits.TOKENS),
        "requests": count(limits.REQUESTS, none_is=1),
        "cost_usd": dollars(limits.COST, absent=None),  # left out: the engine prices it (docs/quotas.md#pricing)
    }
    RENAME = {"cost_usd": "cost_micros"}

    def __post_init__(self) -> None:
        m = self.model  # first: its message says how to give it
        if not m or not isinstance(m, str) or len(m) > limits.MAX_MODEL_LEN:
            raise BadRequest(
                "model is missing or too long; pass --model NAME (e.g. gpt-4o).", field="model"
            )
        super().__post_init__()


class UsageHistoryQuery(Request):
    bucket: str = "hour"
    since_hours: Number = 24
    user: str | None = None
    CHECKS = {"since_hours": count(limits.SINCE_HOURS), "user": blank_none}


class Reserve(Request):
    tokens: Number = 0
    requests: Number = 1
    cost_usd: Number = None
    ttl_s: Number = DEFAULT_TTL_S
    model: Any = None  # without cost_usd: the cost held is the model's registry price of `tokens`
    CHECKS = {
        "tokens": count(limits.TOKENS),
        "requests": count(limits.REQUESTS, none_is=1),
        "cost_usd": dollars(limits.COST, absent=None),
        "ttl_s": count(limits.TTL_S, none_is=DEFAULT_TTL_S),
        "model": text(limits.MAX_MODEL_LEN),
    }
    RENAME = {"cost_usd": "cost_micros"}


class Settle(Request):
    rid: str
    input_tokens: Number = 0
    output_tokens: Number = 0
    requests: Number = 1
    cost_usd: Number = None
    model: Any = None
    task_kind: Any = None
    CHECKS = {
        "input_tokens": count(limits.TOKENS),
        "output_tokens": count(limits.TOKENS),
        "requests": count(limits.REQUESTS, none_is=1),
        "cost_usd": dollars(limits.COST, absent=None),
        "model": text(limits.MAX_MODEL_LEN),
    }
    RENAME = {"cost_usd": "cost_micros"}


class Release(Request):
    rid: str


def destination(v: object, _field: str) -> str | None:
    """Where the client writes a file; recorded, never opened."""
    if v in (None, ""):
        return None
    if not isinstance(v, str) or len(v) > MAX_DESTINATION or "\x00" in v:
        raise BadRequest(
            f"destination must be a path of at most {MAX_DESTINATION} characters.",
            field="destination",
        )
    return v


class AuditList(Request):
    """``GET /v1/audit`` filters, in the query.

    They are checked by the operation's audit query (``AuditService.audit_query``),
    which ``audit export`` shares for its ``filters``: one definition of each.
    """

    since: str | None = None
    until: str | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    limit: str | None = None
    after_seq: str | None = None
    ascending: str | None = None
    system: str | None = None

    def args(self) -> dict[str, Any]:
        return {
            "filters": {k: v for k in self.__struct_fields__ if (v := getattr(self, k)) is not None}
        }


class AuditVerify(Request):
    anchor: Any = None
    system: Any = False  # true/false, or its text from a query; checked by the operation

    def check(self) -> None:
        if self.anchor is not None and not isinstance(self.anchor, dict):
            raise BadRequest(
                "anchor must be a checkpoint document (a JSON object).", field="anchor"
            )


class AuditExport(Request):
    """``destination`` (or ``path``, its older name) is only recorded in the audit log."""

    format: Any = ""
    filters: Any = None
    destination: Any = None
    path: Any = None
    dry_run: Any = False
    CHECKS = {"dry_run": flag}

    def check(self) -> None:
        self.destination = destination(
            self.path if self.destination is None else self.destination, "destination"
        )
        f = self.filters or {}
        if not isinstance(f, dict) or not all(
            isinstance(v, (str, int, bool)) or v is None for v in f.values()
        ):
            raise BadRequest(
                "filters must be a JSON object of text, number or true/false values.",
                field="filters",
            )
        self.filters, self.format = f, str(self.format)


class AuditPrune(Request):
    before: Any = None


class AuditCheckpoint(Request):
    path: Any = None
    destination: Any = None
    dry_run: Any = False
    CHECKS = {"path": text(limits.MAX_PATH_LEN)}

    def check(self) -> None:
        self.destination = destination(
            self.path if self.destination is None else self.destination, "destination"
        )
        self.dry_run = flag(self.dry_run, "dry_run")

    def args(self) -> dict[str, Any]:
        return {"destination": self.destination, "dry_run": self.dry_run}


class EventsQuery(Request):
    types: str = ""


# -- background jobs (docs/jobs.md) --------------------------------------------------------------


def _job_id(v: object, field: str) -> str:
    from core.jobs.model import check_job_id

    return check_job_id(v)  # type: ignore[arg-type]


class JobsQuery(Request):
    """``GET /v1/jobs`` filters, in the query: ``state`` (one or several, comma-separated), ``kind``, ``limit``."""

    state: str | None = None
    kind: str | None = None
    limit: Number = None
    CHECKS = {
        "state": lambda v, f: limits.text(v or None, f, 200),
        "kind": lambda v, f: limits.text(v or None, f, MAX_NAME),
        "limit": lambda v, f: limits.count(50 if v is None or v == "" else v, f, limits.JOBS_LIMIT),
    }


class JobPath(Request):
    """A route on one job: ``{id}`` in the path (``j-`` and 12 hex digits)."""

    id: str
    CHECKS = {"id": _job_id}


class JobStart(Request):
    """``POST /v1/jobs``: a job of a registered kind, its ``params`` checked by the kind."""

    kind: Any = None
    params: Any = None
    CHECKS = {"kind": text(MAX_NAME, required=True)}

    def check(self) -> None:
        if self.params is None:
            self.params = {}
        if not isinstance(self.params, dict):
            raise BadRequest("params must be a JSON object (or left out).", field="params")


# -- responses ----------------------------------------------------------------------------------


class Health(TypedDict):
    ok: bool
    version: str
    pid: int
    home: str
    socket: str
    database: str
    schema_version: int
    started_at: str | None
    tenants: int
    subscribers: int
    commits: int
    sync_helper_pid: int | None
    quarantined_groups: int
    quarantine_dir: str
    user: str


class Whoami(TypedDict):
    user: str
    real_user: str
    tenant: str
    tenant_status: str | None
    project: str | None
    roles: list[str]
    permissions: list[str]
    tenant_permissions: list[str]
    system_admin: bool


class Stopping(TypedDict):
    stopping: bool
    pid: int


class Amount(TypedDict):
    tokens: int
    requests: int
    cost_usd: str


class UsageRecorded(TypedDict):
    recorded: bool
    tenant: str
    user: str
    model: str
    tokens: int
    requests: int
    cost_usd: str
    entry_id: int
    ts: str
    priced: bool  # false: no cost_usd and no registry price, so $0 was charged (docs/quotas.md#pricing)
    warning: str | None  # why it was not priced and how to fix it; null when priced


class QuotaRow(TypedDict):
    id: int
    metric: str
    period: str
    scope: str
    user: str | None
    limit: int | str
    used: int | str
    reserved: int | str
    remaining: int | str
    fraction_used: float
    window_start: str
    resets_at: str
    alerts: list[float]


class QuotaStatus(TypedDict):
    tenant: str
    user: str
    quotas: list[QuotaRow]
    tightest: QuotaRow | None


class Reserved(TypedDict):
    reservation_id: str
    tokens: int
    requests: int
    cost_usd: str
    expires_at: str
    priced: bool  # false: no cost_usd and no registry price, so $0 is held (docs/quotas.md#pricing)
    warning: str | None


class Released(TypedDict):
    reservation_id: str
    released: bool


class _AuditEventKeys(TypedDict):
    seq: int
    ts: str
    tenant_id: str
    actor: str
    action: str
    resource: str
    outcome: str
    details: dict[str, Any]


class AuditEvent(_AuditEventKeys, total=False):
    """One audit event as listed; ``prev_hash`` and ``hash`` may be left out.

    Optional keys by ``total=False``, not ``NotRequired[...]``: under this module's
    ``from __future__ import annotations`` Python 3.11 reads ``NotRequired`` from a
    string and counts the key as required (``__required_keys__``).
    """

    prev_hash: str
    hash: str


# -- models and cost (core/engine/routes_models.py) ----------------------------------------------

MAX_MODELS = 12  # models per estimate
MAX_SOURCE = 500  # characters of an import's source label
_ROUTE_TOKENS = "input_tokens must be a whole number >= 0 (o200k_base tokens)."


class ModelId(Request):
    """``GET /v1/models/{id}``."""

    id: str


class AllowedSet(Request):
    models: Any = None

    def check(self) -> None:
        if not isinstance(self.models, list) or not all(isinstance(n, str) for n in self.models):
            raise BadRequest(
                'models must be a list of model ids, e.g. {"models": ["gpt-5.4"]}.', field="models"
            )
        if not self.models:
            raise BadRequest(
                "an empty list would allow no model at all; to allow every model use: "
                "musubi models allowed clear (DELETE /v1/models/allowed).",
                field="models",
            )


class RouteTask(Request):
    task: Any = None  # checked against the registry's task kinds by the route
    input_tokens: Any = None
    kind: Any = "code"
    CHECKS = {"input_tokens": json_int(_ROUTE_TOKENS, limits.TOKENS)}

    def check(self) -> None:
        if self.kind not in ("code", "prose", "cjk"):
            raise BadRequest("kind must be code, prose or cjk.", field="kind")


class CostEstimate(Request):
    models: Any = None
    paths: Any = None
    workflow: Any = None
    task: Any = None
    retrieval_tokens: Any = 0
    # Retrieval context from an actual pack (docs/models.md "Retrieval context"): the task text and its budget.
    retrieval_task: Any = None
    retrieval_budget: Any = None
    cache: Any = True
    texts: Any = None

    def check(self) -> None:
        names_ = self.models
        if (
            not isinstance(names_, list)
            or not names_
            or not all(isinstance(n, str) for n in names_)
        ):
            raise BadRequest(
                "models must be a non-empty list of model ids (--model M, repeatable).",
                field="models",
            )
        if len(names_) > MAX_MODELS:
            raise BadRequest(f"at most {MAX_MODELS} models per estimate.", field="models")
        self.paths = self.paths or []
        if not isinstance(self.paths, list):
            raise BadRequest("paths must be a list of absolute file paths.", field="paths")
        if self.workflow is not None and self.task is not None:
            raise BadRequest("give a workflow or a task kind, not both.", field="workflow")
        self.retrieval_tokens = json_int(
            "retrieval_tokens must be a whole number >= 0.", limits.TOKENS
        )(self.retrieval_tokens, "retrieval_tokens")
        self.retrieval_task = limits.text(self.retrieval_task or None, "retrieval_task", 2_000)
        if self.retrieval_task is not None:
            if self.retrieval_tokens:
                raise BadRequest("give retrieval_tokens (a guess) or retrieval_task with retrieval_budget (an actual "
                                 "pack), not both.", field="retrieval_task")
            if self.retrieval_budget is None:
                raise BadRequest("retrieval_task needs retrieval_budget: the tokens the pack may use, e.g. 8000.",
                                 field="retrieval_budget")
            self.retrieval_budget = limits.count(self.retrieval_budget, "retrieval_budget", limits.CONTEXT_BUDGET)
        elif self.retrieval_budget is not None:
            raise BadRequest("retrieval_budget needs retrieval_task: the task text whose context is packed.",
                             field="retrieval_task")
        self.cache = flag(self.cache, "cache")


class ModelsImport(Request):
    scope: Any = "tenant"  # core.models.overrides.SCOPES
    dry_run: Any = False
    source: Any = None
    table: Any = None

    def check(self) -> None:
        if self.scope not in ("tenant", "user"):
            raise BadRequest(
                "scope must be 'tenant' (this tenant's override) or 'user' (the engine owner's).",
                field="scope",
            )
        self.dry_run = flag(self.dry_run, "dry_run")
        s = self.source
        if not isinstance(s, str) or not s.strip() or len(s) > MAX_SOURCE:
            raise BadRequest(
                f"source must name the file or URL the table came from (at most {MAX_SOURCE} characters).",
                field="source",
            )
        self.source = s.strip()


# -- traceability (core/engine/routes_trace.py) --------------------------------------------------


def _required(model: Request, *keys: str) -> None:
    for key in keys:
        v = getattr(model, key)
        if not isinstance(v, str) or not v:
            raise BadRequest(f"{key} is missing; give it as a string.", field=key)


class TraceRead(Request, kw_only=True):
    """Every trace read: the repository (``path``, else the request's project)."""

    path: Any = None

    def __post_init__(self) -> None:
        if self.path is not None and not isinstance(self.path, str):
            raise BadRequest(
                "path must be a string: the absolute path of a repository.", field="path"
            )
        super().__post_init__()


class TraceReport(TraceRead):
    view: Any = "full"

    def check(self) -> None:
        if self.view not in ("full", "summary", "changes"):
            raise BadRequest(f"view {self.view!r} is not 'full', 'summary' or 'changes'.", field="view")


class TraceItem(TraceRead):
    id: str


class TraceExport(TraceRead):
    format: str = "json"


class TraceReview(TraceRead):
    id: Any = None

    def check(self) -> None:
        _required(self, "id")


class TraceLink(TraceRead):
    """A link decision; ``line`` and the link's ``state`` and ``source`` are checked by the trace service."""

    requirement: Any = None
    kind: Any = None
    target: Any = None
    line: Any = None
    state: Any = "accepted"
    source: Any = "manual"

    def check(self) -> None:
        _required(self, "requirement", "kind", "target")


class TraceUnlink(TraceRead):
    requirement: Any = None
    kind: Any = None
    target: Any = None
    line: Any = None

    def check(self) -> None:
        _required(self, "requirement", "kind", "target")


# -- code index and search (docs/search.md) ------------------------------------------------------


class IndexStart(TraceRead):
    """``POST /v1/index``: index the project holding ``path`` (absolute), else the request's project."""

    force: Any = False
    CHECKS = {"force": flag}


def _query(v: object, field: str) -> str:
    q = limits.text(v, field, limits.MAX_QUERY_LEN, required=True)
    if not q or not q.strip():
        raise BadRequest(f"{field} is empty; give words to search for, e.g. \"parse the config file\".", field=field)
    return q


def _lang(v: object, field: str) -> str | None:
    lang = limits.text(v or None, field, 40)
    if lang is not None and not re.fullmatch(r"[a-z0-9_+#-]+", lang):
        raise BadRequest(f"{field} {lang!r} is not a language name; use e.g. python, markdown, typescript.",
                         field=field)
    return lang


_SEARCH_CHECKS: dict[str, Check] = {
    "k": count(limits.SEARCH_K, none_is=10),
    "path": lambda v, f: limits.text(v or None, f, 1000),
    "lang": _lang,
}


class SearchQuery(Request):
    """``POST /v1/search``: one query, ``k`` results (1 to 100), optional ``path`` glob and ``lang`` filters."""

    query: Any = None
    k: Number = 10
    path: Any = None
    lang: Any = None
    CHECKS = {"query": _query, **_SEARCH_CHECKS}


class SearchBatch(Request):
    """``POST /v1/search/batch``: several queries (1 to 1,000), the same ``k`` and filters for each."""

    queries: Any = None
    k: Number = 10
    path: Any = None
    lang: Any = None
    CHECKS = _SEARCH_CHECKS

    def check(self) -> None:
        qs = self.queries
        if not isinstance(qs, list) or not qs or len(qs) > limits.MAX_QUERIES:
            raise BadRequest(f"queries must be a list of 1 to {limits.MAX_QUERIES:,} strings.", field="queries")
        self.queries = [_query(q, f"queries[{i}]") for i, q in enumerate(qs)]


# -- context packs (docs/search.md#context-packs) ---------------------------------------------------


def _score_floor(v: object, field: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise BadRequest(f"{field} must be a number (a search score), or left out.", field=field)
    return float(v)


class ContextRequest(Request):
    """``POST /v1/context``: pack the project's best code for ``task`` into ``budget`` tokens of ``model``."""

    task: Any = None
    budget: Number = None
    model: Any = None
    k: Number = 20
    path: Any = None
    lang: Any = None
    min_score: Any = None
    CHECKS = {
        "task": _query,
        "budget": count(limits.CONTEXT_BUDGET),
        "model": text(limits.MAX_MODEL_LEN, required=True),
        **_SEARCH_CHECKS,
        "k": count(limits.SEARCH_K, none_is=20),
        "min_score": _score_floor,
    }
