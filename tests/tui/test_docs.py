"""docs/tui.md stays in step with the code: every binding id of the shell is documented,
and the screenshots are the snapshot tests' current pictures."""

from __future__ import annotations

import importlib
from pathlib import Path

from textual.binding import Binding

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "tui.md"
# The shell's modules; Trace and Cost document their keys next to their own code.
SHELL_MODULES = (
    "tui.app", "tui.screens.help", "tui.screens.debug", "tui.screens.modals", "tui.screens.tenant_picker",
    "tui.screens.admin.screen", "tui.screens.admin.tenants", "tui.screens.admin.members",
    "tui.screens.admin.quotas", "tui.screens.admin.audit", "tui.screens.admin.forms", "tui.widgets.gauge",
    "tui.screens.tutorials", "tui.widgets.tutorial_panel",
)


def shell_binding_ids() -> set[str]:
    ids = set()
    for name in SHELL_MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, type) and obj.__module__ == name:
                ids |= {b.id for b in getattr(obj, "BINDINGS", []) if isinstance(b, Binding) and b.id}
    return ids


def test_every_shell_binding_id_is_documented() -> None:
    text = DOC.read_text()
    ids = shell_binding_ids()
    assert len(ids) > 40
    assert sorted(i for i in ids if f"`{i}`" not in text) == []


def test_shell_modules_are_in_the_binding_list() -> None:
    from tui.screens.bindings import MODULES

    assert set(SHELL_MODULES) <= set(MODULES)


def test_screenshots_are_the_current_snapshots() -> None:
    snaps = ROOT / "tests" / "tui" / "__snapshots__"
    for doc_name, snap_name in (
        ("dashboard-120x40.svg", "test_dashboard_snapshots/test_dashboard_snapshot[approval-120x40].svg"),
        ("admin-quotas-80x24.svg", "test_snapshots/test_screen[admin_quotas-80x24].svg"),
        ("tutorials-step-80x24.svg",
         "test_tutorials_snapshots/test_tutorials_snapshot[step-in-progress-truecolor].svg"),
    ):
        assert (ROOT / "docs" / "screenshots" / doc_name).read_bytes() == (snaps / snap_name).read_bytes(), (
            f"docs/screenshots/{doc_name} is stale: copy tests/tui/__snapshots__/{snap_name}"
        )
