"""The provider fine-tuning API (issue 19): request models and answers of ``/v1/tune/...``.

``POST /v1/tune/datasets`` builds a chat fine-tuning JSONL from approved run artefacts;
``POST /v1/tune/jobs`` submits one to OpenAI or Azure OpenAI; ``GET /v1/tune/jobs`` and
``GET /v1/tune/jobs/{id}`` show them; ``POST /v1/tune/jobs/{id}/cancel`` stops one.
docs/finetune.md is the user's page.  Light like :mod:`core.api.models` (msgspec only).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from core import limits
from core.api.models import Number, RangeCheck, Request, count, text
from core.errors import BadRequest

TUNE_ID = re.compile(r"^t-[0-9a-f]{12}$")
DATASET_ID = re.compile(r"^d-[0-9a-f]{12}$")
SUFFIX = re.compile(r"^[A-Za-z0-9_-]{1,18}$")  # OpenAI: up to 18 characters in the model's name


def _shaped(pattern: re.Pattern[str], what: str, example: str, fix: str) -> Any:
    def check(v: object, field: str) -> str:
        if not isinstance(v, str) or not pattern.match(v):
            raise BadRequest(f"{str(v)[:40]!r} is not a {what}: they look like {example}. {fix}", field=field)
        return v

    return check


_tune_id = _shaped(TUNE_ID, "fine-tuning job id", "t-0123456789ab", "List them with: musubi tune status")
_dataset_id = _shaped(DATASET_ID, "dataset id", "d-0123456789ab", "Build one with: musubi tune dataset")


def _suffix(v: object, field: str) -> str | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not SUFFIX.match(v):
        raise BadRequest("suffix: 1 to 18 letters, digits, '-' or '_' (it becomes part of the model's name).",
                         field=field)
    return v


def _optional(r: limits.Range) -> RangeCheck:
    """A whole number within ``r``, or None (left out: the engine's default)."""

    def check(v: object, field: str) -> int:
        # 0 never passes the range: it stands for "left out" (the operation takes None then).
        return 0 if v is None or v == "" else limits.count(v, field, r)

    return RangeCheck(r, check)


class TuneDatasetBuild(Request):
    """``POST /v1/tune/datasets``: the base model it is priced for and the epochs it will train."""

    base_model: str
    epochs: Number = None
    CHECKS = {"base_model": text(limits.MAX_MODEL_LEN, required=True), "epochs": count(limits.TUNE_EPOCHS, none_is=3)}


class TuneSubmit(Request):
    """``POST /v1/tune/jobs``: a dataset to train at ``provider`` (openai | azure)."""

    dataset: str
    provider: str
    epochs: Number = None
    suffix: str | None = None
    poll_ms: Number = None
    CHECKS = {"dataset": _dataset_id, "provider": text(40, required=True),
              "epochs": _optional(limits.TUNE_EPOCHS), "suffix": _suffix,
              "poll_ms": count(limits.TUNE_POLL_MS, none_is=30_000)}


class TuneList(Request):
    """``GET /v1/tune/jobs``: ``limit`` in the query (newest first)."""

    limit: Number = None
    CHECKS = {"limit": lambda v, f: limits.count(50 if v is None or v == "" else v, f, limits.JOBS_LIMIT)}


class TunePath(Request):
    """A route on one fine-tuning job: ``{id}`` in the path (``t-`` and 12 hex digits)."""

    id: str
    CHECKS = {"id": _tune_id}


class TuneDataset(TypedDict):
    """A stored dataset (``tune dataset``'s answer)."""

    id: str
    project: str | None
    base_model: str
    examples: int
    tokens: int
    epochs: int
    trained_tokens: int
    est_cost_usd: str
    sha256: str
    path: str
    skipped: dict[str, int]
    scrubbed: dict[str, int]
    created_by: str
    created_at: str
    problems: list[dict[str, Any]]
    training_price_per_mtok: str
    price_source: str


class TuneJob(TypedDict):
    """A fine-tuning job as the engine tracks it."""

    id: str
    project: str | None
    dataset: str
    provider: str
    provider_name: str
    base_model: str
    epochs: int
    suffix: str | None
    job: str
    state: str
    vendor_status: str | None
    file_id: str | None
    vendor_job_id: str | None
    fine_tuned_model: str | None
    registered_model: str | None
    trained_tokens: int | None
    est_cost_usd: str
    cost_usd: str | None
    error: dict[str, Any] | None
    created_by: str
    created_at: str
    updated_at: str
    finished_at: str | None


class TuneJobs(TypedDict, total=False):
    """``GET /v1/tune/jobs`` (``jobs``) and ``GET /v1/tune/jobs/{id}`` (one job, ``events``, ``events_note``)."""

    jobs: list[TuneJob]
    events: list[dict[str, Any]]
    events_note: str | None
