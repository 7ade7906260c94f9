"""The tutorial routes of the TUI tests' fake engine (``/v1/tutorials``), as core/engine/tutorials.py answers them.

Test code only.  The catalogue is the shipped one (``tutorials/content``, read by the real loader), so
the fake's tutorials are the real ones; progress is kept in memory for one user.  Engine checks are
evaluated by the real checker (:func:`tutorials.checker.evaluate`) on what the rest of the fake
engine answers to the check's GET route (``probe``, given by tests/tui/fakes.py); a test can make a
step's check hold (``satisfied``) or fail (``unsatisfied``) whatever the data says.
tests/tui/test_api_contract.py holds these answers to a real engine's.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from core.api import tutorials as tq
from core.api.models import parse
from core.errors import BadRequest, Conflict, MusubiError, NotFound

Json = dict[str, Any]
TS = "2026-01-15T14:30:00.000000Z"  # the fake's clock (tests/tui/fakes.py NOW)
Probe = Callable[[str, dict[str, str], str], Awaitable[Any]]  # (route, query, sandbox tenant) -> answer


def _checked(step: Any) -> bool:
    return step.kind == "state" or (step.kind == "cli" and step.check is not None)


class FakeTutorials:
    """``/v1/tutorials`` for one user over the shipped tutorials."""

    def __init__(self, user: str = "alice", home: str = "/tmp/musubi-snap-home") -> None:
        from tutorials.loader import load_all

        self.user = user
        self.home = home
        self.catalog = dict(sorted(load_all().items(), key=lambda kv: (kv[1].order, kv[0])))
        self.recs: dict[str, Json] = {}  # tutorial id -> {state, generation, sandbox, steps: {id: state}}
        self.satisfied: set[tuple[str, str]] = set()  # (tutorial, step) whose check holds, whatever the data
        self.unsatisfied: set[tuple[str, str]] = set()  # ... or fails
        self.sandboxes: list[str] = []  # every sandbox tenant made (tests read it)
        self.probe: Probe | None = None

    # -- dispatch -------------------------------------------------------------------------------

    async def answer(self, method: str, path: str, body: Json | None) -> Any:
        parts = path.split("/")[3:]  # after /v1/tutorials
        if not parts:
            return [self._summary(t) for t in self.catalog.values()]
        tid, verb = parts[0], (parts[1] if len(parts) > 1 else "")
        if verb in ("check", "complete", "skip"):
            req = parse(tq.StepRequest, {**(body or {}), "id": tid})
            tut = self._tutorial(req.id)
            step = self._step(tut, req.step)
            if verb == "check":
                return await self._check(tut, step)
            if verb == "complete" and _checked(step):
                raise BadRequest(f"step {step.id!r} is checked by the engine against your sandbox; ask for the "
                                 f"check with: musubi tutorial check {tid} {step.id}", field="step")
            return await self._mark_client(tut, step, "skipped" if verb == "skip" else "done")
        tut = self._tutorial(parse(tq.TutorialPath, {"id": tid}).id)
        if method == "GET" and verb == "":
            return self._shown(tut)
        if method == "GET" and verb == "progress":
            return self._progress(tut)
        if verb == "start":
            return await self._start(tut)
        if verb == "reset":
            cleaned = self._forget(tut)
            return {"tutorial": tut.id, "cleaned": cleaned, "progress": self._progress(tut)}
        raise NotFound(f"fake engine has no route {method} {path}")

    def _tutorial(self, tid: str) -> Any:
        t = self.catalog.get(tid)
        if t is None:
            raise NotFound(f"no tutorial {tid!r}; the tutorials are: {', '.join(self.catalog)}. "
                           "See: musubi tutorial list", resource=f"tutorial:{tid}")
        return t

    def _step(self, tut: Any, sid: str) -> Any:
        step = tut.step(sid)
        if step is None:
            raise NotFound(f"tutorial {tut.id!r} has no step {sid!r}.", resource=f"tutorial:{tut.id}")
        return step

    # -- views ----------------------------------------------------------------------------------

    def _names(self, tut: Any) -> dict[str, str]:
        sb = (self.recs.get(tut.id) or {}).get("sandbox")
        names = {"user": self.user, "exports": f"{self.home}/exports"}
        if sb:
            names.update(tenant=sb["tenant"], project=sb["project"], path=sb["path"])
        return names

    def _progress(self, tut: Any) -> Json:
        rec = self.recs.get(tut.id)
        steps: dict[str, str] = rec["steps"] if rec else {}
        done = [s.id for s in tut.steps if steps.get(s.id) == "done"]
        skipped = [s.id for s in tut.steps if steps.get(s.id) == "skipped"]
        return {"tutorial": tut.id, "user": self.user, "version": tut.version,
                "state": rec["state"] if rec else "new",
                "current": next((s.id for s in tut.steps if s.id not in steps), None),
                "done": done, "skipped": skipped, "restarted": [], "total": len(tut.steps),
                "sandbox": copy.deepcopy(rec["sandbox"]) if rec and rec["sandbox"] else None,
                "started_at": TS if rec and rec["state"] != "new" else None,
                "finished_at": TS if rec and rec["state"] == "done" else None}

    def _summary(self, tut: Any) -> Json:
        return {"id": tut.id, "title": tut.title, "version": tut.version, "summary": tut.summary,
                "order": tut.order, "steps": len(tut.steps), "progress": self._progress(tut)}

    def _shown(self, tut: Any) -> Json:
        from tutorials.model import substitute

        names = self._names(tut)
        prog = self._progress(tut)
        states = {**{s: "done" for s in prog["done"]}, **{s: "skipped" for s in prog["skipped"]}}
        steps = []
        for s in tut.steps:
            check = getattr(s, "check", None)
            steps.append({
                "id": s.id, "kind": s.kind, "title": s.title, "body": substitute(s.body, names),
                "hint": substitute(s.hint, names),
                "state": states.get(s.id, "todo"), "fingerprint": s.fingerprint(),
                "key": getattr(s, "key", None), "mode": getattr(s, "mode", None),
                "action": getattr(s, "action", None),
                "command": substitute(list(s.command), names) if s.kind == "cli" else None,
                "check": substitute(check.model_dump(mode="json"), names) if check is not None else None,
                "also": [substitute(c.model_dump(mode="json"), names) for c in getattr(s, "also", [])],
                "solution": substitute(s.solution.model_dump(mode="json"), names),
            })
        return {**{k: v for k, v in self._summary(tut).items() if k != "steps"}, "steps": steps, "progress": prog}

    # -- writes ---------------------------------------------------------------------------------

    async def _start(self, tut: Any) -> Json:
        rec = self.recs.get(tut.id)
        if rec is not None and rec["state"] == "done":
            self._forget(tut)
            rec = self.recs.get(tut.id)
        resumed = rec is not None and rec["sandbox"] is not None
        if not resumed:
            gen = (rec["generation"] if rec else 0) + 1
            tenant = f"tut-{self.user}-{tut.id}" + (f"-{gen}" if gen > 1 else "")
            self.sandboxes.append(tenant)
            rec = {"state": "in_progress", "generation": gen, "steps": {},
                   "sandbox": {"tenant": tenant, "project": tut.sample, "path": f"{self.home}/sandboxes/{tenant}",
                               "created_at": TS}}
            self.recs[tut.id] = rec
        assert rec is not None
        rec["state"] = "in_progress"
        sandbox = copy.deepcopy(rec["sandbox"])
        completed = await self._advance(tut)
        return {"progress": self._progress(tut), "sandbox": sandbox, "resumed": resumed, "completed_now": completed}

    def _started(self, tut: Any) -> Json:
        rec = self.recs.get(tut.id)
        if rec is None or rec["state"] == "new" or (rec["sandbox"] is None and rec["state"] != "done"):
            raise Conflict(f"tutorial {tut.id!r} is not started; start it with: musubi tutorial start {tut.id}",
                           resource=f"tutorial:{tut.id}")
        return rec

    async def _holds(self, tut: Any, step: Any) -> tuple[bool, Any, str]:
        from tutorials.checker import evaluate
        from tutorials.model import substitute

        if (tut.id, step.id) in self.satisfied:
            return True, None, "holds (set by the test)"
        if (tut.id, step.id) in self.unsatisfied or self.probe is None:
            return False, None, "does not hold yet (set by the test)"
        names = self._names(tut)
        out = None
        for chk in [step.check, *getattr(step, "also", [])]:  # the first that does not hold, else the last
            route, query = substitute(chk.route, names), substitute(dict(chk.query), names)
            try:
                data = await self.probe(route, query, names["tenant"])
            except MusubiError as exc:
                return False, None, f"GET {route} was refused: {exc.message}"
            out = evaluate(data, chk.path, chk.op, substitute(chk.value, names))
            if not out.ok:
                break
        assert out is not None
        return out.ok, out.observed, out.detail

    async def _advance(self, tut: Any) -> list[str]:
        rec = self.recs[tut.id]
        done: list[str] = []
        while rec["sandbox"]:
            step = next((s for s in tut.steps if s.id not in rec["steps"]), None)
            if step is None or not _checked(step) or not (await self._holds(tut, step))[0]:
                break
            self._record(tut, step, "done")
            done.append(step.id)
        return done

    def _record(self, tut: Any, step: Any, state: str) -> None:
        rec = self.recs[tut.id]
        rec["steps"][step.id] = state
        if all(s.id in rec["steps"] for s in tut.steps):
            rec["state"], rec["sandbox"] = "done", None  # finished: the sandbox is cleaned

    async def _check(self, tut: Any, step: Any) -> Json:
        if not _checked(step):
            raise BadRequest(f"step {step.id!r} is a {step.kind} step: the workstation sees it done, the engine "
                             f"cannot check it. Report it with: musubi tutorial done {tut.id} {step.id}", field="step")
        rec = self._started(tut)
        if rec["sandbox"] is None:
            prog = self._progress(tut)
            return {"tutorial": tut.id, "step": step.id, "ok": step.id in prog["done"], "observed": None,
                    "progress": prog, "completed_now": [],
                    "detail": "the tutorial is finished; its sandbox was cleaned."}
        ok, observed, detail = await self._holds(tut, step)
        completed: list[str] = []
        if ok and rec["steps"].get(step.id) != "done":
            self._record(tut, step, "done")
            completed = await self._advance(tut)
        return {"tutorial": tut.id, "step": step.id, "ok": ok, "detail": detail, "observed": observed,
                "progress": self._progress(tut), "completed_now": completed}

    async def _mark_client(self, tut: Any, step: Any, state: str) -> Json:
        rec = self._started(tut)
        if rec["sandbox"] is None:
            raise Conflict(f"tutorial {tut.id!r} is finished; start it again with: musubi tutorial start {tut.id}",
                           resource=f"tutorial:{tut.id}")
        completed: list[str] = []
        if not (step.id in rec["steps"] and (rec["steps"][step.id] == "done" or state == "skipped")):
            self._record(tut, step, state)
            completed = await self._advance(tut)
        return {"tutorial": tut.id, "step": step.id, "state": rec["steps"].get(step.id, state),
                "progress": self._progress(tut), "completed_now": completed}

    def _forget(self, tut: Any) -> Json | None:
        rec = self.recs.get(tut.id)
        if rec is None:
            return None
        cleaned = rec["sandbox"]
        rec.update(state="new", sandbox=None, steps={})
        return copy.deepcopy(cleaned) if cleaned else None

    def live_sandbox(self, tenant: str | None) -> bool:
        """Whether ``tenant`` is a sandbox the fake made and has not cleaned."""
        return any(r["sandbox"] and r["sandbox"]["tenant"] == tenant for r in self.recs.values())
