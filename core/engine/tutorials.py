"""The tutorial service (issue 18): the catalogue, per-user progress, step checks, sandboxes.

Held by the engine as ``engine.tutorials``; its routes are core/engine/routes_tutorials.py and the
wire shapes core/api/tutorials.py.  Any signed-in user may run tutorials (no permission): every
operation acts on the caller's own progress (``ctx.user``) and sandbox, and every event it audits
goes to the sandbox tenant's chain, never to the tenant the request named.

- The catalogue is read from ``tutorials/content`` (plus ``MUSUBI_TUTORIALS_DIR``) when first
  needed and again whenever a file there changes (size or mtime); a malformed file is a 400
  naming the file and line.
- Progress lives in ``tutorial_progress`` / ``tutorial_steps`` (migration 008), read once, lazily,
  then kept in memory; each change is one op (committed before the answer).
- Steps with an engine check (``state``, or ``cli`` with ``check``) are checked by ``probe``, a
  coroutine the route module hands in that reads an engine GET route as the user in the sandbox.
  When a step becomes the current one and its check already holds, it completes at once.
- A changed tutorial keeps a step's done/skipped state only while the step's fingerprint is the
  same (tutorials/model.py): the others restart and are listed in ``restarted``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.audit import ts_text
from core.config import env
from core.engine.access import Caller
from core.engine.sandbox import SandboxService, sandbox_name
from core.errors import BadRequest, Conflict, MusubiError, NotFound
from core.storage.base import Delete, Insert, Update

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.engine.tenancy import TenancyService
    from tutorials.model import Tutorial

# probe(sandbox, user, route, query) -> the route's JSON answer; raises MusubiError when refused
Probe = Callable[[dict[str, Any], str, str, dict[str, str]], Awaitable[Any]]
ENGINE_CHECKED = ("state",)  # and cli steps that carry a check


@dataclass
class StepMark:
    fingerprint: str
    state: str  # done | skipped
    at: datetime


@dataclass
class Record:
    """One user's progress in one tutorial (a ``tutorial_progress`` row and its ``tutorial_steps``)."""

    user: str
    tutorial: str
    version: int
    state: str  # new | in_progress | done
    generation: int
    sandbox: dict[str, Any] | None
    restarted: list[str]
    started_at: datetime
    finished_at: datetime | None
    sandbox_at: datetime | None = None
    steps: dict[str, StepMark] = field(default_factory=dict)
    stored: bool = False  # the progress row exists


def _checked(step: Any) -> bool:
    return step.kind in ENGINE_CHECKED or (step.kind == "cli" and step.check is not None)


def _names(rec: Record | None, user: str, exports: str, latest_run: Callable[[str], str | None]) -> dict[str, str]:
    names = {"user": user, "exports": exports}
    if rec is not None and rec.sandbox:
        names.update(tenant=rec.sandbox["tenant"], project=rec.sandbox["project"], path=rec.sandbox["path"])
        run = latest_run(rec.sandbox["tenant"])
        if run is not None:
            names["run"] = run
    return names


class TutorialService:
    """``engine.tutorials``: operations over the catalogue and the progress records."""

    def __init__(self, runner: OpRunner, tenancy: TenancyService) -> None:
        import tutorials  # only the package: tutorials.loader (pydantic) loads when a tutorial is first needed

        self.r = runner
        self.sandboxes = SandboxService(runner, tenancy, Path(tutorials.__file__).parent / "sample")
        self._catalog: tuple[tuple[Any, ...], dict[str, Tutorial]] | None = None
        self._recs: dict[tuple[str, str], Record] | None = None
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._replay: Any = None  # the sandboxes' replay provider, made at the first sandbox run
        self.latest_run: Callable[[str], str | None] = lambda tenant: None  # set by the engine (runs)

    def replay_for(self, tenant: str) -> Any:
        """The replay provider when ``tenant`` is a tutorial sandbox (its project is in the sandboxes folder).

        A sandbox's runs never reach a real model: they replay ``tutorials/replay/replies.toml``,
        labelled "replay (recorded responses, not a model)" like every replay provider."""
        root = str(self.sandboxes.root) + "/"
        if not any(p["path"].startswith(root) for p in self.r.state.projects.get(tenant, {}).values()):
            return None
        if self._replay is None:
            from core.orchestration.contracts import ProviderSettings
            from core.orchestration.providers import load_factories

            factory = load_factories()[0].get("replay")
            if factory is None:
                raise MusubiError("the replay provider is not installed (entry point musubi.providers: replay); "
                                  "reinstall musubi-workstation.", code="provider_not_configured")
            import tutorials

            replies = Path(tutorials.__file__).parent / "replay" / "replies.toml"
            self._replay = factory(ProviderSettings(name="tutorial-replay", kind="replay", source="tutorials",
                                                    extra={"file": str(replies)}))
        return self._replay

    @property
    def exports(self) -> str:
        return str(self.r.paths.exports)

    # -- the catalogue ----------------------------------------------------------------------

    def folders(self) -> list[Path]:
        from tutorials.loader import CONTENT_DIR

        extra = env("MUSUBI_TUTORIALS_DIR")
        return [CONTENT_DIR, *([Path(extra).expanduser()] if extra else [])]

    def catalog(self) -> dict[str, Tutorial]:
        """Every tutorial, read again when a file changed; a bad file is a 400 naming file and line."""
        from tutorials.loader import files_in, load_all

        files = files_in(self.folders())
        key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        if self._catalog is None or self._catalog[0] != key:
            self._catalog = (key, load_all(self.folders()))
        return self._catalog[1]

    def tutorial(self, tid: str) -> Tutorial:
        t = self.catalog().get(tid)
        if t is None:
            raise NotFound(f"no tutorial {tid!r}; the tutorials are: {', '.join(self.catalog()) or 'none'}. "
                           "See: musubi tutorial list", resource=f"tutorial:{tid}")
        return t

    # -- records ----------------------------------------------------------------------------

    async def records(self) -> dict[tuple[str, str], Record]:
        if self._recs is None:
            fn = getattr(self.r.storage, "tutorial_rows", None)
            rows: tuple[list[dict[str, Any]], list[dict[str, Any]]] = await self.r.read(fn) if fn else ([], [])
            if self._recs is None:  # another call may have loaded them meanwhile
                recs: dict[tuple[str, str], Record] = {}
                for p in rows[0]:
                    sb = None
                    if p["sandbox_tenant"]:
                        sb = {"tenant": p["sandbox_tenant"], "project": p["sandbox_project"],
                              "path": p["sandbox_path"], "created_at": ts_text(p["sandbox_at"])}
                    recs[(p["user_name"], p["tutorial_id"])] = Record(
                        p["user_name"], p["tutorial_id"], int(p["version"]), p["state"], int(p["generation"]), sb,
                        list(json.loads(p["restarted"] or "[]")), p["started_at"], p["finished_at"],
                        sandbox_at=p["sandbox_at"], stored=True)
                for s in rows[1]:
                    rec = recs.get((s["user_name"], s["tutorial_id"]))
                    if rec is not None:
                        rec.steps[s["step_id"]] = StepMark(s["fingerprint"], s["state"], s["marked_at"])
                self._recs = recs
        return self._recs

    async def live_sandboxes(self) -> dict[str, str]:
        """Live sandbox tenants and the user each was made for: not cleaned, active, the user still a member.

        A remote session (docs/remote.md) may act in these tenants for that user, besides its own tenant."""
        out: dict[str, str] = {}
        st = self.r.state
        for (user, _), rec in (await self.records()).items():
            t = st.tenants.get(rec.sandbox["tenant"]) if rec.sandbox else None
            if rec.sandbox and t is not None and t.status == "active" and st.is_member(rec.sandbox["tenant"], user):
                out[rec.sandbox["tenant"]] = user
        return out

    def _lock(self, user: str, tid: str) -> asyncio.Lock:
        return self._locks.setdefault((user, tid), asyncio.Lock())

    async def _run(self, ctx: Caller, rec: Record | None, action: str, resource: str,
                   fn: Callable[[], Any]) -> Any:
        """One op in the sandbox tenant's context (never the tenant the request named)."""
        # no sandbox: a name no tenant can have, so not even a bug's own audit event lands elsewhere
        where = rec.sandbox["tenant"] if rec is not None and rec.sandbox else "(tutorial)"
        me = replace(ctx, tenant=where, project=None)
        try:
            return await self.r.run(me, action, resource, fn)
        except BaseException:
            self._recs = None  # memory may be ahead of storage now: read it again next time
            raise

    # -- views ------------------------------------------------------------------------------

    def reconcile(self, rec: Record, tut: Tutorial) -> tuple[dict[str, StepMark], list[str]]:
        """The marks that still count for ``tut`` and the steps whose change undid theirs."""
        fps = tut.fingerprints()
        kept = {sid: m for sid, m in rec.steps.items() if fps.get(sid) == m.fingerprint}
        undone = [s.id for s in tut.steps if s.id in rec.steps and s.id not in kept]
        return kept, undone

    def progress(self, user: str, tut: Tutorial, rec: Record | None) -> dict[str, Any]:
        if rec is None:
            return {"tutorial": tut.id, "user": user, "version": tut.version, "state": "new",
                    "current": tut.steps[0].id, "done": [], "skipped": [], "restarted": [], "total": len(tut.steps),
                    "sandbox": None, "started_at": None, "finished_at": None}
        kept, undone = self.reconcile(rec, tut)
        done = [s.id for s in tut.steps if s.id in kept and kept[s.id].state == "done"]
        skipped = [s.id for s in tut.steps if s.id in kept and kept[s.id].state == "skipped"]
        current = next((s.id for s in tut.steps if s.id not in kept), None)
        restarted = [s for s in dict.fromkeys([*rec.restarted, *undone]) if s not in kept and tut.step(s)]
        state = rec.state
        if state == "done" and current is not None:
            state = "in_progress"  # a new version added or changed steps
        return {"tutorial": tut.id, "user": user, "version": tut.version, "state": state, "current": current,
                "done": done, "skipped": skipped, "restarted": restarted, "total": len(tut.steps),
                "sandbox": dict(rec.sandbox) if rec.sandbox else None, "started_at": ts_text(rec.started_at),
                "finished_at": ts_text(rec.finished_at) if state == "done" else None}

    def step_view(self, step: Any, state: str, names: dict[str, str]) -> dict[str, Any]:
        from tutorials.model import substitute

        check = getattr(step, "check", None)
        sol = step.solution.model_dump(mode="json")
        return {
            "id": step.id, "kind": step.kind, "title": step.title, "body": substitute(step.body, names),
            "hint": substitute(step.hint, names),
            "state": state, "fingerprint": step.fingerprint(),
            "key": getattr(step, "key", None), "mode": getattr(step, "mode", None),
            "action": getattr(step, "action", None),
            "command": substitute(list(step.command), names) if step.kind == "cli" else None,
            "check": substitute(check.model_dump(mode="json"), names) if check is not None else None,
            "also": [substitute(c.model_dump(mode="json"), names) for c in getattr(step, "also", [])],
            "solution": substitute(sol, names),
        }

    async def listing(self, ctx: Caller) -> list[dict[str, Any]]:
        recs = await self.records()
        return [{"id": t.id, "title": t.title, "version": t.version, "summary": t.summary, "order": t.order,
                 "steps": len(t.steps), "progress": self.progress(ctx.user, t, recs.get((ctx.user, t.id)))}
                for t in self.catalog().values()]

    async def show(self, ctx: Caller, tid: str) -> dict[str, Any]:
        tut = self.tutorial(tid)
        rec = (await self.records()).get((ctx.user, tid))
        prog = self.progress(ctx.user, tut, rec)
        names = _names(rec, ctx.user, self.exports, self.latest_run)
        states = {**{s: "done" for s in prog["done"]}, **{s: "skipped" for s in prog["skipped"]}}
        return {"id": tut.id, "title": tut.title, "version": tut.version, "summary": tut.summary, "order": tut.order,
                "steps": [self.step_view(s, states.get(s.id, "todo"), names) for s in tut.steps], "progress": prog}

    async def progress_of(self, ctx: Caller, tid: str) -> dict[str, Any]:
        tut = self.tutorial(tid)
        return self.progress(ctx.user, tut, (await self.records()).get((ctx.user, tid)))

    # -- writes (inside ops) ----------------------------------------------------------------

    def _key(self, rec: Record) -> dict[str, str]:
        return {"user_name": rec.user, "tutorial_id": rec.tutorial}

    def _save(self, rec: Record) -> None:
        now = self.r.now()
        sb = rec.sandbox or {}
        row = {"version": rec.version, "state": rec.state, "generation": rec.generation,
               "sandbox_tenant": sb.get("tenant"), "sandbox_project": sb.get("project"),
               "sandbox_path": sb.get("path"), "sandbox_at": rec.sandbox_at if sb else None,
               "restarted": json.dumps(rec.restarted), "started_at": rec.started_at,
               "finished_at": rec.finished_at, "updated_at": now}
        if rec.stored:
            self.r.write(Update("tutorial_progress", row, self._key(rec)))
        else:
            self.r.write(Insert("tutorial_progress", {**self._key(rec), **row}))
            rec.stored = True

    def _sync_version(self, rec: Record, tut: Tutorial) -> None:
        """Drop marks a changed tutorial undid (rows too), remember them as restarted, adopt the version."""
        kept, undone = self.reconcile(rec, tut)
        for sid in [s for s in rec.steps if s not in kept]:
            self.r.write(Delete("tutorial_steps", {**self._key(rec), "step_id": sid}))
        if undone or rec.version != tut.version or len(kept) != len(rec.steps):
            rec.steps = kept
            rec.restarted = [s for s in dict.fromkeys([*rec.restarted, *undone]) if s not in kept]
            rec.version = tut.version
            if rec.state == "done" and any(s.id not in kept for s in tut.steps):
                rec.state, rec.finished_at = "in_progress", None

    def _mark(self, ctx: Caller, rec: Record, tut: Tutorial, step: Any, state: str, how: str) -> None:
        now = self.r.now()
        key = {**self._key(rec), "step_id": step.id}
        row = {"fingerprint": step.fingerprint(), "state": state, "marked_at": now}
        if step.id in rec.steps:
            self.r.write(Update("tutorial_steps", row, key))
        else:
            self.r.write(Insert("tutorial_steps", {**key, **row}))
        rec.steps[step.id] = StepMark(step.fingerprint(), state, now)
        rec.restarted = [s for s in rec.restarted if s != step.id]
        if rec.sandbox:
            me = replace(ctx, tenant=rec.sandbox["tenant"], project=None)
            self.r.audit(rec.sandbox["tenant"], me, "tutorial.step", f"tutorial:{tut.id}",
                         details={"step": step.id, "state": state, "how": how, "version": tut.version})

    def _finish_if_done(self, ctx: Caller, rec: Record, tut: Tutorial) -> dict[str, Any] | None:
        """All steps done or skipped: the tutorial is done and its sandbox cleaned (answered for the folder)."""
        if any(s.id not in rec.steps for s in tut.steps) or rec.state == "done":
            return None
        rec.state, rec.finished_at = "done", self.r.now()
        cleaned = rec.sandbox
        if cleaned:
            me = replace(ctx, tenant=cleaned["tenant"], project=None)
            skipped = sum(m.state == "skipped" for m in rec.steps.values())
            self.r.audit(cleaned["tenant"], me, "tutorial.finish", f"tutorial:{tut.id}",
                         details={"version": tut.version, "skipped": skipped})
            self.sandboxes.clean(ctx, cleaned, "finished")
        rec.sandbox = None
        self._save(rec)
        return cleaned

    # -- operations -------------------------------------------------------------------------

    async def start(self, ctx: Caller, tid: str, probe: Probe) -> dict[str, Any]:
        tut = self.tutorial(tid)
        async with self._lock(ctx.user, tid):
            recs = await self.records()
            rec = recs.get((ctx.user, tid))
            if rec is not None and rec.state == "done" and all(s.id in self.reconcile(rec, tut)[0] for s in tut.steps):
                await self._forget(ctx, rec, tut, "restart")  # starting a finished tutorial starts it over
                rec = recs.get((ctx.user, tid))
            resumed = rec is not None and self.sandboxes.exists(rec.sandbox)
            stale = rec.sandbox if rec is not None and rec.sandbox and not resumed else None
            if stale:  # e.g. its folder was deleted by hand: what still runs there stops with it
                await self.sandboxes.stop_activity(ctx, stale["tenant"])
            if not resumed:
                gen = self.sandboxes.free_generation(ctx.user, tid, rec.generation if rec else 0)
                tenant = sandbox_name(ctx.user, tid, gen)
                folder = await self.sandboxes.prepare_folder(tenant, tut.sample)
            now = self.r.now()

            def op() -> Record:
                r = rec
                if r is None:
                    r = Record(ctx.user, tid, tut.version, "in_progress", 0, None, [], now, None)
                if stale:  # its tenant was suspended or its folder deleted by hand: clean what is left
                    self.sandboxes.clean(ctx, stale, "replaced")
                if not resumed:
                    r.generation = gen
                    r.sandbox = self.sandboxes.create(ctx, tenant, tut.sample, folder, tid)
                    r.sandbox_at = now
                self._sync_version(r, tut)
                r.state = "in_progress" if r.state == "new" else r.state
                sb = r.sandbox or {}
                self.r.audit(sb["tenant"], replace(ctx, tenant=sb["tenant"], project=None), "tutorial.start",
                             f"tutorial:{tid}", details={"version": tut.version, "resumed": resumed})
                self._save(r)
                recs[(ctx.user, tid)] = r
                return r

            try:
                rec = await self._run(ctx, None, "tutorial.start", f"tutorial:{tid}", op)
            except BaseException:
                if not resumed:
                    await self.sandboxes.remove_folder({"path": str(folder)})
                raise
            if stale:
                await self.sandboxes.remove_folder(stale)
            assert rec is not None and rec.sandbox is not None
            sandbox = dict(rec.sandbox)
            completed = await self._advance(ctx, rec, tut, probe)
            return {"progress": self.progress(ctx.user, tut, rec), "sandbox": sandbox, "resumed": resumed,
                    "completed_now": completed}

    async def _advance(self, ctx: Caller, rec: Record, tut: Tutorial, probe: Probe) -> list[str]:
        """Complete the current step at once while it has an engine check that already holds."""
        done: list[str] = []
        while rec.sandbox:
            step = next((s for s in tut.steps if s.id not in rec.steps), None)
            if step is None or not _checked(step):
                break
            outcome = await self._evaluate(rec, step, probe)
            if not outcome.ok:
                break
            await self._record(ctx, rec, tut, step, "done", "already")
            done.append(step.id)
        return done

    async def _evaluate(self, rec: Record, step: Any, probe: Probe) -> Any:
        """The step's check and its ``also`` checks, in order: the first that does not hold, else the last."""
        from tutorials.checker import Outcome, evaluate
        from tutorials.model import substitute

        names = _names(rec, rec.user, self.exports, self.latest_run)
        outcome: Outcome | None = None
        for chk in [step.check, *getattr(step, "also", [])]:
            route = substitute(chk.route, names)
            query = substitute(dict(chk.query), names)
            try:
                data = await probe(dict(rec.sandbox or {}), rec.user, route, query)
            except MusubiError as exc:
                return Outcome(False, None, f"GET {route} was refused: {exc.message}")
            outcome = evaluate(data, chk.path, chk.op, substitute(chk.value, names))
            if not outcome.ok:
                return outcome
        return outcome

    async def _record(self, ctx: Caller, rec: Record, tut: Tutorial, step: Any, state: str, how: str) -> bool:
        """Mark one step (and finish the tutorial when it was the last); True when the sandbox was cleaned."""
        cleaned: list[dict[str, Any] | None] = []
        kept = self.reconcile(rec, tut)[0]
        if rec.sandbox and all(s.id == step.id or s.id in kept for s in tut.steps):
            # this mark finishes the tutorial: stop what still runs in the sandbox while it is active
            await self.sandboxes.stop_activity(ctx, rec.sandbox["tenant"])

        def op() -> None:
            self._sync_version(rec, tut)
            self._mark(ctx, rec, tut, step, state, how)
            self._save(rec)
            cleaned.append(self._finish_if_done(ctx, rec, tut))

        await self._run(ctx, rec, f"tutorial.{'skip' if state == 'skipped' else 'step'}", f"tutorial:{tut.id}", op)
        if cleaned and cleaned[0]:
            await self.sandboxes.remove_folder(cleaned[0])
            return True
        return False

    def _started(self, rec: Record | None, tut: Tutorial) -> Record:
        if rec is None or rec.state == "new" or (rec.sandbox is None and rec.state != "done"):
            raise Conflict(f"tutorial {tut.id!r} is not started; start it with: musubi tutorial start {tut.id}",
                           resource=f"tutorial:{tut.id}")
        return rec

    def _step(self, tut: Tutorial, sid: str) -> Any:
        step = tut.step(sid)
        if step is None:
            raise NotFound(f"tutorial {tut.id!r} has no step {sid!r}; its steps: "
                           f"{', '.join(s.id for s in tut.steps)}.", resource=f"tutorial:{tut.id}")
        return step

    async def check(self, ctx: Caller, tid: str, sid: str, probe: Probe) -> dict[str, Any]:
        tut = self.tutorial(tid)
        step = self._step(tut, sid)
        if not _checked(step):
            raise BadRequest(f"step {sid!r} is a {step.kind} step: the workstation sees it done, the engine "
                             f"cannot check it. Report it with: musubi tutorial done {tid} {sid}", field="step")
        async with self._lock(ctx.user, tid):
            rec = self._started((await self.records()).get((ctx.user, tid)), tut)
            if rec.sandbox is None:  # finished: nothing left to look at
                prog = self.progress(ctx.user, tut, rec)
                ok = sid in prog["done"]
                return {"tutorial": tid, "step": sid, "ok": ok, "observed": None, "progress": prog,
                        "completed_now": [], "detail": "the tutorial is finished; its sandbox was cleaned."}
            outcome = await self._evaluate(rec, step, probe)
            completed: list[str] = []
            kept = self.reconcile(rec, tut)[0]
            if outcome.ok and (sid not in kept or kept[sid].state != "done"):
                await self._record(ctx, rec, tut, step, "done", "check")
                completed = await self._advance(ctx, rec, tut, probe)
            return {"tutorial": tid, "step": sid, "ok": outcome.ok, "detail": outcome.detail,
                    "observed": outcome.observed, "progress": self.progress(ctx.user, tut, rec),
                    "completed_now": completed}

    async def complete_step(self, ctx: Caller, tid: str, sid: str, probe: Probe) -> dict[str, Any]:
        tut = self.tutorial(tid)
        step = self._step(tut, sid)
        if _checked(step):
            raise BadRequest(f"step {sid!r} is checked by the engine against your sandbox; ask for the check "
                             f"with: musubi tutorial check {tid} {sid}", field="step")
        return await self._client_mark(ctx, tut, step, "done", probe)

    async def skip(self, ctx: Caller, tid: str, sid: str, probe: Probe) -> dict[str, Any]:
        tut = self.tutorial(tid)
        return await self._client_mark(ctx, tut, self._step(tut, sid), "skipped", probe)

    async def _client_mark(self, ctx: Caller, tut: Tutorial, step: Any, state: str, probe: Probe) -> dict[str, Any]:
        async with self._lock(ctx.user, tut.id):
            rec = self._started((await self.records()).get((ctx.user, tut.id)), tut)
            if rec.sandbox is None:
                raise Conflict(f"tutorial {tut.id!r} is finished; start it again with: musubi tutorial start {tut.id}",
                               resource=f"tutorial:{tut.id}")
            kept = self.reconcile(rec, tut)[0]
            completed: list[str] = []
            if not (step.id in kept and (kept[step.id].state == "done" or state == "skipped")):
                how = "skip" if state == "skipped" else "client"
                await self._record(ctx, rec, tut, step, state, how)
                completed = await self._advance(ctx, rec, tut, probe)
            return {"tutorial": tut.id, "step": step.id, "state": rec.steps[step.id].state if step.id in rec.steps
                    else state, "progress": self.progress(ctx.user, tut, rec), "completed_now": completed}

    async def reset(self, ctx: Caller, tid: str) -> dict[str, Any]:
        tut = self.tutorial(tid)
        async with self._lock(ctx.user, tid):
            rec = (await self.records()).get((ctx.user, tid))
            cleaned = await self._forget(ctx, rec, tut, "reset") if rec is not None else None
            rec = (await self.records()).get((ctx.user, tid))
            return {"tutorial": tid, "cleaned": cleaned, "progress": self.progress(ctx.user, tut, rec)}

    async def _forget(self, ctx: Caller, rec: Record | None, tut: Tutorial, why: str) -> dict[str, Any] | None:
        """Clean the sandbox and drop the marks; the record stays (state new) so the next sandbox gets a new name."""
        if rec is None:
            return None
        cleaned = rec.sandbox
        if cleaned:  # its runs and jobs still going are cancelled before it is suspended and deleted
            await self.sandboxes.stop_activity(ctx, cleaned["tenant"])

        def op() -> None:
            if cleaned:
                me = replace(ctx, tenant=cleaned["tenant"], project=None)
                self.r.audit(cleaned["tenant"], me, f"tutorial.{why}", f"tutorial:{tut.id}",
                             details={"version": tut.version, "done": len(rec.steps)})
                self.sandboxes.clean(ctx, cleaned, why)
            for sid in rec.steps:
                self.r.write(Delete("tutorial_steps", {**self._key(rec), "step_id": sid}))
            rec.steps, rec.restarted, rec.sandbox = {}, [], None
            rec.state, rec.finished_at, rec.version = "new", None, tut.version
            self._save(rec)

        await self._run(ctx, rec, f"tutorial.{why}", f"tutorial:{tut.id}", op)
        if cleaned:
            await self.sandboxes.remove_folder(cleaned)
        return dict(cleaned) if cleaned else None
