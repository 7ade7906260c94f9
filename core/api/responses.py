"""Response shapes of the routes beyond the first nine (those are in :mod:`core.api.models`).

``TypedDict`` s like the others: they cost the engine nothing at run time and
tests/engine/test_api_models.py checks a real answer of each route against its
shape (types, and no key the shape does not name, nested shapes included).  Deep
parts whose shape belongs to another module (a trace report's scan and summary,
a cost estimate's per-model breakdown, a price import's diff rows) are typed as
JSON objects here; their own modules and docs (docs/trace.md, docs/models.md)
define them.

No ``from __future__ import annotations`` here: with string annotations Python
3.11 cannot see ``NotRequired`` and counts every key as required
(``__required_keys__``, which tests/docs/test_api_routes.py reads).
"""

from typing import Any, NotRequired, TypedDict

Obj = dict[str, Any]


class Streamed:
    """Not a JSON answer: the route streams file content or events (docs/api.md says which)."""


# -- tenants, projects, roles, members -----------------------------------------------------------


class Tenant(TypedDict):
    name: str
    status: str
    created_at: str
    created_by: str
    status_changed_at: str | None
    status_reason: str | None


class TenantRow(Tenant):
    members: int
    projects: int
    your_roles: list[str]


class TenantShown(Tenant):
    members: int
    projects: list[str]
    quotas: int
    audit_head_seq: int
    data_dir: str


class Project(TypedDict):
    name: str
    path: str
    tenant: str


class ProjectRow(TypedDict):
    name: str
    path: str
    current: bool
    shared: NotRequired[bool]


class ProjectRemoved(TypedDict):
    name: str
    path: str
    bindings_removed: int


class Role(TypedDict):
    name: str
    builtin: bool
    permissions: list[str]
    description: str


class RoleShown(Role):
    matrix: dict[str, bool]


class RoleDeleted(TypedDict):
    name: str
    deleted: bool


class MemberAdded(TypedDict):
    tenant: str
    user: str
    role: str
    project: str | None
    action: str


class MemberRow(TypedDict):
    user: str
    project: str | None
    role: str
    since: str
    added_by: str


class MemberRemoved(TypedDict):
    tenant: str
    user: str
    project: str | None
    removed_role: str


# -- quotas, usage, reservations -----------------------------------------------------------------


class QuotaRemoved(TypedDict):
    removed: bool
    quota_id: int
    metric: str
    period: str
    user: str | None


class UsageBucket(TypedDict):
    bucket: str
    tokens: int
    requests: int
    cost_micros: int


class UsageHistory(TypedDict):
    tenant: str
    bucket: str
    rows: list[UsageBucket]


class ReservationRow(TypedDict):
    reservation_id: str
    user: str
    tokens: int
    requests: int
    cost_usd: str
    created_at: str
    expires_at: str


class Settled(TypedDict):
    reservation_id: str
    settled: bool
    tokens: int
    requests: int
    cost_usd: str
    reserved: dict[str, int | str]
    overshoot: dict[str, int | str]
    entry_id: int
    ts: str
    priced: bool  # false: no cost_usd and no registry price, so $0 was charged (docs/quotas.md#pricing)
    warning: str | None


# -- audit ---------------------------------------------------------------------------------------


class Verified(TypedDict):
    tenant_id: str
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None
    start_seq: int
    last_seq: int
    last_hash: str
    quarantined: list[Obj]
    checkpoints: int
    checkpoint_signatures_ok: bool
    anchor_seq: int | None


class Pruned(TypedDict):
    tenant: str
    pruned_through_seq: int
    checkpoint_hash: str
    events_removed: int
    before: str


class Checkpoint(TypedDict):
    """The signed checkpoint document; a dry run answers only ``ok`` and ``dry_run``."""

    ok: NotRequired[bool]
    dry_run: NotRequired[bool]
    kind: NotRequired[str]
    version: NotRequired[int]
    tenant_id: NotRequired[str]
    seq: NotRequired[int]
    hash: NotRequired[str]
    created_at: NotRequired[str]
    public_key: NotRequired[str]
    algorithm: NotRequired[str]
    signature: NotRequired[str]


# -- traceability (docs/trace.md) ----------------------------------------------------------------


class TraceReport(TypedDict):
    """``view=summary`` and ``view=changes`` leave out ``requirements`` and ``gaps``."""

    root: str
    scan: Obj
    summary: Obj
    requirements: NotRequired[list[Obj]]
    gaps: NotRequired[Obj]
    diagnosis: Obj | None
    # Suggested links (full report only): {state: none|updating|ready, count, threshold, index, note}.
    suggestions: NotRequired[Obj]


class TraceRequirement(TypedDict):
    id: str
    title: str
    path: str
    line: int
    priority: str | None
    status: str | None
    feature: str | None
    form: str
    statement: str | None
    statement_kind: str | None
    criteria: list[str]
    criteria_ids: list[str]
    fingerprint: str
    reviewed: bool
    suspect: bool
    links: dict[str, list[Obj]]
    shallow: dict[str, bool]
    deep: dict[str, bool]
    findings: list[Obj]
    rejected: list[Obj]
    external: list[Obj]  # items synced into trackers (links.yml "external", issue 17)


class TraceGaps(TypedDict):
    root: str
    summary: Obj
    requirements: list[Obj]
    orphans: list[Obj]
    dangling: list[Obj]
    duplicates: list[Obj]
    ambiguous: list[Obj]
    dangling_by_folder: list[Obj]
    dangling_by_file: list[Obj]
    diagnosis: Obj | None


class TraceImpact(TypedDict):
    id: str
    title: str
    suspect: bool
    reviewed: bool
    fingerprint: str
    design: list[Obj]
    tasks: list[Obj]
    code: list[Obj]
    tests: list[Obj]
    requirements: list[Obj]
    files: list[str]


class TraceExported(TypedDict):
    format: str
    content: str


class SpecLint(TypedDict):
    root: str
    spec_files: int
    requirements: int
    errors: int
    warnings: int
    findings: list[Obj]
    diagnosis: Obj | None


class Reviewed(TypedDict):
    id: str
    previous_fingerprint: str | None
    fingerprint: str
    by: str
    at: str
    was_suspect: bool
    file: str


class Linked(TypedDict):
    requirement: str
    kind: str
    target: str
    source: str
    state: str
    by: str
    at: str
    file: str
    line: NotRequired[int | None]


class Unlinked(TypedDict):
    removed: bool
    requirement: str
    kind: str
    target: str
    line: int | None


# -- models and cost (docs/models.md) ------------------------------------------------------------


class ModelEntry(TypedDict):
    """One model of the caller's registry (``ModelSpec.as_json``, docs/models.md); unset fields are left out."""

    id: str
    provider: str
    aliases: list[str]
    context_window: int
    max_output: int
    input_per_mtok: str
    output_per_mtok: str
    cached_input_per_mtok: str
    tokenizer: str
    tier: str
    prices_checked: str
    source: str
    long_context: NotRequired[dict[str, int | str]]
    deployment: NotRequired[str]
    base_url: NotRequired[str]
    status: str
    deprecated_on: NotRequired[str]
    retires_on: NotRequired[str]
    replacement: NotRequired[str]
    lifecycle_source: NotRequired[str]
    lifecycle_note: NotRequired[str]
    capabilities: list[str]
    same_as: NotRequired[str]
    origin: str
    exact_tokens: bool
    allowed: bool


class ModelList(TypedDict):
    tenant: str
    models: list[ModelEntry]
    allowed: list[str] | None
    config: str
    today: str


class Allowed(TypedDict):
    tenant: str
    allowed: list[str] | None
    previous: NotRequired[list[str] | None]


class Routed(TypedDict):
    task: str
    tier: str
    needs: list[str]
    input_tokens: int
    picked_non_active: bool
    choice: Obj  # no model fits: the route refuses (no_route) instead
    fallbacks: list[Obj]
    rejected: list[Obj]
    explanation: list[str]


class Imported(TypedDict):
    source: str
    new: list[Obj]
    changed: list[Obj]
    removed: list[Obj]
    unchanged: int
    skipped: list[Obj]
    scope: str
    tenant: str
    dry_run: bool
    override: str
    written: NotRequired[bool]


class Workflows(TypedDict):
    workflows: list[Obj]


class Estimate(TypedDict):
    warnings: list[str]
    assumptions: list[str]
    steps: list[Obj]
    files: list[Obj]
    totals: Obj
    retrieval_tokens: int
    cache: bool
    models: list[Obj]
    skipped: list[Obj]
    tenant: str
    user: str
    workflow: str | None
    task: str | None
    history_samples: int


# -- background jobs (docs/jobs.md) --------------------------------------------------------------


class JobProgress(TypedDict):
    done: int
    total: int | None
    unit: str
    rate: float | None  # units per second over the current attempt
    eta_s: float | None
    message: NotRequired[str]  # only while the job waits for something it names (docs/jobs.md)


class Job(TypedDict):
    id: str
    kind: str
    tenant: str
    project: str | None
    state: str
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str
    progress: JobProgress
    error: str | None
    params: Obj
    checkpoint: Obj | None
    checkpoint_at: str | None
    result: Obj | None
    attempts: int
    cancelled_by: str | None


# -- code index and search (docs/search.md) -------------------------------------------------------


class IndexStarted(TypedDict):
    job: Job


class IndexStatus(TypedDict):
    project: str | None
    root: str | None
    state: str  # none | indexing | ready | stale | failed
    files: int
    chunks: int
    dense_chunks: int
    dense_coverage: float  # 0..1
    model: str | None
    updated_at: str | None
    job: Job | None


class SearchHit(TypedDict):
    path: str  # relative to the project root
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    symbol: str
    language: str
    score: float
    snippet: str


class SearchAnswer(TypedDict):
    query: str
    results: list[SearchHit]
    dense_coverage: float
    complete: bool
    took_ms: float


class SearchBatchAnswer(TypedDict):
    answers: list[SearchAnswer]


# -- context packs (docs/search.md#context-packs) ---------------------------------------------------


class ContextPackBlock(TypedDict):
    path: str
    start_line: int
    end_line: int
    symbols: list[str]
    language: str
    score: float
    tokens: int
    hits: int  # search hits merged into this block


class ContextPackOmitted(TypedDict):
    path: str
    start_line: int
    end_line: int
    symbol: str
    score: float
    reason: str  # over_budget | duplicate | below_floor | unavailable
    detail: str
    tokens: int | None  # over_budget: what it would have cost


class ContextPack(TypedDict):
    task: str
    project: str
    model: str
    tokenizer: str
    exact: bool  # the tokenizer's counts are exact (else the calibrated estimate)
    text: str
    budget: int
    used: int
    remaining: int
    included: list[ContextPackBlock]
    omitted: list[ContextPackOmitted]
    omitted_by_reason: dict[str, int]


# -- providers (issue 12): the answers live in core/api/providers.py; named here too so the
# route checks (tests/engine/test_api_calls.py) resolve them like every other answer.
from core.api.providers import ProviderList, ProviderTested, Reloaded  # noqa: E402, F401
