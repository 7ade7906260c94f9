"""Request models and answers of the integrations routes (issue 17; docs/api.md#integrations).

Kept in their own module so the shared ``models.py``/``responses.py`` stay untouched; the
route table (core/engine/routes_integrations.py) and ``core/api/calls.py`` import them here.
"""

from __future__ import annotations

from typing import Any, TypedDict

from core.api.models import Request, flag
from core.api.models import text as text_check  # `text` is also a field name below
from core.api.responses import Job
from core.errors import BadRequest

MAX_SYSTEM = 16
MAX_REF = 255


def _mapping(v: object, field: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise BadRequest(f"{field} must be a JSON object of names to text.", field=field)
    return v


def _names(v: object, field: str) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadRequest(f"{field} must be a list of names.", field=field)
    return v


class SystemPath(Request):
    """A route on one system: ``{system}`` in the path (jira, ado, gitlab, github, slack, teams)."""

    system: str
    CHECKS = {"system": text_check(MAX_SYSTEM, required=True)}


class IntegrationSet(SystemPath):
    """``PUT /v1/integrations/{system}``: settings and secrets to merge, names to remove."""

    settings: Any = None
    secrets: Any = None
    unset: Any = None
    CHECKS = {"system": text_check(MAX_SYSTEM, required=True), "settings": _mapping, "secrets": _mapping,
              "unset": _names}


class SyncStart(SystemPath):
    """``POST /v1/sync/{system}``: sync the request's project into ``project_key`` of the tracker."""

    project_key: Any = None
    dry_run: Any = False
    resolve: Any = None
    include: Any = None
    CHECKS = {"system": text_check(MAX_SYSTEM, required=True), "project_key": text_check(200, required=True),
              "dry_run": flag, "resolve": _mapping, "include": _names}


class PipelineQuery(SystemPath):
    """``GET /v1/integrations/{system}/pipelines?ref=``: CI runs for a branch or commit."""

    ref: Any = None
    project_key: Any = None
    CHECKS = {"system": text_check(MAX_SYSTEM, required=True), "ref": text_check(MAX_REF, required=True),
              "project_key": text_check(200)}


class NotifySend(SystemPath):
    """``POST /v1/integrations/{system}/notify``: one message through Slack or Teams."""

    title: Any = None
    text: Any = None
    target: Any = None
    CHECKS = {"system": text_check(MAX_SYSTEM, required=True), "title": text_check(150, required=True),
              "text": text_check(3000, required=True), "target": text_check(200)}


# -- answers ------------------------------------------------------------------------------------


class IntegrationRow(TypedDict):
    system: str
    configured: bool
    installed: bool
    settings: dict[str, str]
    secrets: list[str]


class Integrations(TypedDict):
    tenant: str
    integrations: list[IntegrationRow]


class IntegrationSaved(TypedDict):
    system: str
    settings: dict[str, str]
    secrets: list[str]


class IntegrationTested(TypedDict):
    system: str
    ok: bool
    detail: dict[str, Any]


class SyncStarted(TypedDict):
    job: Job


class PipelineRunRow(TypedDict):
    system: str
    id: str
    ref: str
    state: str
    vendor_status: str
    url: str
    sha: str
    name: str


class PipelineStatus(TypedDict):
    system: str
    ref: str
    source: str  # vendor (asked now) | webhook (the vendor failed; what its webhooks last said)
    runs: list[PipelineRunRow]


class Notified(TypedDict):
    system: str
    target: str
    id: str


# -- run pipelines (issue 17 gaps): the CI pipeline of the ref a run built on (docs/integrations.md#pipelines) --


class RunPipelinePath(Request):
    """``GET /v1/runs/{id}/pipeline``: the run's ref and its newest pipeline."""

    id: str
    CHECKS = {"id": text_check(64, required=True)}


class RunPipelineLink(RunPipelinePath):
    """``PUT /v1/runs/{id}/pipeline``: show the pipeline of ``ref`` (on ``system``) for this run."""

    ref: Any = None
    system: Any = None
    CHECKS = {"id": text_check(64, required=True), "ref": text_check(MAX_REF, required=True),
              "system": text_check(MAX_SYSTEM)}


class RunPipeline(TypedDict):
    run: str
    state: str  # not_configured | no_ref | no_pipeline | running | passed | failed | canceled | unknown | error
    system: str | None
    ref: str | None
    sha: str | None
    source: str | None  # git (read at the run's start) | user (linked)
    pipeline: PipelineRunRow | None
    message: str


# -- Entra sign-in (issue 17 gaps): delegated tokens for Teams (Graph) and Azure DevOps by device flow --


class EntraLogin(TypedDict):
    system: str
    state: str  # pending | signed_in | failed | none
    user_code: str | None  # enter it at verification_uri (pending)
    verification_uri: str | None
    message: str | None  # Entra's own instruction, code and address included
    expires_at: str | None
    account: str | None  # who signed in
    error: str | None  # Entra's words when it failed
