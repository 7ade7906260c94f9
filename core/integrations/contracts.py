"""What a connector implements, and the values that cross between core and a connector.

A connector module exposes a factory under the entry-point group ``musubi.connectors``
(name = the system: ``jira``, ``github``, ``gitlab``, ``ado``, ``slack``, ``teams``).  The
factory is called with the tenant's settings and secrets for that system and returns an
object implementing some of: :class:`Tracker` (work items, for ``musubi sync``),
:class:`Pipelines` (CI status for a ref), :class:`Notifier` (chat messages), plus
:class:`Connector` (``test`` and ``close``) which every one implements.

Connector failures reach core as :class:`IntegrationError` (or a subclass of it): core never
sees the connector's HTTP types.  Its message is the vendor's own error text, already
redacted; ``code`` says what kind of failure it was (``auth``, ``not_found``, ``rate_limited``,
``validation``, ``upstream``, ``config``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.errors import MusubiError

ENTRY_POINT_GROUP = "musubi.connectors"
TRACKERS = ("jira", "ado", "gitlab", "github")
NOTIFIERS = ("slack", "teams")
SYSTEMS = TRACKERS + NOTIFIERS
KINDS = ("requirement", "task")  # what `musubi sync` sends: requirements -> epics/features, tasks -> stories


class IntegrationError(MusubiError):
    """A vendor refused or failed a call; ``message`` is the vendor's own text (redacted)."""

    code = "integration_error"
    http_status = 502

    def __init__(self, message: str, *, kind: str = "upstream", system: str = "", status: int | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.system = system
        self.status = status
        self.request_id = request_id

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system, "kind": self.kind, "status": self.status, "request_id": self.request_id,
                "message": self.message}


def error_info(exc: MusubiError, system: str = "") -> dict[str, Any]:
    """What a connector failure says, without secrets: kind, status, request id, message.

    Connectors raise their HTTP layer's typed errors (MusubiError subclasses with ``kind``,
    ``status``, ``request_id``) or :class:`IntegrationError`; both read the same here.
    """
    return {"system": getattr(exc, "system", "") or getattr(exc, "connector", "") or system,
            "kind": str(getattr(exc, "kind", exc.code)), "status": getattr(exc, "status", None),
            "request_id": getattr(exc, "request_id", None), "message": exc.message}


def text_fingerprint(*parts: Any) -> str:
    """A short stable hash of what an item says (JSON of ``parts``, whitespace runs folded in strings)."""

    def norm(v: Any) -> Any:
        if isinstance(v, str):
            return re.sub(r"\s+", " ", v).strip()
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v

    raw = json.dumps(norm(list(parts)), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class WorkItem:
    """What one artefact should look like in the tracker."""

    artefact: str  # REQ-AUTH-001, T001, billing:2.1
    kind: str  # requirement | task
    title: str
    body: str  # plain text; the connector renders it (ADF for Jira, Markdown for GitHub/GitLab, HTML for ADO)
    parent: str | None = None  # artefact ID of the requirement a task serves (first one cited)
    source: str = ""  # where it is written: "path:line"
    source_url: str | None = None  # a web link to that place, when the settings give a repository URL

    def fingerprint(self) -> str:
        return text_fingerprint(self.kind, self.title, self.body, self.parent or "")


@dataclass
class RemoteItem:
    """An item in the tracker that musubi manages (it carries musubi's marker for ``artefact``)."""

    artefact: str
    key: str  # PROJ-12, #12, !3, 456: how people write it
    id: str  # the vendor's stable id
    url: str
    title: str
    status: str
    done: bool
    fingerprint: str  # :func:`text_fingerprint` of the text as the tracker holds it (connector-defined, stable)
    parent_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineRun:
    """One CI run for a ref: ``state`` is normalised (queued | running | success | failed | canceled | unknown)."""

    system: str
    id: str
    ref: str
    state: str
    vendor_status: str
    url: str = ""
    sha: str = ""
    name: str = ""


@dataclass(frozen=True)
class Message:
    """A chat notification: title, text, facts, optional buttons (``[(label, action_id, value)]``) and a link."""

    title: str
    text: str
    facts: tuple[tuple[str, str], ...] = ()
    link: tuple[str, str] | None = None  # (label, url)
    buttons: tuple[tuple[str, str, str], ...] = ()
    severity: str = "info"  # info | good | warning | danger


@dataclass(frozen=True)
class Delivered:
    system: str
    target: str  # channel id, "webhook"
    id: str = ""  # Slack ts; empty for webhooks (Teams answers 202 with no body)


# An outbound write as the audit log sees it: (action, object id, outcome, details without secrets).
AuditFn = Callable[[str, str, str, Mapping[str, Any]], None]


@runtime_checkable
class Connector(Protocol):
    system: str

    async def test(self) -> dict[str, Any]:
        """One cheap authenticated call; answers who we are there, raises IntegrationError with the vendor's text."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class Tracker(Connector, Protocol):
    async def list_managed(self, project: str, max_items: int) -> list[RemoteItem]:
        """Every item in ``project`` carrying musubi's marker (all pages, at most ``max_items``)."""
        ...

    async def create(self, project: str, item: WorkItem, parent_key: str | None) -> RemoteItem: ...

    async def update(self, project: str, remote: RemoteItem, item: WorkItem, parent_key: str | None) -> RemoteItem: ...


@runtime_checkable
class Pipelines(Connector, Protocol):
    async def pipeline_status(self, project: str, ref: str) -> list[PipelineRun]: ...


@runtime_checkable
class Notifier(Connector, Protocol):
    async def send(self, message: Message, target: str | None = None) -> Delivered: ...


Factory = Callable[[Mapping[str, Any], Mapping[str, str]], Connector]
AsyncFn = Callable[..., Awaitable[Any]]


# -- teams bot (issue 17): a notifier that can answer a click in the click's conversation --------------


@runtime_checkable
class Replier(Notifier, Protocol):
    async def reply(self, service_url: str, conversation: str, reply_to: str | None, text: str) -> str:
        """Post ``text`` as a reply (the bot's confirmation of a click); the new activity's id."""
        ...

    async def update_card(self, service_url: str, conversation: str, activity_id: str, message: Message) -> str:
        """Replace the card ``activity_id`` the bot posted with ``message`` (a decided gate, no buttons)."""
        ...
