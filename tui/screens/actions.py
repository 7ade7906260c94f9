"""Every screen action in one table: what it does (palette and help) and the permission it needs.

The command palette lists each action of the shown screen with its key; the footer and the
palette mark the actions the user's permissions (``/v1/whoami``) do not allow, and those
actions are refused before a form opens.  The engine checks every call again: this table
only spares the user a form filled in vain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from textual.binding import Binding
from textual.dom import DOMNode

from tui.context import AppContext

LOCK = "✗"  # footer mark of an action the user may not run (with the word in palette and help)
# Not a permission of the shown tenant: whoami's "system_admin" says whether the user holds it.
SYSTEM_ADMIN = "tenant.manage in tenant default"


@dataclass(frozen=True)
class ActionSpec:
    help: str
    permission: str | None = None


ACTIONS: dict[str, ActionSpec] = {
    # Dashboard (mode 1): the selected run
    "dash_approve": ActionSpec("approve the selected run's pending gate (what it shows is what you approve)",
                               "runs.approve"),
    "dash_reject": ActionSpec("reject the selected run's pending gate; the run stops there", "runs.approve"),
    "dash_changes": ActionSpec("request changes at the pending gate, with a comment for the agent", "runs.approve"),
    "dash_apply": ActionSpec("apply the run's approved diff to the project (refused on any conflict)", "runs.approve"),
    "dash_cancel": ActionSpec("cancel the selected run (completed steps are kept)", "runs.cancel"),
    "dash_resume": ActionSpec("resume a stopped, failed or interrupted run; a failed step runs again", "runs.start"),
    "dash_retry": ActionSpec("retry the selected failed, cancelled or stopped step with new calls (nothing else "
                             "is re-sent)", "runs.start"),
    "dash_output": ActionSpec("read the selected step's output so far from the engine again", None),
    "dash_latency": ActionSpec("show this tenant's provider latency (p50/p95 per provider and model)", None),
    # issue 19: the Dashboard's fine-tuning line (tui/screens/dashboard_jobs.py)
    "dash_jobs": ActionSpec("list this tenant's fine-tuning jobs: state, progress, the model or the error", None),
    "dash_jobs_dismiss": ActionSpec("dismiss the finished fine-tuning job the Dashboard shows", None),
    # Trace (mode 2)
    "trace_rescan": ActionSpec("re-scan the repository now (it also re-scans by itself)", "specs.read"),
    "trace_uncovered": ActionSpec("show only requirements with a missing column, or all", "specs.read"),
    "trace_component": ActionSpec("filter by the next component", "specs.read"),
    "trace_status": ActionSpec("filter by the next requirement status", "specs.read"),
    "trace_search": ActionSpec("filter requirements by id, title or text", "specs.read"),
    "trace_impact": ActionSpec("everything to revisit when the selected requirement changes", "specs.read"),
    "trace_open": ActionSpec("open the selected location in $EDITOR", "specs.read"),
    "trace_review": ActionSpec("mark the selected requirement reviewed (clears ⚠ suspect)", "specs.write"),
    "trace_accept": ActionSpec("accept the selected suggested link (kept in links.yml)", "specs.write"),
    "trace_reject": ActionSpec("reject the selected suggested link (kept in links.yml)", "specs.write"),
    "trace_export": ActionSpec("export the matrix as HTML, Markdown, CSV or JSON to a file", "specs.read"),
    # Search (mode 3)
    "search_leave": ActionSpec("leave the query box, to the results; then 1-6 switch screens", None),
    "search_query": ActionSpec("back to the query box: type to search (digits type into the query)", "search.query"),
    "search_path": ActionSpec("path glob filter, such as src/**/*.py", "search.query"),
    "search_lang": ActionSpec("language filter: python, typescript, markdown, …", "search.query"),
    "search_clear": ActionSpec("clear both filters: search the whole project again", "search.query"),
    "search_index": ActionSpec("(re)index this project; the job's progress shows above the results", "index.build"),
    "search_open": ActionSpec("open the selected result in $EDITOR at its first line", "search.query"),
    # issue 19: Search ▸ v, the embedder versions dialog (tui/screens/embedder.py)
    "search_embedder": ActionSpec("embedder versions: which model serves search; tune, activate, roll back",
                                  "search.query"),
    "embedder_tune": ActionSpec("tune a new embedder version on this project's pairs within the budget",
                                "embedder.tune"),
    "embedder_activate": ActionSpec("serve the highlighted version (re-embeds the index; search serves meanwhile)",
                                    "embedder.tune"),
    "embedder_rollback": ActionSpec("serve the model that served before the current one", "embedder.tune"),
    "embedder_budget": ActionSpec("edit the training time budget (60 to 86,400 seconds)", None),
    "embedder_delete": ActionSpec("delete the highlighted version's files for good (asks first; its record stays)",
                                  "embedder.tune"),
    # Cost (mode 4)
    "cost_estimate": ActionSpec("estimate again now", "quotas.read"),
    "cost_export": ActionSpec("export the estimate as JSON, CSV or Markdown to a file", "quotas.read"),
    "cost_tree": ActionSpec("show or hide the file tree to pick files", None),
    "cost_clear": ActionSpec("forget the chosen files", None),
    # Tutorials (mode 5; issue 18).  The tutorial panel's own keys (tui/widgets/tutorial_panel.py) are not here:
    # the app lists them in the palette itself (tui.tutorial.palette_commands), on every mode.
    "tutorials_start": ActionSpec("start or resume the highlighted tutorial in its sandbox", None),
    "tutorials_reset": ActionSpec("forget the highlighted tutorial's progress and clean its sandbox (asks first)",
                                  None),
    # Admin (mode 6)
    "admin_prev_tab": ActionSpec("previous Admin tab", None),
    "admin_next_tab": ActionSpec("next Admin tab", None),
    "tenants_create": ActionSpec("create a tenant (system administrators)", SYSTEM_ADMIN),
    "tenants_suspend": ActionSpec("suspend the selected tenant (system administrators)", SYSTEM_ADMIN),
    "tenants_resume": ActionSpec("resume the selected tenant (system administrators)", SYSTEM_ADMIN),
    "tenants_refresh": ActionSpec("reload the tenant list", None),
    "members_add": ActionSpec("add a member with a role, tenant-wide or for one project", "members.manage"),
    "members_change_role": ActionSpec("change the selected member's role", "members.manage"),
    "members_remove": ActionSpec("remove the selected member", "members.manage"),
    "members_refresh": ActionSpec("reload members and roles", None),
    "quotas_edit": ActionSpec("change the selected quota's limit", "quotas.manage"),
    "quotas_new": ActionSpec("create a quota (tokens, requests or dollars per hour/day/month)", "quotas.manage"),
    "quotas_refresh": ActionSpec("reload quotas and usage", "quotas.read"),
    "audit_verify": ActionSpec("verify the audit hash chain of this tenant", "audit.read"),
    "audit_export": ActionSpec("export the audit log (JSONL, CSV, Parquet) to a file", "audit.export"),
    "audit_filter": ActionSpec("filter events by actor, action, time or outcome", "audit.read"),
    "audit_copy": ActionSpec("copy the selected event as JSON", "audit.read"),
    "audit_refresh": ActionSpec("reload the audit log", "audit.read"),
    # identity / SSO (Admin ▸ SSO)
    "sso_map": ActionSpec("map an IdP group or app role to a tenant role (applied at each sign-in)", "members.manage"),
    "sso_unmap": ActionSpec("remove the selected group/role rule", "members.manage"),
    "sso_policy": ActionSpec("require SSO for this tenant, with a break-glass owner", "tenant.manage"),
    "sso_refresh": ActionSpec("reload the SSO rules and policy", "members.manage"),
    # notify (issue 17): Admin ▸ Integrations
    "integrations_set": ActionSpec("set a setting of the selected integration (not a secret)", "integrations.manage"),
    "integrations_secret": ActionSpec("store a secret of the selected integration (typed hidden, never shown back)",
                                      "integrations.manage"),
    "integrations_test": ActionSpec("test the selected integration's connection (the vendor's own error text)",
                                    "integrations.manage"),
    "integrations_refresh": ActionSpec("reload the integrations", "integrations.manage"),
}


def allowed(ctx: AppContext, binding_id: str | None) -> bool:
    """Whether the user may run the action; unknown until whoami answered, then the engine decides."""
    spec = ACTIONS.get(binding_id or "")
    if spec is None or spec.permission is None or ctx.whoami is None:
        return True
    if spec.permission == SYSTEM_ADMIN:
        return bool(ctx.whoami.get("system_admin"))
    return ctx.can(spec.permission)


def refusal(ctx: AppContext, binding_id: str) -> str | None:
    """Why the user may not run the action (naming the permission and the fix), or None if they may."""
    if allowed(ctx, binding_id):
        return None
    perm = ACTIONS[binding_id].permission
    if perm == SYSTEM_ADMIN:
        return (f"{ctx.user} is not a system administrator (needs {perm}). An owner of tenant default can make "
                f"them one (musubi --tenant default member add {ctx.user} --role owner); nothing was changed.")
    roles = ", ".join(ctx.whoami["roles"] if ctx.whoami else []) or "no role"
    return (f"{ctx.user} ({roles}) lacks {perm} in tenant {ctx.tenant}. An owner or admin can grant a role that "
            f"holds it (musubi member add {ctx.user} --role ROLE); nothing was changed.")


def refuse_if_not_allowed(node: DOMNode, ctx: AppContext, binding_id: str) -> bool:
    """Notify and return True when the action must not start (before any form is shown)."""
    why = refusal(ctx, binding_id)
    if why is None:
        return False
    node.app.notify(why, title="Permission needed", severity="warning", timeout=8)
    return True


def node_actions(node: DOMNode) -> list[tuple[Binding, str]]:
    """(binding, keys as shown) of ``node``'s actions in the table, after any keymap, in declaration order."""
    keys: dict[str, list[str]] = {}
    first: dict[str, Binding] = {}
    for key, bindings in node._bindings.key_to_bindings.items():
        for b in bindings:
            if b.id in ACTIONS:
                first.setdefault(b.id, b)
                keys.setdefault(b.id, []).append(node.app.get_key_display(replace(b, key=key)))
    order = [b.id for b in type(node).BINDINGS if isinstance(b, Binding) and b.id in first]
    order += [i for i in first if i not in order]
    return [(first[i], ", ".join(dict.fromkeys(keys[i]))) for i in order if i]


def mark_bindings(node: DOMNode, ctx: AppContext) -> None:
    """Prefix the footer text of actions the user may not run with :data:`LOCK` (and remove it again)."""
    changed = False
    for key, bindings in node._bindings.key_to_bindings.items():
        new = []
        for b in bindings:
            base = (b.description or "").removeprefix(LOCK)
            desc = base if allowed(ctx, b.id) else f"{LOCK}{base}"
            if b.id in ACTIONS and desc != b.description:
                b = replace(b, description=desc)
                changed = True
            new.append(b)
        node._bindings.key_to_bindings[key] = new
    if changed:
        node.refresh_bindings()


@dataclass(frozen=True)
class PaletteAction:
    title: str
    help: str
    run: Callable[[], Any]
    id: str | None = None  # the binding id (a running tutorial's palette step watches for it)


def palette_entry(screen_title: str, b: Binding, ctx: AppContext, key: str, run: Callable[[], Any]) -> PaletteAction:
    spec = ACTIONS[b.id or ""]
    base = (b.description or "").removeprefix(LOCK)
    lock = "" if allowed(ctx, b.id) else f" — {LOCK} needs {spec.permission}, which you lack"
    return PaletteAction(f"{screen_title}: {base}", f"{key} · {spec.help}{lock}", run, b.id)
