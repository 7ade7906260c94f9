"""Reading a connector's settings and secrets: one place that names what is missing and how to set it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.integrations.contracts import IntegrationError, WorkItem

_MARKER = re.compile(r"<!-- musubi:id=(\S+) fp=([0-9a-f]*) -->\s*$")
_PARENT = re.compile(r"^Part of #(\d+)$", re.M)


def need(settings: Mapping[str, Any], system: str, name: str, example: str) -> str:
    value = settings.get(name)
    if not isinstance(value, str) or not value.strip():
        raise IntegrationError(f"{system}: setting {name!r} is missing; set it with "
                               f"`musubi integrations set {system} {name}={example}`.", kind="config", system=system)
    return value.strip()


def secret(secrets: Mapping[str, str], system: str, name: str = "token") -> str:
    value = secrets.get(name)
    if not value:
        raise IntegrationError(f"{system}: secret {name!r} is missing; store it with "
                               f"`musubi integrations set {system} --secret {name}` (read from stdin).",
                               kind="config", system=system)
    return value


def base_url(settings: Mapping[str, Any], system: str, name: str, default: str | None, example: str) -> str:
    value = settings.get(name) or default
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise IntegrationError(f"{system}: setting {name!r} must be an http(s) URL such as {example}.",
                               kind="config", system=system)
    return value.rstrip("/")


def marker_labels(artefact: str, fingerprint: str) -> list[str]:
    """Labels marking an item musubi manages (no spaces: Jira refuses them in labels)."""
    return ["musubi", "musubi:" + artefact.replace(" ", "_"), "musubi-fp:" + fingerprint]


def from_labels(labels: list[str]) -> tuple[str | None, str]:
    """(artefact, pushed fingerprint) from :func:`marker_labels`."""
    artefact = next((lb[7:] for lb in labels if lb.startswith("musubi:")), None)
    pushed = next((lb[10:] for lb in labels if lb.startswith("musubi-fp:")), "")
    return artefact, pushed


def body_with_marker(item: WorkItem, parent_number: str | None) -> str:
    """A Markdown body (GitHub, GitLab): the text, the spec location, the parent, musubi's marker last."""
    parts = [item.body.strip()] if item.body.strip() else []
    spec = f"[{item.source}]({item.source_url})" if item.source_url else f"`{item.source}`"
    parts.append(f"Spec: {spec}")
    if parent_number:
        parts.append(f"Part of #{parent_number}")
    parts.append(f"<!-- musubi:id={item.artefact.replace(' ', '_')} fp={item.fingerprint()} -->")
    return "\n\n".join(parts)


def from_marker(body: str) -> tuple[str, str, str | None] | None:
    """(artefact, pushed fingerprint, parent "#N" or None) from :func:`body_with_marker`, else None."""
    m = _MARKER.search(body)
    if m is None:
        return None
    parent = _PARENT.search(body)
    return m.group(1), m.group(2), f"#{parent.group(1)}" if parent else None
