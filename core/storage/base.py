"""The narrow storage interface the engine is written against.

The engine keeps its working state in memory and talks to storage in three ways:
``load()`` a snapshot at start, ``apply()`` one transaction of mutations per group
commit, and a handful of read queries.  A PostgreSQL + pgvector backend is one
more implementation of :class:`Storage`; tables and columns are the same
(docs/schema.md), so mutations name them directly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from core.errors import StorageError

# Tables only ever appended to.  Their inserts are gathered and written in one
# multi-row statement per batch (group commit), after the ordered mutations.
APPEND_ONLY = frozenset({"audit_log", "usage_ledger"})


@dataclass
class Insert:
    table: str
    row: dict[str, Any]


@dataclass
class Update:
    table: str
    values: dict[str, Any]
    where: dict[str, Any]


@dataclass
class Delete:
    table: str
    where: dict[str, Any]


Mutation = Insert | Update | Delete


class WriteRejected(StorageError):
    """Storage refused these mutations as such (a constraint or a conversion failed).

    Unlike a disk that is full or unwritable (plain ``StorageError``, worth
    retrying), retrying the same mutations cannot help: the engine quarantines
    the journal group that holds them (core/engine/quarantine.py).
    """

    code = "write_rejected"


@dataclass
class AuditQuery:
    """Filters for listing or exporting audit events of one tenant."""

    tenant_id: str
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None  # exact, or prefix when it ends with '*'
    outcome: str | None = None
    limit: int | None = None
    after_seq: int | None = None
    descending: bool = True


@dataclass
class Snapshot:
    """Everything the engine needs in memory, read at start (and after a failed commit)."""

    tenants: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    quotas: list[dict[str, Any]] = field(default_factory=list)
    reservations: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # (tenant_id, user_name) -> {period: (window_start, tokens, requests, cost_micros)}
    usage: dict[tuple[str, str], dict[str, tuple[datetime, int, int, int]]] = field(default_factory=dict)
    audit_heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # tenant -> (seq, hash)
    pruned_through: dict[str, int] = field(default_factory=dict)  # tenant -> newest checkpoint seq
    max_ids: dict[str, int] = field(default_factory=dict)  # "quota", "ledger"
    quarantined: int = 0  # journal groups set aside (table quarantined_groups)
    jobs: list[dict[str, Any]] = field(default_factory=list)  # table jobs, oldest first (core/jobs)
    # -- identity / SSO (core/identity): tables sso_role_rules and sso_policies
    sso_rules: list[dict[str, Any]] = field(default_factory=list)
    sso_policies: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    # -- integrations (issue 17 gaps): table -> rows of notify_queue, webhook_deliveries, webhook_pipelines, run_refs
    integrations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class Storage(Protocol):
    """What a storage backend provides."""

    path: Path

    def load(self, now: datetime) -> Snapshot: ...

    def apply(self, mutations: Sequence[Mutation], meta: dict[str, str] | None = None) -> None:
        """Apply mutations (and upsert ``engine_meta`` keys) in one transaction; raise and change nothing on failure.

        Raise :class:`WriteRejected` when the mutations themselves are refused
        (constraint, conversion, unknown column), ``StorageError`` when storage
        cannot be written right now (disk full, I/O error).
        """

    def quarantined(self, tenant_id: str | None = None) -> list[dict[str, Any]]:
        """Rows of ``quarantined_groups`` (``audit`` parsed), oldest first; only those touching ``tenant_id`` if given."""

    def checkpoint(self) -> None:
        """Fold the database's own write-ahead log into the file (bounded memory and WAL)."""

    def meta_value(self, key: str) -> str | None: ...

    def audit_list(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    def audit_chain(self, tenant_id: str, start_seq: int, chunk: int = 50_000) -> Iterator[tuple[Any, ...]]:
        """Rows ``(seq, ts_text, actor, action, resource, outcome, details, prev_hash, hash)`` in seq order."""

    def audit_chain_joined(self, tenant_id: str, start_seq: int, chunk: int = 25_000) -> Iterator[tuple[int, int, bool, str, str]]:
        """Chunks ``(lo, count, gapless, pieces, hashes)`` for fast verification (see DuckDBStorage)."""

    def audit_seqs(self, tenant_id: str, lo: int, hi: int) -> list[int]: ...

    def audit_chain_hash(self, tenant_id: str, seq: int) -> str | None: ...

    def audit_row(self, tenant_id: str, seq: int) -> tuple[Any, ...]: ...

    def audit_export(self, q: AuditQuery, fmt: str, path: Path) -> int: ...

    def checkpoints(self, tenant_id: str) -> list[dict[str, Any]]: ...

    def count_events(self, tenant_id: str, max_seq: int) -> int: ...

    def last_event_before(self, tenant_id: str, before: datetime) -> tuple[int, str] | None: ...

    def usage_history(self, tenant_id: str, since: datetime, bucket: str, user: str | None) -> list[dict[str, Any]]: ...

    # Finished jobs the engine no longer holds in memory (core/jobs/service.py; docs/jobs.md).
    def job_row(self, tenant_id: str, job_id: str) -> dict[str, Any] | None: ...

    def job_rows(
        self, tenant_id: str, states: Sequence[str], kind: str | None, projects: Sequence[str] | None,
        exclude: Sequence[str], limit: int,
    ) -> list[dict[str, Any]]: ...

    # The code index (core/rag/service.py, core/rag/job.py; docs/search.md#indexing).
    def code_index(self, tenant_id: str, project: str) -> dict[str, Any] | None: ...

    def code_file_hashes(self, tenant_id: str, project: str) -> dict[str, str]: ...

    def code_counts(self, tenant_id: str, project: str) -> tuple[int, int, int]: ...

    def code_chunk_keys(self, tenant_id: str, project: str) -> list[tuple[int, str, str, bool]]: ...

    def code_chunk_ids(self, tenant_id: str, project: str) -> list[tuple[int]]: ...

    def code_pending(self, tenant_id: str, project: str) -> list[tuple[int, str]]: ...

    def code_passages(self, tenant_id: str, project: str, ids: Sequence[int]) -> list[tuple[Any, ...]]: ...

    def code_chunk_rows(self, tenant_id: str, project: str) -> list[tuple[Any, ...]]: ...

    # Orchestration runs (core/orchestration/service.py; docs/runs.md).
    def runs_load(self, run_ids: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]: ...

    def run_log(self, run_id: str, after: int, limit: int) -> list[dict[str, Any]]: ...

    # Tutorials (core/engine/tutorials.py; docs/tutorials.md): progress and step marks, read once.
    def tutorial_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]: ...
    def run_step_responses(self, run_id: str, path: str) -> list[str]: ...
    # Local embedder (core/tune/service.py; docs/finetune.md).
    def tuned_embedders(self, tenant_id: str, project: str) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...
