"""Which git ref each run built on, and the CI pipeline status of that ref (the Dashboard's run detail).

When a run is first published (``run.state``), :meth:`RunPipelines.tap` schedules reading its
project's branch and commit from the repository's ``.git`` files (:mod:`core.integrations.gitref`)
and records them in ``run_refs`` (source ``git``).  ``musubi integrations link-run RUN REF``
replaces that with a ref the user names (source ``user``), e.g. the merge request's branch.
``GET /v1/runs/{id}/pipeline`` answers the newest pipeline of that ref (the one on the recorded
commit when there is one) from the run's system (the linked one, else the first of gitlab,
github, ado that the tenant set up) in one of a few plain states:

``not_configured`` no CI system is set up; ``no_ref`` the run recorded no ref; ``no_pipeline``
the system has no pipeline for the ref; ``running`` (queued or running); ``passed``; ``failed``;
``canceled``; ``unknown`` (a state the vendor did not explain); ``error`` (the vendor refused or
could not be reached: ``message`` says why, in its own words).

Reading needs ``specs.read`` at the run's project (as pipeline status does); linking needs
``runs.start`` there and is audited (``run.pipeline.link``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest, MusubiError, PermissionDenied
from core.integrations.contracts import PipelineRun
from core.storage.base import Delete, Insert

if TYPE_CHECKING:
    from core.engine.access import Caller
    from core.engine.runner import OpRunner
    from core.integrations.service import IntegrationService
    from core.orchestration.service import RunService

log = logging.getLogger("musubi.integrations")

PIPELINE_SYSTEMS = ("gitlab", "github", "ado")
STATES = ("not_configured", "no_ref", "no_pipeline", "running", "passed", "failed", "canceled", "unknown", "error")
_SHOWN = {"queued": "running", "running": "running", "success": "passed", "failed": "failed",
          "canceled": "canceled"}
MAX_REF = 255


def pick(runs: list[PipelineRun], sha: str | None) -> PipelineRun | None:
    """The pipeline on ``sha`` if one ran on it, else the newest (runs come newest first)."""
    if sha:
        on = [r for r in runs if r.sha == sha]
        if on:
            return on[0]
    return runs[0] if runs else None


class RunPipelines:
    """``engine.run_pipelines``: the ``run_refs`` rows in memory and the reads and links over them."""

    def __init__(self, runner: OpRunner, integrations: IntegrationService, runs: RunService,
                 rows: Iterable[dict[str, Any]] = ()) -> None:
        self.e = runner
        self.integrations = integrations
        self.runs = runs
        self.refs: dict[str, dict[str, Any]] = {r["run_id"]: dict(r) for r in rows}
        self._reading: set[str] = set()  # runs whose ref is being read, or was read once (none found): once per run

    # -- recording the ref a run starts on ---------------------------------------------------

    def tap(self, tenant: str, event: dict[str, Any]) -> None:
        """Bus listener: a run in a project first seen queued or running has its ref read (never waits or raises)."""
        try:
            if event.get("type") != "run.state":
                return
            run = event.get("run") or {}
            rid, project = str(run.get("id") or ""), run.get("project")
            if not rid or not project or rid in self.refs or rid in self._reading:
                return
            if run.get("state") not in ("queued", "running"):
                return  # an ended run seen first now (after a restart): HEAD may have moved since it ran
            if len(self._reading) > 100_000:  # memory bound; a run seen again is only read again
                self._reading.clear()
            self._reading.add(rid)
            asyncio.get_running_loop().create_task(self._record_git(tenant, rid, str(project)))
        except Exception:  # a listener must never break the publisher (the run)
            log.exception("run ref tap failed")

    async def _record_git(self, tenant: str, run_id: str, project: str) -> None:
        try:
            from core.integrations.gitref import head

            proj = self.e.state.projects.get(tenant, {}).get(project)
            if proj is None:
                return
            got = await asyncio.to_thread(head, Path(proj["path"]))
            if got is None or run_id in self.refs:
                return
            ref, sha = got
            row = {"run_id": run_id, "tenant_id": tenant, "system": None, "ref": ref[:MAX_REF], "sha": sha,
                   "source": "git", "recorded_at": self.e.now(), "recorded_by": "engine"}

            def op() -> None:
                if run_id in self.refs:
                    return
                self.refs[run_id] = row
                self.e.write(Insert("run_refs", row))

            await self.e.run(None, "run.pipeline.link", f"run:{run_id}", op)
        except Exception:
            log.exception("could not record the git ref of run %s", run_id)
        # _reading keeps the run: its ref is read once per engine, whatever the outcome

    # -- operations --------------------------------------------------------------------------

    async def link(self, ctx: Caller, run_id: str, ref: str, system: str | None) -> dict[str, Any]:
        """Make ``ref`` (on ``system``, or the tenant's configured one) the ref whose pipeline the run shows."""
        ref = ref.strip()
        if not ref or len(ref) > MAX_REF or any(c.isspace() for c in ref):
            raise BadRequest(f"give a branch, tag or commit of at most {MAX_REF} characters, without spaces "
                             "(e.g. feature/login).", field="ref")
        if system is not None and system not in PIPELINE_SYSTEMS:
            raise BadRequest(f"pipeline status comes from {', '.join(PIPELINE_SYSTEMS)}; not {system!r}.",
                             field="system")
        resource = f"run:{run_id}"

        def op() -> dict[str, Any]:
            d = self.runs.get(ctx, run_id)  # 404 unless the caller can see the run
            self.e.require(ctx, "runs.start", project=d.run.project)
            row = {"run_id": run_id, "tenant_id": ctx.tenant, "system": system, "ref": ref, "sha": None,
                   "source": "user", "recorded_at": self.e.now(), "recorded_by": ctx.user}
            before = self.refs.get(run_id)
            if before is not None:
                self.e.write(Delete("run_refs", {"run_id": run_id}))
            self.refs[run_id] = row
            self.e.write(Insert("run_refs", row))
            self.e.audit(ctx.tenant, ctx, "run.pipeline.link", resource, details={
                "ref": ref, "system": system, "previous": before["ref"] if before else None})
            return row

        row = await self.e.run(ctx, "run.pipeline.link", resource, op)
        return await self.status(ctx, run_id, row)

    async def show(self, ctx: Caller, run_id: str) -> dict[str, Any]:
        """The run's ref and the state of its newest pipeline (never raises for a vendor failure: ``error``)."""

        def op() -> dict[str, Any] | None:
            d = self.runs.get(ctx, run_id)
            self.e.require(ctx, "specs.read", project=d.run.project, read=True)
            return self.refs.get(run_id)

        row = await self.e.run(ctx, "run.pipeline", f"run:{run_id}", op)
        return await self.status(ctx, run_id, row)

    async def status(self, ctx: Caller, run_id: str, row: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {"run": run_id, "state": "no_ref", "system": None, "ref": None, "sha": None,
                               "source": None, "pipeline": None, "message": ""}
        if row is not None:
            out.update(ref=row["ref"], sha=row["sha"], source=row["source"], system=row["system"])
        system = out["system"] or await asyncio.to_thread(self._configured, ctx.tenant)
        out["system"] = system
        if system is None:
            out.update(state="not_configured", message="no CI system is set up; set one with: musubi integrations "
                       "set gitlab|github|ado ... (docs/integrations.md)")
            return out
        if row is None:
            out["message"] = ("this run recorded no git ref (its project is not a git repository, or it ran outside "
                              f"a project); link one with: musubi integrations link-run {run_id} BRANCH")
            return out
        try:
            answer = await self.integrations.pipeline_runs(ctx.tenant, system, row["ref"])
        except PermissionDenied:
            raise
        except MusubiError as exc:
            out.update(state="error", message=exc.message)
            return out
        best = pick(answer, row["sha"])
        if best is None:
            out.update(state="no_pipeline", message=f"{system} has no pipeline for {row['ref']}")
            return out
        out.update(state=_SHOWN.get(best.state, "unknown"), pipeline=vars(best),
                   message=f"{best.name or 'pipeline'} {best.id}: {best.vendor_status}")
        return out

    def _configured(self, tenant: str) -> str | None:
        store = self.integrations.store
        settings, secrets = store.settings(tenant), store.secret_names(tenant)
        return next((s for s in PIPELINE_SYSTEMS if settings.get(s) or secrets.get(s)), None)
