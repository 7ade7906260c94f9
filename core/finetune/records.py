"""Rows of the provider fine-tuning tables (migration 009) and their API answers.  No I/O here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from core.audit import format_ts
from core.quotas import micros_to_usd
from core.storage.rows import Row, new_id, ts

STATES = ("queued", "uploading", "submitted", "succeeded", "failed", "cancelled")
FINAL = frozenset({"succeeded", "failed", "cancelled"})


def new_dataset_id() -> str:
    return new_id("d")


def new_tune_id() -> str:
    return new_id("t")


@dataclass
class Dataset(Row):
    """A row of ``provider_tune_datasets``."""

    CUT: ClassVar[frozenset[str]] = frozenset()  # its text columns are JSON: never cut

    dataset_id: str
    tenant_id: str
    project: str
    base_model: str
    examples: int
    tokens: int
    epochs: int
    est_cost_micros: int
    sha256: str
    path: str
    skipped: str
    scrubbed: str
    sources: str
    created_by: str
    created_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.dataset_id, "project": self.project or None, "base_model": self.base_model,
            "examples": self.examples, "tokens": self.tokens, "epochs": self.epochs,
            "trained_tokens": self.tokens * self.epochs, "est_cost_usd": micros_to_usd(self.est_cost_micros),
            "sha256": self.sha256, "path": self.path, "skipped": json.loads(self.skipped),
            "scrubbed": json.loads(self.scrubbed), "created_by": self.created_by,
            "created_at": format_ts(self.created_at),
        }


@dataclass
class TuneJob(Row):
    """A row of ``provider_tune_jobs``."""

    CUT: ClassVar[frozenset[str]] = frozenset({"error_message"})

    tune_id: str
    tenant_id: str
    project: str
    dataset_id: str
    provider: str
    provider_name: str
    base_model: str
    vendor_model: str
    epochs: int
    job_id: str
    state: str
    est_cost_micros: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    suffix: str | None = None
    vendor_status: str | None = None
    file_id: str | None = None
    vendor_job_id: str | None = None
    fine_tuned_model: str | None = None
    registered_model: str | None = None
    trained_tokens: int | None = None
    cost_micros: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    finished_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.tune_id, "project": self.project or None, "dataset": self.dataset_id,
            "provider": self.provider, "provider_name": self.provider_name, "base_model": self.base_model,
            "epochs": self.epochs, "suffix": self.suffix, "job": self.job_id, "state": self.state,
            "vendor_status": self.vendor_status, "file_id": self.file_id, "vendor_job_id": self.vendor_job_id,
            "fine_tuned_model": self.fine_tuned_model, "registered_model": self.registered_model,
            "trained_tokens": self.trained_tokens, "est_cost_usd": micros_to_usd(self.est_cost_micros),
            "cost_usd": None if self.cost_micros is None else micros_to_usd(self.cost_micros),
            "error": ({"code": self.error_code, "message": self.error_message}
                      if self.error_code or self.error_message else None),
            "created_by": self.created_by, "created_at": format_ts(self.created_at),
            "updated_at": format_ts(self.updated_at), "finished_at": ts(self.finished_at),
        }
