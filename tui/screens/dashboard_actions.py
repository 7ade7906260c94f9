"""The Dashboard's run actions: answer a gate (approve, reject, request changes), apply a diff, cancel, resume.

Each is refused in words before anything is sent when the user lacks its permission
(:mod:`tui.screens.actions`), or when the selected run has nothing to act on; a write runs in a worker
(group ``dashboard-act``), says its outcome in a notification and reads the run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.api import calls
from core.errors import MusubiError
from tui.screens import dashboard_view as view

if TYPE_CHECKING:
    from core.api.runs import ProviderLatency, Run, RunApproval, RunArtefact, RunShown, RunStep
    from tui.context import AppContext


class RunActions:
    """Mixin of :class:`tui.screens.dashboard.DashboardScreen`: the key actions on the selected run."""

    if TYPE_CHECKING:
        ctx: AppContext
        app: Any
        runs: dict[str, Run]
        selected: str | None
        shown: RunShown | None
        steps: dict[str, RunStep]
        step: str | None
        provider_stats: list[ProviderLatency] | None

        def refuse(self, binding_id: str) -> bool: ...
        def notify(self, message: str, **kw: Any) -> None: ...
        def pending_approval(self) -> RunApproval | None: ...
        def artefacts(self) -> list[RunArtefact]: ...
        def load_run(self, run_id: str) -> Any: ...
        def load_output(self, run_id: str, path: str) -> Any: ...
        def load_stats(self, announce: bool = False) -> Any: ...

    def _run_or_say(self) -> Run | None:
        run = self.runs.get(self.selected or "")
        if run is None:
            self.notify("No run selected: start one with musubi run WORKFLOW --feature \"...\".", title="Runs",
                        severity="warning")
        return run

    def _gate_or_say(self, binding_id: str) -> tuple[Run, RunApproval] | None:
        if self.refuse(binding_id):
            return None
        run = self._run_or_say()
        if run is None:
            return None
        ap = self.pending_approval()
        if ap is None:
            self.notify(f"Run {run['id']} has no approval gate waiting: nothing to answer.", title="Approval",
                        severity="warning")
            return None
        return run, ap

    def action_approve(self) -> None:
        found = self._gate_or_say("dash_approve")
        if found is not None:
            run, ap = found
            self.act(calls.run_decide(run["id"], "approve", gate=ap["gate"], shown_sha256=ap["shown_sha256"]),
                     f"Approved gate {ap['gate']!r} of run {run['id']}; the run goes on.")

    def action_reject(self) -> None:
        found = self._gate_or_say("dash_reject")
        if found is None:
            return
        run, ap = found
        from tui.screens.modals import ConfirmModal

        def answer(yes: bool | None) -> None:
            if yes:
                self.act(calls.run_decide(run["id"], "reject", gate=ap["gate"], shown_sha256=ap["shown_sha256"]),
                         f"Rejected gate {ap['gate']!r} of run {run['id']}; the run stops there.")

        self.app.push_screen(ConfirmModal(f"Reject gate {ap['gate']!r}?", f"Run {run['id']} stops at this gate; "
                                          "nothing it proposed is applied.", "Reject", danger=True), answer)

    def action_request_changes(self) -> None:
        found = self._gate_or_say("dash_changes")
        if found is None:
            return
        run, ap = found
        from tui.screens.admin.forms import FormField, FormModal

        def answer(values: dict[str, str] | None) -> None:
            if values:
                self.act(calls.run_decide(run["id"], "request_changes", gate=ap["gate"], comment=values["comment"],
                                          shown_sha256=ap["shown_sha256"]),
                         f"Asked for changes at gate {ap['gate']!r} of run {run['id']}.")

        field = FormField("comment", "What should change:", placeholder="e.g. keep the old flag as an alias")
        self.app.push_screen(FormModal(f"Request changes at gate {ap['gate']!r}", [field], "Send",
                                       intro=f"Run {run['id']}: your comment goes to the agent and the audit log."),
                             answer)

    def action_apply_diff(self) -> None:
        if self.refuse("dash_apply") or (run := self._run_or_say()) is None:
            return
        arts = [a for a in self.artefacts() if a["kind"] == "diff"]
        ready = [a for a in arts if a["state"] == "approved"]
        if not ready:
            why = "its diff is not approved yet (a approves the gate)" if arts else "it proposed no diff"
            self.notify(f"Nothing to apply in run {run['id']}: {why}.", title="Apply", severity="warning")
            return
        self.act(calls.run_apply(run["id"], ready[0]["id"]), f"Applied {ready[0]['name']} to the project.")

    def action_cancel_run(self) -> None:
        if self.refuse("dash_cancel") or (run := self._run_or_say()) is None:
            return
        if run["state"] in view.ENDED:
            self.notify(f"Run {run['id']} is already {run['state']}: nothing to cancel.", title="Cancel",
                        severity="warning")
            return
        from tui.screens.modals import ConfirmModal

        def answer(yes: bool | None) -> None:
            if yes:
                self.act(calls.run_cancel(run["id"]), f"Cancelled run {run['id']}.")

        self.app.push_screen(ConfirmModal(f"Cancel run {run['id']}?", "A call in flight stops; what it already used "
                                          "stays charged. Completed steps are kept.", "Cancel run", danger=True),
                             answer)

    def action_resume_run(self) -> None:
        if self.refuse("dash_resume") or (run := self._run_or_say()) is None:
            return
        if run["state"] not in view.RESUMABLE:
            self.notify(f"Run {run['id']} is {run['state']}: only a stopped, failed or interrupted run resumes.",
                        title="Resume", severity="warning")
            return
        self.act(calls.run_resume(run["id"]), f"Resuming run {run['id']} from its last completed step.")

    # -- runs gaps (issue 12): retry one step, the step's output so far, provider latency --------------

    def action_retry_step(self) -> None:
        if self.refuse("dash_retry") or (run := self._run_or_say()) is None:
            return
        s = self.steps.get(self.step or "")
        if s is None:
            self.notify("No step selected: pick one in the step tree (tab, then up/down).", title="Retry step",
                        severity="warning")
            return
        if run["state"] in ("queued", "running", "waiting"):
            self.notify(f"Run {run['id']} is {run['state']}: a step is retried once the run has stopped (x cancels "
                        "it).", title="Retry step", severity="warning")
            return
        if s["status"] not in view.RETRYABLE_STEPS:
            self.notify(f"Step {s['path']} is {s['status']}: only a failed, cancelled, stopped or interrupted step is "
                        "retried.", title="Retry step", severity="warning")
            return
        from tui.screens.modals import ConfirmModal

        def answer(yes: bool | None) -> None:
            if yes:
                self.act(calls.run_retry(run["id"], s["path"]), f"Retrying step {s['path']} of run {run['id']} with "
                         "new calls.")

        self.app.push_screen(ConfirmModal(f"Retry step {s['path']} ({s['title']})?", "Its calls are sent again as "
                                          "new attempts (charged again); nothing else of the run is re-sent.",
                                          "Retry"), answer)

    def action_step_output(self) -> None:
        if (run := self._run_or_say()) is None:
            return
        if self.step is None:
            self.notify("No step selected: pick one in the step tree.", title="Output", severity="warning")
            return
        self.load_output(run["id"], self.step)

    def action_latency(self) -> None:
        self.load_stats(announce=True)

    def act(self, call: Any, done: str) -> None:
        """Send one run write in a worker; the outcome is a notification, then the run is read again."""
        rid = self.selected
        node: Any = self  # the screen: a worker-contract Widget (its failures are reported, none vanish)

        async def job() -> None:
            try:
                await self.ctx.api.call(call)
            except MusubiError as exc:
                from tui.screens.admin.base import error_title

                node.report_failure(exc, error_title(exc))
            else:
                self.notify(done, title="Runs")
            if rid is not None and rid == self.selected:
                self.load_run(rid)

        node.run_worker(job(), group="dashboard-act", description=str(call.path), exit_on_error=False)
