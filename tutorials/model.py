"""The tutorial file format (issue 18): one TOML file per tutorial in ``tutorials/content/``.

A tutorial is data, validated strictly by these pydantic models (``extra="forbid"`` everywhere:
a misspelt key is an error, not a silently ignored line).  docs/tutorials.md is the authoring
guide; :mod:`tutorials.loader` reads a file and maps every error to its line.

Shape of a file (Markdown in ``body`` and ``hint``)::

    id = "first-steps"                 # [a-z0-9-], unique, the file's stem
    title = "First steps"
    version = 2                        # bump when you change the tutorial
    summary = "Modes, help, the palette, the engine and who you are."

    [[steps]]
    id = "open-help"                   # [a-z0-9-], unique within the tutorial
    kind = "key"                       # key | mode | palette | cli | state
    title = "Open the help"
    body = '''Press **F1** ...'''
    hint = "F1 or ?"
    key = "f1"                         # kind-specific field(s), see below
    solution = { keys = ["f1"] }       # what a test replays

Step kinds and their fields:

- ``key``: ``key`` — a Textual key name (``f1``, ``ctrl+p``, ``question_mark``); done when the
  user presses it (the TUI reports it with ``complete_step``).
- ``mode``: ``mode`` — a mode name of ``tui/screens/modes.py`` (``dashboard``, ``trace``,
  ``search``, ``cost``, ``tutorials``, ``admin``); done when that screen is shown.
- ``palette``: ``action`` — a binding id (an entry of ``tui/screens/actions.py`` ``ACTIONS`` or
  an app binding id such as ``help``); done when that action runs.
- ``cli``: ``command`` — the argv after ``musubi`` shown to the user (placeholders allowed);
  optional ``check`` (a :class:`Check`): when present the engine confirms the command's effect,
  else the client reports the step done after running it.
- ``state``: ``check`` (a :class:`Check`): the engine reads ``route`` (a GET route of the engine,
  asked as the user in the SANDBOX tenant and project), takes the value at ``path`` and compares
  it with ``value`` using ``op`` (one of :data:`OPERATORS`; never ``eval``); optional ``also``,
  a list of more checks that must all hold too.

Placeholders, replaced in ``command``, ``check.route``, ``check.query`` values, ``check.value``
(strings), ``body``, ``hint`` and every solution string: ``{tenant}`` (the sandbox tenant),
``{project}`` (its project name), ``{path}`` (the sandbox folder), ``{user}`` (the user),
``{exports}`` (the home's ``exports/`` folder, the one place inside the home an export may go),
``{run}`` (the sandbox's newest run, once there is one: left as written before).

Every step has a ``solution`` (:class:`Solution`) the replay tests run: ``keys`` to press,
``palette`` (a binding id run through the command palette), ``argv`` (a list of ``musubi``
commands, each a list of strings, run in the sandbox folder against the sandbox tenant) and
``files`` (edits to files of the sandbox folder, made before ``argv`` runs) and ``exit`` (the
exit code the last ``argv`` command must end with, e.g. 3 for a refusal over quota).  A step's
*fingerprint* (:meth:`StepBase.fingerprint`) is a hash of its kind, kind fields, check and
``version``: when a tutorial's version changes, only steps whose fingerprint changed restart.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The fixed comparison operators of a state check (tutorials/checker.py implements each).
OPERATORS: tuple[str, ...] = (
    "eq", "ne", "lt", "le", "gt", "ge", "contains", "not_contains", "exists", "missing",
    "len_eq", "len_ge", "len_le", "truthy", "falsy", "matches",
)
STEP_KINDS: tuple[str, ...] = ("key", "mode", "palette", "cli", "state")
PLACEHOLDERS: tuple[str, ...] = ("tenant", "project", "path", "user", "exports", "run")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# A JSON path: ``$`` then ``.name`` or ``[index]`` parts (``$.projects[0].name``); ``[*]`` maps over a list.
JSON_PATH = re.compile(r"^\$((\.[A-Za-z_][A-Za-z0-9_-]*)|(\[(\*|-?[0-9]+)\]))*$")
SAMPLES: tuple[str, ...] = ("shop",)  # sample repositories shipped in tutorials/sample/


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class FileEdit(_Strict):
    """One edit of a file in the sandbox folder: replace it with ``content``, append to it, or replace ``find``."""

    path: str  # relative to the sandbox folder, no '..'
    content: str
    append: bool = False
    find: str | None = None  # replace the first occurrence of this text with ``content`` (it must be there)

    @field_validator("path")
    @classmethod
    def _relative(cls, v: str) -> str:
        parts = v.replace("\\", "/").split("/")
        if not v or v.startswith("/") or ".." in parts or "" in parts:
            raise ValueError("must be a relative path inside the sandbox folder, without '..' (storage/specs/x.md)")
        return v


class Solution(_Strict):
    """What a replay test does to satisfy a step.

    A shell replay (tests/tutorials) edits ``files`` then runs ``argv``; the TUI's Pilot replay presses
    ``keys`` and runs ``palette`` (and falls back to ``files``/``argv`` for a step that has neither)."""

    files: list[FileEdit] = []
    argv: list[list[str]] = []  # musubi commands, without the leading "musubi"
    palette: str | None = None  # a binding id run through the command palette
    keys: list[str] = []  # Textual key names pressed in order
    exit: int = Field(default=0, ge=0, le=5)  # the exit code the LAST argv command must give (others: 0)

    @model_validator(mode="after")
    def _something(self) -> Solution:
        if not (self.files or self.argv or self.palette or self.keys):
            raise ValueError("a solution needs at least one of files, argv, palette or keys")
        if any(not a for a in self.argv):
            raise ValueError("argv holds commands, each a non-empty list of strings")
        if self.exit and not self.argv:
            raise ValueError("exit is the exit code of the last argv command; give argv too")
        if any(f.find is not None and f.append for f in self.files):
            raise ValueError("a file edit either appends or replaces `find`, not both")
        return self


class Check(_Strict):
    """An observation of engine state: GET ``route`` (with ``query``), the value at ``path``, ``op`` ``value``."""

    route: str  # "/v1/..." a GET route of the engine; placeholders allowed
    query: dict[str, str] = {}
    path: str = "$"
    op: Literal[
        "eq", "ne", "lt", "le", "gt", "ge", "contains", "not_contains", "exists", "missing",
        "len_eq", "len_ge", "len_le", "truthy", "falsy", "matches",
    ]
    value: Any = None

    @field_validator("route")
    @classmethod
    def _route(cls, v: str) -> str:
        if not v.startswith("/v1/") or "?" in v:
            raise ValueError("must be an engine route path starting with /v1/ (put query parameters in `query`)")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not JSON_PATH.match(v):
            raise ValueError("must be a JSON path such as $, $.name, $.projects[0].name or $.findings[*].rule")
        return v

    @model_validator(mode="after")
    def _value(self) -> Check:
        needs_none = self.op in ("exists", "missing", "truthy", "falsy")
        if needs_none and self.value is not None:
            raise ValueError(f"operator {self.op} takes no value")
        if not needs_none and self.value is None:
            raise ValueError(f"operator {self.op} needs a value")
        if self.op in ("len_eq", "len_ge", "len_le") and (not isinstance(self.value, int) or self.value < 0):
            raise ValueError(f"operator {self.op} needs a whole number >= 0 as value")
        if self.op == "matches":
            if not isinstance(self.value, str):
                raise ValueError("operator matches needs a regular expression (a string) as value")
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"operator matches: bad regular expression: {exc}") from None
        return self


class StepBase(_Strict):
    id: str
    title: str = Field(min_length=1, max_length=80)
    body: str = Field(min_length=1)
    hint: str = ""
    version: int = Field(default=1, ge=1)  # bump to make people who did this step do it again
    solution: Solution

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError("must be 1-40 characters of a-z, 0-9 and '-', starting with a letter or digit")
        return v

    def kind_fields(self) -> dict[str, Any]:
        """What the step asks for, without the prose (the fingerprint's input)."""
        skip = {"id", "title", "body", "hint", "solution"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in skip}

    def fingerprint(self) -> str:
        """Hash of kind, kind fields, check and version: prose edits keep progress, real changes restart it."""
        text = json.dumps(self.kind_fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class KeyStep(StepBase):
    kind: Literal["key"]
    key: str = Field(min_length=1)


class ModeStep(StepBase):
    kind: Literal["mode"]
    mode: str = Field(min_length=1)


class PaletteStep(StepBase):
    kind: Literal["palette"]
    action: str = Field(min_length=1)


class CliStep(StepBase):
    kind: Literal["cli"]
    command: list[str] = Field(min_length=1)  # argv after "musubi", shown to the user
    check: Check | None = None
    also: list[Check] = []  # more checks that must hold too

    @model_validator(mode="after")
    def _also(self) -> CliStep:
        if self.also and self.check is None:
            raise ValueError("`also` adds checks to `check`; give check first")
        return self


class StateStep(StepBase):
    kind: Literal["state"]
    check: Check
    also: list[Check] = []  # more checks that must hold too (all of them, in order)


Step = Annotated[KeyStep | ModeStep | PaletteStep | CliStep | StateStep, Field(discriminator="kind")]


class Tutorial(_Strict):
    """One tutorial file."""

    id: str
    title: str = Field(min_length=1, max_length=80)
    version: int = Field(ge=1)
    summary: str = Field(min_length=1, max_length=300)
    order: int = Field(default=100, ge=0)  # the catalogue's order
    sample: Literal["shop"] = "shop"  # the sample repository copied into the sandbox
    steps: list[Step] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG.match(v):
            raise ValueError("must be 1-40 characters of a-z, 0-9 and '-', starting with a letter or digit")
        return v

    @model_validator(mode="after")
    def _unique(self) -> Tutorial:
        seen: set[str] = set()
        for s in self.steps:
            if s.id in seen:
                raise ValueError(f"step id {s.id!r} is used twice; step ids are unique within a tutorial")
            seen.add(s.id)
        return self

    def step(self, step_id: str) -> KeyStep | ModeStep | PaletteStep | CliStep | StateStep | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def fingerprints(self) -> dict[str, str]:
        return {s.id: s.fingerprint() for s in self.steps}


def substitute(value: Any, names: dict[str, str]) -> Any:
    """``value`` with ``{tenant}``-style placeholders replaced (strings, lists, dicts); others unchanged."""
    if isinstance(value, str):
        out = value
        for k in PLACEHOLDERS:
            if k in names:
                out = out.replace("{" + k + "}", names[k])
        return out
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value
