"""Request models and answers of the local embedder tuning routes (issue 19; docs/api.md#local-embedder-tuning).

Kept in their own module so the shared ``models.py``/``responses.py`` stay untouched; the route
table (core/engine/routes_tune_embed.py) and ``core/api/calls.py`` import them here.
"""

from __future__ import annotations

from typing import Any, TypedDict

from core import limits
from core.api.models import Number, Request, count
from core.api.responses import Job


class TuneEmbedStart(Request):
    """``POST /v1/tune/embedders``: train a tuned embedder for the request's project within ``budget_s``."""

    budget_s: Number = 600
    CHECKS = {"budget_s": count(limits.TUNE_BUDGET_S)}


class TuneEmbedActivate(Request):
    """``POST /v1/tune/embedders/activate``: serve ``version`` (0: the base model) once re-embedded."""

    version: Number = None
    CHECKS = {"version": count(limits.TUNE_VERSION)}


class TuneEmbedDelete(Request):
    """``DELETE /v1/tune/embedders/{version}``: remove a tuned version's files; its row stays, ``deleted``."""

    version: Number = None
    CHECKS = {"version": count(limits.TUNE_VERSION)}


class Measures(TypedDict):
    r1: float | None
    r10: float | None
    mrr: float | None


class TunedEmbedder(TypedDict):
    version: int
    state: str  # training | rejected | ready | active | retired | deleted | failed | cancelled | interrupted
    # | stopped
    model_id: str | None
    base_model: str
    job_id: str
    pairs: dict[str, Any]  # per kind on each side, files per side, notes
    pairs_sha256: str
    params: dict[str, Any]
    current: Measures
    tuned: Measures
    steps: int | None
    seconds: float | None
    decision: str | None
    created_by: str
    created_at: str
    activated_at: str | None
    vectors_bytes: int | None  # its vector folder on disk (None: none; removed once it serves nothing)
    files_bytes: int  # its training data, model and measures (tuned/<project>/v<N>/)


class TunedEmbedders(TypedDict):
    project: str
    serving: int  # the version serving search (0: the base model)
    versions: list[TunedEmbedder]  # newest first
    base_vectors_bytes: int | None  # the base model's vector folder on disk (None: none)
    job: Job | None  # the project's running tuning or activation job


class TuneEmbedStarted(TypedDict):
    job: Job


class TuneEmbedActivating(TypedDict):
    job: Job
    version: int


class TuneEmbedDeleted(TypedDict):
    project: str
    version: int
    state: str  # deleted
    freed_bytes: int  # the version's files and vector folder, as they were on disk
