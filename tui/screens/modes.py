"""The six modes, in one table: name, title, keys and what each screen is for.

The app's bindings, the mode bar, the command palette and the help screen all
read this table, so a mode is added or renamed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModeSpec:
    name: str
    title: str
    fkey: str
    digit: str
    summary: str

    @property
    def binding_id(self) -> str:
        return f"mode_{self.name}"

    @property
    def keys(self) -> str:
        return f"{self.fkey},{self.digit}"


MODES: tuple[ModeSpec, ...] = (
    ModeSpec("dashboard", "Dashboard", "f2", "1", "runs live, approvals; the engine, tenant, quota headroom"),
    ModeSpec("trace", "Trace", "f3", "2", "traceability: requirement → design → task → code → test"),
    ModeSpec("search", "Search", "f4", "3", "code search: live results, preview, filters, (re)index"),
    ModeSpec("cost", "Cost", "f5", "4", "token and cost estimates for a run, before you start it"),
    ModeSpec("tutorials", "Tutorials", "f6", "5",
             "guided lessons in a sandbox, each step checked; F9: the running step"),
    ModeSpec("admin", "Admin", "f7", "6", "tenants, members and roles, quotas, audit"),
)

BY_NAME: dict[str, ModeSpec] = {m.name: m for m in MODES}
