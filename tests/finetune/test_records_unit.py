"""Fine-tuning records are rows through the shared :class:`core.storage.rows.Row`: round trip, ints, cuts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core.finetune.records import Dataset, TuneJob, new_dataset_id, new_tune_id
from core.storage.rows import MAX_TEXT

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def dataset(**over: object) -> Dataset:
    kw: dict[str, object] = {
        "dataset_id": new_dataset_id(), "tenant_id": "acme", "project": "", "base_model": "gpt-4.1-mini",
        "examples": 3, "tokens": 120, "epochs": 2, "est_cost_micros": 900, "sha256": "0" * 64, "path": "/x.jsonl",
        "skipped": json.dumps(["x" * (MAX_TEXT + 10)]), "scrubbed": "[]", "sources": "[]", "created_by": "alice",
        "created_at": NOW, **over}
    return Dataset(**kw)  # type: ignore[arg-type]


def tune(**over: object) -> TuneJob:
    kw: dict[str, object] = {
        "tune_id": new_tune_id(), "tenant_id": "acme", "project": "", "dataset_id": "d-000000000001",
        "provider": "azure", "provider_name": "azure-openai", "base_model": "gpt-4.1-mini",
        "vendor_model": "gpt-4.1-mini", "epochs": 2, "job_id": "j-000000000001", "state": "failed",
        "est_cost_micros": 900, "created_by": "alice", "created_at": NOW, "updated_at": NOW, **over}
    return TuneJob(**kw)  # type: ignore[arg-type]


def test_ids_have_their_prefix() -> None:
    assert new_dataset_id().startswith("d-") and len(new_dataset_id()) == 14
    assert new_tune_id().startswith("t-") and new_tune_id() != new_tune_id()


def test_a_dataset_round_trips_and_its_json_columns_are_never_cut() -> None:
    d = dataset()
    row = d.row()
    assert row["skipped"] == d.skipped and len(row["skipped"]) > MAX_TEXT
    back = Dataset.from_row({**row, "tokens": 120.0, "examples": 3.0})  # DuckDB may answer a wider type
    assert back == d and type(back.tokens) is int and type(back.examples) is int


def test_a_tune_job_keeps_a_long_error_to_the_row_limit() -> None:
    t = tune(error_code="boom", error_message="e" * (MAX_TEXT + 500), trained_tokens=None)
    row = t.row()
    assert len(row["error_message"]) == MAX_TEXT and row["error_code"] == "boom"
    back = TuneJob.from_row(row)
    assert back.error_message == "e" * MAX_TEXT and back.trained_tokens is None and back.tune_id == t.tune_id
    assert back.as_json()["finished_at"] is None
