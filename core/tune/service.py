"""Tuned embedders in the engine: the ``tune.embed`` and ``tune.activate`` jobs, list, activate, rollback (light).

Where the work happens (docs/finetune.md, "Local embedder adaptation"):

- pair mining (walk, chunking, git history) runs in the index's ``prep`` helper process
  (:func:`core.tune.files.mine_into`), so the event loop never parses a file;
- training and both evaluations run in a trainer process, ``python -m core.tune.train`` (torch),
  never in the engine; its progress lines become the job's progress and checkpoints;
- re-embedding the project's chunks with the model being activated runs in the embedding worker,
  into a vector folder of its own (``vectors-t<N>``), while search keeps answering from the folder
  of the model serving now; the switch is one commit once every chunk has its new vector;
- after a switch (and at engine start) the vector folders serving nothing are removed
  (:meth:`TuneEmbedService.sweep`, core/tune/cleanup.py);
- deleting a version (:meth:`TuneEmbedService.delete`) commits its row as ``deleted`` first, then
  removes its files the same crash-safe way (renamed to ``.deleting-*``, then deleted; a start finishes
  what a kill -9 left).

A version's row (``tuned_embedders``) is the record: the training data's sha256 and counts, both
models' held-out measures, the rule's decision (core/tune/rule.py) and its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest, Conflict, MusubiError, NotFound
from core.storage.base import Insert, Update
from core.tune.rule import decide

if TYPE_CHECKING:
    from collections.abc import Sequence

    from core.engine.access import Caller
    from core.engine.runner import OpRunner
    from core.jobs import JobHandle
    from core.jobs.service import JobService
    from core.rag.service import IndexService

log = logging.getLogger("musubi.tune")

KIND_TRAIN, KIND_ACTIVATE = "tune.embed", "tune.activate"
PERMISSION = "embedder.tune"
BUDGET_S = (60, 86_400)  # the time budget a user may give, seconds (docs/api.md#ranges)
DEFAULT_BUDGET_S = 600
REEMBED_BATCH = 512  # chunks embedded per checkpoint of the activation's re-embedding
ACTIVE = ("queued", "running", "cancelling")
FAKE_GAIN_ENV = "MUSUBI_TEST_TUNE_GAIN"  # test hook: the trainer reports this gain without training a model
KILL_AT_ENV = "MUSUBI_TEST_TUNE_KILL_AT"  # test hook: the engine kills itself (-9) at this point of a switch
PAUSE_AT_ENV = "MUSUBI_TEST_TUNE_PAUSE_AT"  # test hook: an activation waits at this point until a test lets it go
UNFINISHED = ("queued", "running", "cancelling", "interrupted")  # a job that may still write its folder


def vector_folder(version: int) -> str:
    """The index's vector folder for a version: the base model keeps ``vectors``, version N ``vectors-tN``."""
    return "vectors" if version == 0 else f"vectors-t{version}"


class TuneFailed(MusubiError):
    """The trainer process failed (HTTP 500, exit 1): its message, and the log file."""

    code = "tune_failed"


def _check_train(params: dict[str, Any]) -> dict[str, Any]:
    budget = params.get("budget_s", DEFAULT_BUDGET_S)
    if isinstance(budget, bool) or not isinstance(budget, int) or not BUDGET_S[0] <= budget <= BUDGET_S[1]:
        raise BadRequest(f"budget {budget!r} must be whole seconds from {BUDGET_S[0]} to {BUDGET_S[1]:,}, "
                         "e.g. --budget 600.", field="budget_s")
    return {"budget_s": budget}


def _check_activate(params: dict[str, Any]) -> dict[str, Any]:
    v = params.get("version")
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1_000_000:
        raise BadRequest(f"version {v!r} must be a whole number (0 is the base model).", field="version")
    return {"version": v, "rollback": bool(params.get("rollback", False))}


class TuneEmbedService:
    """Per tenant and project: tuned embedder versions, their jobs, and which one serves search."""

    def __init__(self, runner: OpRunner, jobs: JobService, index: IndexService) -> None:
        self.e, self.jobs, self.index = runner, jobs, index
        jobs.register(KIND_TRAIN, self._train, permission=PERMISSION, check_params=_check_train, api=False)
        jobs.register(KIND_ACTIVATE, self._activate, permission=PERMISSION, check_params=_check_activate, api=False)
        self._rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._purging: set[asyncio.Future[Any]] = set()  # trash deletions running in threads
        index.serving = self.serving

    # -- state -------------------------------------------------------------------------------

    async def rows(self, tenant: str, project: str) -> list[dict[str, Any]]:
        """The project's versions (cached; this service keeps the cache current with its own writes)."""
        key = (tenant, project)
        if key not in self._rows:
            rows = await self.e.read(self.e.storage.tuned_embedders, tenant, project)
            self._rows.setdefault(key, rows)
        return self._rows[key]

    def work(self, tenant: str, project: str, version: int) -> Path:
        """A version's files: ``$MUSUBI_HOME/tenants/<tenant>/tuned/<project>/v<version>/``."""
        return self.e.tenant_dir(tenant) / "tuned" / project / f"v{version}"

    async def serving(self, tenant: str, project: str) -> tuple[str, str | None]:
        """(vector folder name, model folder or None) of the version serving the project's search."""
        for r in await self.rows(tenant, project):
            if r["state"] == "active":
                return vector_folder(r["version"]), str(self.work(tenant, project, r["version"]) / "model")
        return vector_folder(0), None

    def _job(self, tenant: str, project: str) -> Any:
        for j in self.jobs.jobs.values():
            if j.kind in (KIND_TRAIN, KIND_ACTIVATE) and j.tenant == tenant and j.project == project \
                    and j.state in ACTIVE:
                return j
        return None

    def _show(self, r: dict[str, Any]) -> dict[str, Any]:
        from core.audit import format_ts

        state = r["state"]
        job = self.jobs.jobs.get(r["job_id"])
        if state == "training" and (job is None or job.state not in ACTIVE):
            state = job.state if job is not None and job.state in ("failed", "cancelled", "interrupted") else "stopped"
        m = {k: r[k] for k in ("current_r1", "current_r10", "current_mrr", "tuned_r1", "tuned_r10", "tuned_mrr")}
        return {"version": r["version"], "state": state, "model_id": r["model_id"], "base_model": r["base_model"],
                "job_id": r["job_id"], "pairs": json.loads(r["pairs"]), "pairs_sha256": r["pairs_sha256"],
                "params": json.loads(r["params"]),
                "current": {"r1": m["current_r1"], "r10": m["current_r10"], "mrr": m["current_mrr"]},
                "tuned": {"r1": m["tuned_r1"], "r10": m["tuned_r10"], "mrr": m["tuned_mrr"]},
                "steps": r["steps"], "seconds": r["seconds"], "decision": r["decision"],
                "created_by": r["created_by"], "created_at": format_ts(r["created_at"]),
                "activated_at": format_ts(r["activated_at"]) if r["activated_at"] else None}

    # -- operations (the routes call these) ---------------------------------------------------

    async def list(self, ctx: Caller, project: str) -> dict[str, Any]:
        """``GET /v1/tune/embedders``: every version (with its bytes on disk), the serving one, the running job."""
        rows = await self.rows(ctx.tenant, project)
        serving = next((r["version"] for r in rows if r["state"] == "active"), 0)
        job = self._job(ctx.tenant, project)
        disk = await self.disk(ctx.tenant, project)
        return {"project": project, "serving": serving,
                "versions": [{**self._show(r), **disk["versions"].get(r["version"], {})} for r in reversed(rows)],
                "base_vectors_bytes": disk["base_vectors_bytes"],
                "job": job.as_json(self.e.now()) if job is not None else None}

    def _busy(self, tenant: str, project: str) -> None:
        job = self._job(tenant, project) or self.index._active_job(tenant, project)
        if job is not None:
            raise Conflict(f"job {job.id} ({job.kind}) is already {job.state} for project {project!r}; wait for it "
                           f"(musubi jobs show {job.id} --follow) or cancel it (musubi jobs cancel {job.id}).")

    async def train(self, ctx: Caller, project: str, budget_s: int) -> dict[str, Any]:
        """``POST /v1/tune/embedders``: start the ``tune.embed`` job (one tuning or activation per project)."""
        self._busy(ctx.tenant, project)
        job = await self.jobs.submit(ctx, KIND_TRAIN, {"budget_s": budget_s}, project=project)
        return {"job": job}

    async def activate(self, ctx: Caller, project: str, version: int) -> dict[str, Any]:
        """``POST /v1/tune/embedders/activate``: serve ``version`` (0: the base model) once re-embedded."""
        rows = await self.rows(ctx.tenant, project)
        row = next((r for r in rows if r["version"] == version), None)
        if version != 0 and row is None:
            known = ", ".join(str(r["version"]) for r in rows) or "none yet"
            raise NotFound(f"project {project!r} has no tuned embedder version {version} (versions: {known}; 0 is "
                           "the base model). See: musubi tune list", resource="version")
        if row is not None and row["state"] == "deleted":
            raise Conflict(_deleted(version))
        if row is not None and row["state"] not in ("ready", "retired"):
            why = f": {row['decision']}" if row["state"] == "rejected" and row["decision"] else ""
            raise Conflict(f"version {version} is {row['state']}{why}; only a version that passed the activation "
                           "rule (ready, or retired by a later one) can serve.")
        serving = next((r["version"] for r in rows if r["state"] == "active"), 0)
        if serving == version:
            raise Conflict(f"version {version} already serves project {project!r}; nothing to do.")
        return await self._start_activation(ctx, project, version, rollback=False)

    async def rollback(self, ctx: Caller, project: str) -> dict[str, Any]:
        """``POST /v1/tune/embedders/rollback``: serve the model that served before the current one."""
        rows = await self.rows(ctx.tenant, project)
        if not any(r["state"] == "active" for r in rows):
            raise Conflict(f"the base model serves project {project!r}; there is nothing to roll back.")
        retired = [r for r in rows if r["state"] in ("retired", "deleted") and r["activated_at"] is not None]
        last = max(retired, key=lambda r: r["activated_at"]) if retired else None
        if last is not None and last["state"] == "deleted":  # the one that served before has no files any more
            raise Conflict(f"version {last['version']} served before the current one but was deleted (its model "
                           "files are gone), so there is nothing to roll back to; activate the base model (musubi "
                           "tune activate 0) or another version (musubi tune list).")
        return await self._start_activation(ctx, project, last["version"] if last else 0, rollback=True)

    async def delete(self, ctx: Caller, project: str, version: int) -> dict[str, Any]:
        """``DELETE /v1/tune/embedders/{version}``: remove a version's files for good, keep its row as ``deleted``.

        The row (what it was trained on, its measures, the decision) is audit history and stays.  Refused,
        changing nothing: the base model (0), an unknown or already deleted version, the serving one, and one
        an unfinished job trains or activates.  The row's change commits first, then the files go: the
        version's folder (model, training data, measures) and its vector folder, each renamed to
        ``.deleting-*`` and deleted in a thread; a kill -9 in between is finished at the next start."""
        from core.tune.cleanup import folder_bytes

        t = ctx.tenant
        await self.rows(t, project)  # cached from here: the checks and the write below do not await

        marked: list[tuple[dict[str, Any], str]] = []

        def op() -> None:
            row = self._deletable(t, project, version)
            self.e.write(Update("tuned_embedders", {"state": "deleted"},
                                {"tenant_id": t, "project": project, "version": version}))
            self.e.audit(t, ctx, "tune.delete", f"project:{project}",
                         details={"version": version, "was": row["state"], "model_id": row["model_id"],
                                  "pairs_sha256": row["pairs_sha256"]})
            marked.append((row, row["state"]))
            row["state"] = "deleted"  # at once: a second delete or an activation is refused while this commits

        try:
            await self.e.run(ctx, "tune.delete", f"project:{project}", op)
        except Exception:
            for row, was in marked:  # the commit failed: the row is as it was
                row["state"] = was
            raise
        _kill_at("deleted")
        code = self.index.folder(t, project)
        freed = await asyncio.to_thread(lambda: (folder_bytes(self.work(t, project, version)) or 0)
                                        + (folder_bytes(code / vector_folder(version)) or 0))
        await self._remove_deleted(t, project)
        await self.sweep(t, project)  # its vector folder (if it still has one) serves nothing
        log.info("deleted tuned embedder version %s of %s/%s (%d bytes)", version, t, project, freed)
        return {"project": project, "version": version, "state": "deleted", "freed_bytes": freed}

    def _deletable(self, tenant: str, project: str, version: int) -> dict[str, Any]:
        """The row of ``version`` if it may be deleted now, else the refusal saying what to do first."""
        if version == 0:
            raise BadRequest("version 0 is the base model, which ships with musubi: it cannot be deleted. "
                             "See the tuned versions with: musubi tune list", field="version")
        rows = self._rows.get((tenant, project), [])
        row = next((r for r in rows if r["version"] == version), None)
        if row is None:
            known = ", ".join(str(r["version"]) for r in rows) or "none yet"
            raise NotFound(f"project {project!r} has no tuned embedder version {version} (versions: {known}). "
                           "See: musubi tune list", resource="version")
        if row["state"] == "deleted":
            raise Conflict(f"version {version} of project {project!r} is already deleted; nothing to do.")
        if row["state"] == "active":
            raise Conflict(f"version {version} serves search in project {project!r}: roll back (musubi tune "
                           "rollback) or activate another version (musubi tune activate VERSION; 0 is the base "
                           "model) first, then delete it.")
        job = self._writers(tenant, project).get(version)
        own = self.jobs.jobs.get(row["job_id"])
        if job is None and own is not None and own.state in UNFINISHED:
            job = own
        if job is not None:
            raise Conflict(f"job {job.id} ({job.kind}) is still {job.state} on version {version}: cancel it first "
                           f"(musubi jobs cancel {job.id}), or wait for it (musubi jobs show {job.id} --follow), "
                           "then delete the version.")
        return row

    async def _remove_deleted(self, tenant: str, project: str) -> None:
        """Remove the files of the project's deleted versions: rename each folder still under its name (a kill
        -9 between a delete's commit and its rename leaves one) to a trash name, then delete the trash in a
        thread.  A failure is logged, never raised: the delete has committed already."""
        from core.tune import cleanup

        tuned = self.e.tenant_dir(tenant) / "tuned" / project
        try:
            for r in await self.rows(tenant, project):
                if r["state"] == "deleted":
                    cleanup.discard(tuned, f"v{r['version']}")
        except (OSError, MusubiError):
            log.exception("could not remove the files of the deleted versions of %s/%s; tried again at the next "
                          "start", tenant, project)
        self._purge(tuned)

    async def _start_activation(self, ctx: Caller, project: str, version: int, *, rollback: bool) -> dict[str, Any]:
        self._busy(ctx.tenant, project)
        job = await self.jobs.submit(ctx, KIND_ACTIVATE, {"version": version, "rollback": rollback}, project=project)
        return {"job": job, "version": version}

    # -- the tune.embed job --------------------------------------------------------------------

    async def _train(self, h: JobHandle) -> dict[str, Any]:
        from core.tune import files

        t, p = h.tenant, h.project
        if p is None:
            raise BadRequest("a tuning job needs a project.")
        cp = h.last_checkpoint or {}
        rows = await self.rows(t, p)
        if cp.get("phase") in (None, "mine"):
            project = self.e.state.projects.get(t, {}).get(p)
            if project is None or not Path(project["path"]).is_dir():
                raise NotFound(f"project {p!r} or its folder is gone; register it again with: musubi project add PATH")
            version = max((r["version"] for r in rows), default=0) + 1
            work = self.work(t, p, version)
            _name, model = await self.serving(t, p)
            # the trainer's settings, recorded with the version (light: the trainer imports torch only in run())
            from core.tune.train import DEFAULTS

            params = {**{k: DEFAULTS[k] for k in ("epochs", "batch", "lr", "seed", "interpolate")},
                      "budget_s": h.params["budget_s"]}
            h.progress(0, None, "steps")
            try:
                mined = await self.index._in("prep", files.mine_into, project["path"], str(work), params, model)
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            row = {"tenant_id": t, "project": p, "version": version, "state": "training",
                   "base_model": mined["base_model"], "model_id": None, "job_id": h.id,
                   "pairs_sha256": mined["sha256"], "pairs": json.dumps({**mined["counts"], "notes": mined["notes"]}),
                   "params": json.dumps(params), "current_r1": None, "current_r10": None, "current_mrr": None,
                   "tuned_r1": None, "tuned_r10": None, "tuned_mrr": None, "steps": None, "seconds": None,
                   "decision": None, "created_by": h.created_by, "created_at": self.e.now(), "activated_at": None}
            h.write(Insert("tuned_embedders", row))
            await h.checkpoint({"phase": "train", "version": version})
            rows.append(row)
            cp = {"phase": "train", "version": version}
        version = int(cp["version"])
        row = next(r for r in rows if r["version"] == version)
        work = self.work(t, p, version)
        if cp["phase"] == "train":
            result = await self._run_trainer(h, version, work)
            model_id = await self.index._in("prep", files.model_id_of, str(work / "model"))
            ok, why = decide(result["base"], result["tuned"])
            values = {"state": "ready" if ok else "rejected", "model_id": model_id, "decision": why,
                      "steps": result["steps"], "seconds": result["seconds"],
                      **{f"current_{k}": result["base"][k] for k in ("r1", "r10", "mrr")},
                      **{f"tuned_{k}": result["tuned"][k] for k in ("r1", "r10", "mrr")}}
            if result["stopped"] == "budget":
                values["decision"] = f"{why} (the time budget ended training after {result['steps']} of " \
                                     f"{result['total_steps']} steps)"
            h.write(Update("tuned_embedders", values, {"tenant_id": t, "project": p, "version": version}))
            await h.checkpoint({"phase": "reembed" if ok else "done", "version": version})
            row.update(values)
            cp = {"phase": "reembed" if ok else "done", "version": version}
        if cp["phase"] == "reembed":
            await self._reembed(h, version)
        return {"version": version, "state": row["state"], "decision": row["decision"],
                "pairs": json.loads(row["pairs"]),
                "current": {k: row[f"current_{k}"] for k in ("r1", "r10", "mrr")},
                "tuned": {k: row[f"tuned_{k}"] for k in ("r1", "r10", "mrr")}}

    async def _run_trainer(self, h: JobHandle, version: int, work: Path) -> dict[str, Any]:
        """Run ``python -m core.tune.train`` on ``work`` (it resumes from its own state.pt) until it answers."""
        from core.config import env
        from core.tune.files import read_result

        done = read_result(str(work))
        if done is not None:  # finished before the engine went: only its answer was lost
            return done
        log_path = self.e.paths.logs / "tune-trainer.log"
        argv = [sys.executable, "-m", "core.tune.train", str(work), "--nice", "5"]
        fake = env(FAKE_GAIN_ENV)
        if fake:  # test hook (docs/finetune.md): no torch, a reported gain
            argv += ["--fake", fake]
        with open(log_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE, stderr=err,
                                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        answer: dict[str, Any] | None = None
        error = None
        try:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                kind = ev.get("event")
                if kind == "progress":
                    h.progress(int(ev["done"]), int(ev["total"]), "steps")
                elif kind == "checkpoint":  # the trainer's state.pt is on disk: say so in the job's checkpoint
                    await h.checkpoint({"phase": "train", "version": version, "step": int(ev["step"])})
                elif kind == "done":
                    answer = ev["result"]
                elif kind == "error":
                    error = str(ev.get("message"))
            await proc.wait()
        finally:
            if proc.returncode is None:  # cancelled (or the engine is stopping): the trainer goes too
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await asyncio.shield(proc.wait())
        if answer is None:
            raise TuneFailed(f"training failed: {error or f'the trainer exited with status {proc.returncode}'}; "
                             f"see {log_path}.")
        return answer

    # -- activation: re-embed, then switch ------------------------------------------------------

    async def _activate(self, h: JobHandle) -> dict[str, Any]:
        p = h.project
        if p is None:
            raise BadRequest("an activation job needs a project.")
        version = int(h.params["version"])
        if (h.last_checkpoint or {}).get("phase") == "done":  # switched before the engine went: only clean up
            await self.sweep(h.tenant, p)
        else:
            if any(r["version"] == version and r["state"] == "deleted" for r in await self.rows(h.tenant, p)):
                raise Conflict(_deleted(version))  # deleted after this job was queued: its model is gone
            await self._reembed(h, version)
        return {"version": version, "serving": version, "rollback": bool(h.params.get("rollback"))}

    async def _reembed(self, h: JobHandle, version: int) -> None:
        """Embed every chunk with ``version``'s model into its own vector folder, batch by batch (each saved,
        then checkpointed), then switch search to it in one commit.  Search serves the old folder until then.

        Index jobs may run during the long pass and write the folder serving then, so the pass alone can miss
        chunks added after it read the chunk table, and keep vectors of chunks deleted after it embedded them.
        Hence a last catch-up under the index jobs' lock (``IndexService.vectors_lock``), with the switch's
        commit inside it: while it is held no index job runs, so the chunk table cannot change between the
        catch-up and the switch, and an index job started meanwhile waits and then chooses the new folder.
        (Simpler than index jobs writing every live folder: they never need to know an activation exists.)
        A kill -9 anywhere leaves the old folder serving until the commit; the resumed job redoes the locked
        part, which is idempotent (adding an id replaces its vector, dropping reads the folder's ids again)."""
        t, p = h.tenant, h.project
        assert p is not None
        w = self.index.worker
        model = None if version == 0 else str(self.work(t, p, version) / "model")
        vec = self.index.folder(t, p) / vector_folder(version)
        w.bind(vec, model)
        cp = h.last_checkpoint or {}
        after = int(cp["after"]) if cp.get("phase") == "reembed" and "after" in cp else None
        info = await self.index.info(t, p)
        if info is not None and info["chunks"]:
            after = await self._embed_from(h, version, vec, await self._target(h, version, vec, after))
        await _pause_at(self.e.paths.home, "reembedded")
        async with self.index.vectors_lock(t, p):  # waits for a running index job to end
            info = await self.index.info(t, p)
            if info is not None and info["chunks"]:
                after = await self._target(h, version, vec, after)
                ids = await self._chunk_ids(t, p)
                after = await self._embed_from(h, version, vec, after, ids)
                await self._drop_deleted(vec, ids)
            await _pause_at(self.e.paths.home, "switching")
            model_id = (await w.hello(model))["model_id"]
            self._switch(h, version, model_id, info["chunks"] if info is not None else 0)
            await h.checkpoint({"phase": "done", "version": version})
            rows = self._rows.get((t, p), [])
            now = self.e.now()
            for r in rows:
                if r["state"] == "active":
                    r["state"] = "retired"
                if r["version"] == version:
                    r.update(state="active", activated_at=now)
            if info is not None:
                info["model_id"] = model_id
                info["dense_chunks"] = info["chunks"]
            self.index._dense_broken.discard((t, p))
        _kill_at("switched")
        await self.sweep(t, p)

    async def _target(self, h: JobHandle, version: int, vec: Path, after: int | None) -> int:
        """Open the folder being built and return the last chunk id it holds; on a first attempt start it
        afresh (it may hold an older activation's vectors) and return -1."""
        w = self.index.worker
        if after is not None:
            await w.open_index(vec)
            return after
        await w.reset(vec)
        await w.save(vec)
        await h.checkpoint({"phase": "reembed", "version": version, "after": -1})
        return -1

    async def _chunk_ids(self, tenant: str, project: str) -> Sequence[int]:
        return [r[0] for r in await self.e.read(self.e.storage.code_chunk_ids, tenant, project)]

    async def _drop_deleted(self, vec: Path, ids: Sequence[int]) -> None:
        """Remove from ``vec`` the vectors of chunks no longer in the table (an index job deleted them after the
        pass embedded them), so the folder holds exactly the table's chunks when it starts serving."""
        w = self.index.worker
        live = set(ids)
        for _attempt in range(3):
            restarts = w.restarts
            gone = [i for i in await w.ids(vec) if i not in live]
            if not gone:
                return
            await w.remove(vec, gone)
            await w.save(vec)
            if w.restarts == restarts:
                return
            await w.open_index(vec)  # the worker died before the save: the removal is lost, redo it
        raise MusubiError("the search worker kept restarting while re-embedding; see logs/search-worker.log.",
                          code="search_worker_failed")

    async def _embed_from(self, h: JobHandle, version: int, vec: Path, after: int,
                          ids: Sequence[int] | None = None) -> int:
        """Embed the chunks of ``ids`` (default: the table's now) after ``after`` into ``vec``; returns the last id."""
        from core.config import env
        from core.rag.chunks import Chunk
        from core.rag.job import BATCH_ENV, DELAY_ENV
        from core.rag.represent import passage_text

        t, p = h.tenant, h.project
        assert p is not None
        w = self.index.worker
        size = int(env(BATCH_ENV) or REEMBED_BATCH)  # the index job's test hooks (docs/search.md): small batches,
        delay = float(env(DELAY_ENV) or 0)  # and a pause before each save, so tests can watch a switch in progress
        pause = ids is None  # the long pass (the test hook's "reembedding" point), not the catch-up
        if ids is None:
            ids = await self._chunk_ids(t, p)
        total = len(ids)
        todo = [i for i in ids if i > after]
        h.progress(total - len(todo), total, "chunks")
        while todo:
            h.raise_if_cancelled()
            batch = todo[:size]
            rows = await self.e.read(self.e.storage.code_passages, t, p, batch)
            for _attempt in range(3):
                restarts = w.restarts
                for s in range(0, len(rows), 256):
                    part = rows[s:s + 256]
                    texts = [passage_text(Chunk(path=r[1], start_line=r[2], end_line=r[3], language=r[4], kind=r[5],
                                                symbol=r[6], signature=r[7], text=r[9], part=r[8])) for r in part]
                    await w.add(vec, [r[0] for r in part], texts=texts)
                if delay:
                    await asyncio.sleep(delay)
                await w.save(vec)
                if w.restarts == restarts:
                    break
                await w.open_index(vec)  # the worker died mid-batch: its unsaved additions are gone, redo
            else:
                raise MusubiError("the search worker kept restarting while re-embedding; see logs/search-worker.log.",
                                  code="search_worker_failed")
            after = batch[-1]
            await h.checkpoint({"phase": "reembed", "version": version, "after": after})
            todo = todo[len(batch):]
            h.progress(total - len(todo), total, "chunks")
            if pause and todo:
                await _pause_at(self.e.paths.home, "reembedding")
                pause = False
        return after

    def _switch(self, h: JobHandle, version: int, model_id: str, chunks: int) -> None:
        """Queue the switch (committed with the job's next checkpoint): states, and the index's model."""
        t, p = h.tenant, h.project
        assert p is not None
        now = self.e.now()
        for r in self._rows.get((t, p), []):
            if r["state"] == "active" and r["version"] != version:
                h.write(Update("tuned_embedders", {"state": "retired"},
                               {"tenant_id": t, "project": p, "version": r["version"]}))
        if version:
            h.write(Update("tuned_embedders", {"state": "active", "activated_at": now},
                           {"tenant_id": t, "project": p, "version": version}))
        h.write(Update("code_indexes", {"model_id": model_id, "dense_chunks": chunks, "updated_at": now},
                       {"tenant_id": t, "project": p}),
                Update("code_chunks", {"dense": True}, {"tenant_id": t, "project": p}))

    # -- old vector folders: removed once they serve nothing (docs/finetune.md) -----------------

    def _writers(self, tenant: str, project: str) -> dict[int, Any]:
        """The versions an unfinished tuning or activation job of the project writes, each with its job."""
        out: dict[int, Any] = {}
        for j in self.jobs.jobs.values():
            if j.tenant != tenant or j.project != project or j.state not in UNFINISHED:
                continue
            if j.kind == KIND_ACTIVATE:
                out[int(j.params["version"])] = j
            elif j.kind == KIND_TRAIN and (j.checkpoint or {}).get("version") is not None:
                out[int((j.checkpoint or {})["version"])] = j
        return out

    def _keep(self, tenant: str, project: str, serving: str) -> set[str]:
        """The vector folders to keep: the serving one and those an unfinished tuning or activation job
        writes.  An index job needs none other: it chooses the serving folder under the index lock, which a
        switch holds too, so none still writes a folder a switch retired (a resumed one chooses again)."""
        return {serving} | {vector_folder(v) for v in self._writers(tenant, project)}

    async def sweep(self, tenant: str, project: str) -> tuple[str, ...]:
        """Remove the project's vector folders that serve nothing and that no unfinished job writes (after
        a switch commits, and at engine start), and finish deletions a crash interrupted.  Returns the
        names removed.  A failure is logged, never raised: the switch has committed already."""
        from core.tune import cleanup

        code = self.index.folder(tenant, project)
        removed: tuple[str, ...] = ()
        try:
            serving, _model = await self.serving(tenant, project)
            keep = self._keep(tenant, project, serving)
            names = cleanup.stale(code, keep)
            w = self.index._worker
            for name in names:
                if w is not None and w.running:  # the worker forgets it (unsaved changes are not written back)
                    await w.close_index(code / name, save=False)
                keep = self._keep(tenant, project, serving)  # again, after the await: a job may have started
                if name in keep:
                    continue
                if cleanup.discard(code, name) is not None:  # one rename: no await between check and rename
                    removed += (name,)
                    _kill_at("discarded")
        except (OSError, MusubiError):
            log.exception("could not remove the old vector folders of %s/%s; tried again at the next switch "
                          "or start", tenant, project)
        self._purge(code)
        if removed:
            log.info("removed the vector folders %s of %s/%s (they serve no search)", removed, tenant, project)
        return removed

    def _purge(self, code: Path) -> None:
        """Delete the trash folders of ``code`` (a project's index folder, or its tuned versions' folder) in a
        thread (the event loop never waits for a large rmtree)."""
        from core.tune import cleanup

        fut = asyncio.ensure_future(asyncio.to_thread(cleanup.purge, code))
        self._purging.add(fut)
        fut.add_done_callback(self._purged)

    def _purged(self, fut: asyncio.Future[Any]) -> None:
        self._purging.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("could not delete old folders: %s; tried again at the next switch or start",
                        fut.exception())

    async def start(self) -> None:
        """At engine start, before interrupted jobs resume: finish what a crash left between a switch and
        its cleanup (folders serving nothing, interrupted deletions), and between a version's delete and the
        removal of its files, in every project that has them."""
        from core.tune.cleanup import TRASH_PREFIX

        for tenant, projects in list(self.e.state.projects.items()):
            for project in list(projects):
                if (self.e.tenant_dir(tenant) / "tuned" / project).is_dir():
                    try:
                        await self._remove_deleted(tenant, project)
                    except Exception:  # the engine must start whatever it meets; tried again next time
                        log.exception("removing the deleted versions of %s/%s failed", tenant, project)
                code = self.index.folder(tenant, project)
                try:
                    names = [n.name for n in code.iterdir()] if code.is_dir() else []
                except OSError:
                    continue
                if any(n.startswith(("vectors-t", TRASH_PREFIX)) for n in names):
                    try:
                        await self.sweep(tenant, project)
                    except Exception:  # the engine must start whatever the cleanup meets; tried again next time
                        log.exception("cleaning the vector folders of %s/%s failed", tenant, project)

    async def disk(self, tenant: str, project: str) -> dict[str, Any]:
        """Bytes on disk: each version's vector folder (None: it has none) and files, and the base model's
        vector folder."""
        from core.tune.cleanup import folder_bytes

        rows = await self.rows(tenant, project)
        code = self.index.folder(tenant, project)

        def measure() -> dict[str, Any]:
            return {"base_vectors_bytes": folder_bytes(code / vector_folder(0)),
                    "versions": {r["version"]: {"vectors_bytes": folder_bytes(code / vector_folder(r["version"])),
                                                "files_bytes": folder_bytes(self.work(tenant, project, r["version"]))
                                                or 0} for r in rows}}

        return await asyncio.to_thread(measure)


def _deleted(version: int) -> str:
    return (f"version {version} was deleted: its model files are gone (its record stays in musubi tune list). "
            "Activate another version, or tune a new one with: musubi tune embedder.")


def _kill_at(point: str) -> None:
    """Test hook (``MUSUBI_TEST_TUNE_KILL_AT``): the engine dies here as with kill -9 (docs/finetune.md)."""
    from core.config import env

    if env(KILL_AT_ENV) == point:
        import signal

        log.warning("test hook %s=%s: killing the engine", KILL_AT_ENV, point)
        os.kill(os.getpid(), signal.SIGKILL)


async def _pause_at(home: Path, point: str) -> None:
    """Test hook (``MUSUBI_TEST_TUNE_PAUSE_AT``): at ``point`` the activation writes
    ``$MUSUBI_HOME/tune-paused-<point>`` and waits until a test deletes it, so a test can start an index job
    exactly there (docs/finetune.md#test-hook).  Points: ``reembedding`` (after the long pass's first batch,
    when more follow), ``reembedded`` (the long pass done, the lock not yet taken), ``switching`` (the lock
    held, the last catch-up done, the switch not yet committed)."""
    from core.config import env

    if env(PAUSE_AT_ENV) != point:
        return
    gate = home / f"tune-paused-{point}"
    gate.write_text(f"{os.getpid()}\n", encoding="utf-8")
    log.warning("test hook %s=%s: waiting until %s is deleted", PAUSE_AT_ENV, point, gate)
    while gate.exists():
        await asyncio.sleep(0.05)
