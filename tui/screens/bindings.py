"""Every binding id the workstation defines, for keymap validation, docs and tests."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from textual.binding import Binding

# Modules whose classes carry BINDINGS; imported lazily (after the first frame).
MODULES = (
    "tui.app",
    "tui.screens.dashboard",
    "tui.screens.help",
    "tui.screens.debug",
    "tui.screens.modals",
    "tui.screens.tenant_picker",
    "tui.screens.trace",
    "tui.screens.admin.screen",
    "tui.screens.cost",
    "tui.screens.search",
    "tui.screens.tutorials",
    "tui.widgets.tutorial_panel",
    "tui.screens.admin.tenants",
    "tui.screens.admin.members",
    "tui.screens.admin.quotas",
    "tui.screens.admin.audit",
    "tui.screens.admin.forms",
    "tui.widgets.gauge",
    "tui.screens.embedder",
)


def _bindings_of(obj: object) -> Iterable[Binding]:
    for b in getattr(obj, "BINDINGS", ()) or ():
        if isinstance(b, Binding):
            yield b


def all_bindings() -> dict[str, Binding]:
    """binding id -> Binding, over every class defined in :data:`MODULES`."""
    out: dict[str, Binding] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and obj.__module__ == name:
                for b in _bindings_of(obj):
                    if b.id:
                        out.setdefault(b.id, b)
    return out


def all_binding_ids() -> set[str]:
    return set(all_bindings())
