"""The tutorials API (issue 18): request models and answers of ``/v1/tutorials`` (docs/api.md#tutorials).

Any signed-in user may run tutorials: every route is ``open`` (no role needed in the request's
tenant) and acts only on the caller's own progress and sandbox.  A sandbox is a throw-away tenant
``tut-<user>-<tutorial>[-N]`` owned by the caller plus a project folder copied from the sample
repository (``tutorials/sample/``) under ``$MUSUBI_HOME/sandboxes/``; nothing touches the caller's
real tenants or repositories.  docs/tutorials.md is the user's and author's page.

Routes (the ``op`` names the route table uses; ``{id}`` is a tutorial id such as ``first-steps``):

====================================  =========================  ==================  ==================
route                                 op (``tutorials.*``)       request model       answer
====================================  =========================  ==================  ==================
``GET  /v1/tutorials``                ``tutorials.list``         ``Empty``           ``list[TutorialSummary]``
``GET  /v1/tutorials/{id}``           ``tutorials.show``         ``TutorialPath``    ``TutorialShown``
``GET  /v1/tutorials/{id}/progress``  ``tutorials.progress``     ``TutorialPath``    ``Progress``
``POST /v1/tutorials/{id}/start``     ``tutorials.start``        ``TutorialPath``    ``Started``
``POST /v1/tutorials/{id}/check``     ``tutorials.check``        ``StepRequest``     ``Checked``
``POST /v1/tutorials/{id}/complete``  ``tutorials.complete_step`` ``StepRequest``    ``StepDone``
``POST /v1/tutorials/{id}/skip``      ``tutorials.skip``         ``StepRequest``     ``StepDone``
``POST /v1/tutorials/{id}/reset``     ``tutorials.reset``        ``TutorialPath``    ``ResetDone``
====================================  =========================  ==================  ==================

- ``start`` creates the sandbox (or keeps the one already there: resume), then checks every
  not-yet-done step that has an engine check, in order, and completes those already satisfied
  (``completed_now``).  Starting again resumes where the user left off.
- ``check`` evaluates the step's check (a ``state`` step, or a ``cli`` step with a ``check``)
  against the SANDBOX tenant and project as the caller, and records the step done when it holds.
  ``ok: false`` is an answer (200), not an error; ``detail`` says what was seen and what was
  expected.  Refused (400) for a step with no check: use ``complete``.
- ``complete`` records a ``key``, ``mode``, ``palette`` or ``cli`` (without check) step the
  client saw done; refused (400) for steps the engine checks itself.
- ``skip`` records a step as skipped (counted as not done; ``start`` never auto-skips).
- ``reset`` cleans the sandbox (the folder is deleted, the sandbox tenant suspended and its
  project unregistered; its audit chain is kept) and forgets the progress; the next ``start``
  makes a fresh sandbox tenant (``-2``, ``-3``, ...).  Finishing a tutorial cleans its sandbox too.
- When a tutorial file's version changes, a step keeps its done/skipped state only if its
  fingerprint (tutorials/model.py) is unchanged; ``Progress.restarted`` names the others.

Client calls: ``core/api/calls.py`` ``tutorials``, ``tutorial_show``, ``tutorial_progress``,
``tutorial_start``, ``tutorial_check``, ``tutorial_complete``, ``tutorial_skip``, ``tutorial_reset``.
Light like :mod:`core.api.models` (msgspec only, no pydantic).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from core.api.models import Request
from core.errors import BadRequest

TUTORIAL_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
STEP_KINDS: tuple[str, ...] = ("key", "mode", "palette", "cli", "state")
STEP_STATES: tuple[str, ...] = ("todo", "done", "skipped")
TUTORIAL_STATES: tuple[str, ...] = ("new", "in_progress", "done")


def _slug(what: str) -> Any:
    def check(v: object, field: str) -> str:
        if not isinstance(v, str) or not TUTORIAL_ID.match(v):
            raise BadRequest(
                f"{str(v)[:60]!r} is not a {what} id: 1-40 characters of a-z, 0-9 and '-'. "
                "See the tutorials with: musubi tutorial list", field=field,
            )
        return v

    return check


# -- requests -----------------------------------------------------------------------------------


class TutorialPath(Request):
    """A route on one tutorial: ``{id}`` in the path."""

    id: str
    CHECKS = {"id": _slug("tutorial")}


class StepRequest(Request):
    """``POST /v1/tutorials/{id}/check|complete|skip``: the step, by its id, in the body."""

    id: str
    step: Any = None
    CHECKS = {"id": _slug("tutorial"), "step": _slug("step")}


# -- answers ------------------------------------------------------------------------------------


class Sandbox(TypedDict):
    tenant: str  # tut-<user>-<tutorial>[-N]
    project: str  # the sample's project name in that tenant
    path: str  # the sandbox folder (absolute)
    created_at: str


class Progress(TypedDict):
    tutorial: str
    user: str
    version: int  # the tutorial version the progress refers to (the file's current one once started)
    state: str  # TUTORIAL_STATES
    current: str | None  # the first step neither done nor skipped
    done: list[str]  # step ids, in tutorial order
    skipped: list[str]
    restarted: list[str]  # steps that changed with the last version change and must be done again
    total: int
    sandbox: Sandbox | None  # None before start and after reset/finish
    started_at: str | None
    finished_at: str | None


class CheckSpec(TypedDict):
    route: str  # placeholders substituted once a sandbox exists
    query: dict[str, str]
    path: str
    op: str
    value: Any


class SolutionSpec(TypedDict):
    files: list[dict[str, Any]]  # {"path", "content", "append", "find"}
    argv: list[list[str]]
    palette: str | None
    keys: list[str]
    exit: int  # the exit code the last argv command ends with


class StepView(TypedDict):
    id: str
    kind: str  # STEP_KINDS
    title: str
    body: str  # Markdown
    hint: str
    state: str  # STEP_STATES
    fingerprint: str
    key: str | None  # kind key
    mode: str | None  # kind mode
    action: str | None  # kind palette: a binding id
    command: list[str] | None  # kind cli: argv after "musubi"
    check: CheckSpec | None  # kind state, or cli with a check
    also: list[CheckSpec]  # more checks that must hold too (all, in order)
    solution: SolutionSpec


class TutorialSummary(TypedDict):
    id: str
    title: str
    version: int
    summary: str
    order: int
    steps: int
    progress: Progress


class TutorialShown(TypedDict):
    id: str
    title: str
    version: int
    summary: str
    order: int
    steps: list[StepView]
    progress: Progress


class Started(TypedDict):
    progress: Progress
    sandbox: Sandbox
    resumed: bool  # the sandbox was already there
    completed_now: list[str]  # steps found already satisfied at start


class Checked(TypedDict):
    tutorial: str
    step: str
    ok: bool
    detail: str  # what was observed against what was expected, or why it could not be read
    observed: Any  # the value at the check's path (None when absent)
    progress: Progress
    completed_now: list[str]  # later steps found already satisfied once this one was done


class StepDone(TypedDict):
    tutorial: str
    step: str
    state: str  # done | skipped
    progress: Progress
    completed_now: list[str]  # later steps found already satisfied once this one was done


class ResetDone(TypedDict):
    tutorial: str
    cleaned: Sandbox | None
    progress: Progress


__all__ = [
    "STEP_KINDS", "STEP_STATES", "TUTORIAL_STATES", "Checked", "Progress", "ResetDone", "Sandbox", "Started",
    "StepDone", "StepRequest", "StepView", "TutorialPath", "TutorialShown", "TutorialSummary",
]
