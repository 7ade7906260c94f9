"""Finding connectors: entry points of group ``musubi.connectors`` (core never imports ``connectors``).

A package declares, in its ``pyproject.toml``::

    [project.entry-points."musubi.connectors"]
    jira = "connectors.jira:factory"

and :func:`factory` loads it by name.  The engine reads the group once per process.  The
test hook ``MUSUBI_TEST_CONNECTORS`` (``name=module:attr,...``) adds entries without a
reinstall, for tests that run the engine on a checkout whose entry points are not installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from functools import cache

from core.config import env
from core.errors import MusubiError
from core.integrations.contracts import ENTRY_POINT_GROUP, Factory

TEST_HOOK = "MUSUBI_TEST_CONNECTORS"


@cache
def _installed() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str]:
    """Connector name -> ``module:attr`` of its factory."""
    found = dict(_installed())
    for item in (env(TEST_HOOK) or "").split(","):
        name, _, target = item.strip().partition("=")
        if name and ":" in target:
            found[name] = target
    return found


def factory(system: str) -> Factory:
    """The factory of ``system``'s connector; a clear error when none is installed or it cannot load."""
    target = available().get(system)
    if target is None:
        raise MusubiError(f"no connector for {system!r} is installed (entry-point group {ENTRY_POINT_GROUP!r}); "
                          "reinstall musubi-workstation, which ships jira, github, gitlab, ado, slack and teams.",
                          code="connector_missing")
    module, _, attr = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise MusubiError(f"the {system} connector ({target}) cannot be loaded: {exc}.",
                          code="connector_missing") from None
    return fn


def clear() -> None:
    """Forget the entry points read (tests that monkeypatch ``importlib.metadata.entry_points``)."""
    _installed.cache_clear()
