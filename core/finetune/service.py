"""The engine's provider fine-tuning service (``engine.tune_provider``) and its job kind ``tune.provider``.

- :meth:`ProviderTuning.dataset` builds a chat JSONL from the approved artefacts of the runs the
  caller can see (``runs.start`` at the request's scope), prices it for a base model, checks the
  tenant's quotas (a refusal is ``QuotaExceeded``, exit 3, and changes nothing), writes the file
  (fsynced) and commits its row.
- :meth:`ProviderTuning.submit` (``quotas.manage``: it spends money and adds a model to the
  tenant's registry) checks the quotas again and queues an engine job; the job uploads the file,
  creates the vendor's job and polls it, waiting what the vendor's ``Retry-After`` asks on a
  429.  On success the fine-tuned model is registered in the tenant's registry override with its
  prices and lifecycle, and its training is charged to the tenant's usage.
- Every step is audited (``tune.dataset``, ``tune.submit``, ``tune.upload``, ``tune.create``,
  ``tune.status``, ``tune.register``, ``tune.fail``, ``tune.cancel``); keys never appear (the
  HTTP layer masks them, and nothing here ever holds one).

No HTTP here: the vendor client comes from the configured provider (core/finetune/contracts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.engine.access import Caller, suspended_read_check
from core.errors import BadRequest, MusubiError, NotFound, VerificationFailed
from core.finetune import dataset as ds
from core.finetune.contracts import (
    PROVIDERS,
    VENDOR_FINAL,
    VENDOR_STATES,
    FineTuneApi,
    FineTuneError,
    VendorJob,
)
from core.finetune.prices import TRAINING, training_cost_micros
from core.finetune.records import FINAL, Dataset, TuneJob, new_dataset_id, new_tune_id
from core.quotas import Charge, micros_to_usd
from core.storage.base import Insert, Update

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.engine.usage import UsageService
    from core.jobs.handle import JobHandle
    from core.jobs.service import JobService
    from core.models.registry import ModelSpec, Registry
    from core.orchestration.providers import ProviderHub
    from core.orchestration.service import RunService

KIND = "tune.provider"
POLL_MS = 30_000
EVENTS_TIMEOUT_S = 10.0
TRANSIENT = frozenset({"rate_limited", "upstream", "connection", "timeout"})


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    if set(params) != {"tune", "poll_ms"}:
        raise BadRequest("tune.provider jobs are started by musubi tune submit.", field="params")
    return params


class ProviderTuning:
    """Datasets and provider fine-tuning jobs of every tenant."""

    def __init__(self, runner: OpRunner, jobs: JobService, usage: UsageService, providers: ProviderHub,
                 runs: RunService) -> None:
        self.e, self.jobs, self.usage, self.providers, self.runs = runner, jobs, usage, providers, runs
        self.registry: Callable[[str | None], Registry] | None = None  # set by the routes (the tenant's registry)
        self.datasets: dict[str, Dataset] = {}
        self.tunes: dict[str, TuneJob] = {}
        loader = getattr(runner.storage, "provider_tune_rows", None)
        if loader is not None:
            rows = loader()
            for r in rows["provider_tune_datasets"]:
                self.datasets[r["dataset_id"]] = Dataset.from_row(r)
            for r in rows["provider_tune_jobs"]:
                self.tunes[r["tune_id"]] = TuneJob.from_row(r)
        # Resumable: the row keeps the vendor's file and job ids, so a resumed job polls, never re-submits.
        jobs.register(KIND, self._job, permission="quotas.manage", check_params=_check_params, api=False)

    # -- datasets -------------------------------------------------------------------------

    def _base(self, tenant: str, base_model: str) -> tuple[ModelSpec, Any]:
        if self.registry is None:
            raise MusubiError("the model registry is not wired to the tuning service (a bug)", code="internal")
        reg = self.registry(tenant)
        if base_model not in reg:
            raise BadRequest(reg.unknown_message(base_model), field="base_model")
        spec = reg.get(base_model)
        price = TRAINING.get(spec.id)
        if price is None:
            raise BadRequest(f"{spec.id} has no training price, so it cannot be fine-tuned here; base models with "
                             f"one: {', '.join(sorted(TRAINING))} (docs/finetune.md#prices).", field="base_model")
        return spec, price

    def _agents(self, tenant: str) -> Callable[[dict[str, Any]], Any]:
        from core.orchestration.catalog import load_plan

        cache: dict[tuple[str, str], Any] = {}
        projects = self.e.state.projects.get(tenant, {})

        def agents(run: dict[str, Any]) -> Any:
            key = (run["workflow"], run["project"] or "")
            if key not in cache:
                root = (projects.get(run["project"] or "") or {}).get("path")
                try:
                    cache[key] = load_plan(run["workflow"], root, self.e.paths.home).agents
                except MusubiError:
                    cache[key] = None
            return cache[key]

        return agents

    async def dataset(self, ctx: Caller, base_model: str, epochs: int) -> dict[str, Any]:
        """Build, price, quota-check and store a dataset from the approved artefacts ``ctx`` can see."""
        await self.e.run(ctx, "tune.dataset", "tune:dataset",
                         lambda: self.e.require(ctx, "runs.start", project=ctx.project))
        spec, price = self._base(ctx.tenant, base_model)
        ids = [d.run.id for d in self.runs.data.values() if d.run.tenant == ctx.tenant
               and (ctx.project is None or d.run.project == ctx.project) and self.e.perms(ctx, d.run.project)]
        rows = await self.e.read(self.e.storage.runs_load, ids) if ids else {}
        if rows:
            rows["runs"] = [r for r in rows["runs"] if r["run_id"] in set(ids)]
        built = await asyncio.to_thread(ds.build_examples, rows, self._agents(ctx.tenant))
        n = len(built.examples)
        if n < ds.MIN_EXAMPLES:
            raise BadRequest(
                f"only {n} usable example{'s' if n != 1 else ''} from approved run artefacts; the provider needs at "
                f"least {ds.MIN_EXAMPLES}. Left out: {dict(built.skipped) or 'none'}; invalid lines: "
                f"{len(built.problems)}. Approve more run artefacts (musubi runs approve RUN) and build again.",
                code="too_few_examples", examples=n, skipped=dict(built.skipped), problems=built.problems[:20])
        tokens = await asyncio.to_thread(ds.count_tokens, built.examples, spec.tokenizer)
        cost = training_cost_micros(tokens * epochs, price)
        text = ds.to_jsonl(built.examples)
        if (too_large := ds.oversize(text)) is not None:
            raise BadRequest(f"{too_large}. Build it inside a project (--project) to take fewer runs' artefacts.",
                             code="dataset_too_large")
        rec = Dataset(new_dataset_id(), ctx.tenant, ctx.project or "", spec.id, n, tokens, epochs, cost,
                      hashlib.sha256(text.encode("utf-8")).hexdigest(), "", json.dumps(dict(built.skipped)),
                      json.dumps(dict(built.scrubbed)), json.dumps(built.sources), ctx.user, self.e.now())

        def op() -> dict[str, Any]:
            self.e.require(ctx, "runs.start", project=ctx.project)
            self.usage._admit(ctx, Charge(tokens=tokens * epochs, cost_usd=cost),
                              f"fine-tuning on {tokens * epochs:,} tokens ({n} examples x {epochs} epochs)")
            rec.path = str(self._write_file(ctx.tenant, rec.dataset_id, text))
            self.e.write(Insert("provider_tune_datasets", rec.row()))
            self.e.audit(ctx.tenant, ctx, "tune.dataset", f"tune:{rec.dataset_id}", details={
                "base_model": spec.id, "examples": n, "tokens": tokens, "epochs": epochs,
                "est_cost_usd": micros_to_usd(cost), "skipped": dict(built.skipped),
                "scrubbed": dict(built.scrubbed), "sha256": rec.sha256})
            self.datasets[rec.dataset_id] = rec
            return {**rec.as_json(), "problems": built.problems[:20], "training_price_per_mtok":
                    str(price.training_per_mtok), "price_source": price.source}

        return await self.e.run(ctx, "tune.dataset", f"tune:{rec.dataset_id}", op)

    def _write_file(self, tenant: str, dataset_id: str, text: str) -> Path:
        """The JSONL on disk, fsynced and renamed into place (a kill -9 leaves no half file)."""
        d = self.e.tenant_dir(tenant) / "finetune"
        d.mkdir(exist_ok=True)
        path, tmp = d / f"{dataset_id}.jsonl", d / f".{dataset_id}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    # -- jobs -----------------------------------------------------------------------------

    def _visible(self, ctx: Caller, tenant: str, project: str) -> bool:
        return tenant == ctx.tenant and bool(self.e.perms(ctx, project or None))

    def get(self, ctx: Caller, tune_id: str) -> TuneJob:
        rec = self.tunes.get(tune_id)
        if rec is None or not self._visible(ctx, rec.tenant_id, rec.project):
            raise NotFound(f"no fine-tuning job {tune_id} in tenant {ctx.tenant!r} that you can see; list them with: "
                           "musubi tune status", resource=f"tune:{tune_id}")
        return rec

    def _provider(self, provider: str) -> Any:
        kind = PROVIDERS[provider]
        slot = next((s for s in self.providers.current.slots if s.settings.kind == kind and s.provider is not None),
                    None)
        if slot is None:
            hint = ("set OPENAI_API_KEY" if provider == "openai" else "set AZURE_OPENAI_ENDPOINT and "
                    "AZURE_OPENAI_API_KEY (or Entra ID)")
            raise BadRequest(f"no {kind} provider is configured in this engine; {hint} (or add it to config.toml) "
                             "and run musubi engine reload. See: musubi providers list", field="provider")
        return slot

    async def submit(self, ctx: Caller, dataset: str, provider: str, epochs: int | None = None,
                     suffix: str | None = None, poll_ms: int | None = None) -> dict[str, Any]:
        """Queue the upload, job creation and polling of ``dataset`` at ``provider`` (openai | azure)."""
        await self.e.run(ctx, "tune.submit", f"tune:{dataset}", lambda: self.e.require(ctx, "quotas.manage"))
        if provider not in PROVIDERS:
            raise BadRequest(f"unknown provider {provider!r}; fine-tuning runs at: {', '.join(PROVIDERS)}.",
                             field="provider")
        d = self.datasets.get(dataset)
        if d is None or d.tenant_id != ctx.tenant:
            raise NotFound(f"no dataset {dataset} in tenant {ctx.tenant!r}; build one with: musubi tune dataset",
                           resource=f"tune:{dataset}")
        spec, price = self._base(ctx.tenant, d.base_model)
        if spec.provider != provider:
            raise BadRequest(f"dataset {dataset} is priced for {spec.id}, a model of provider {spec.provider}, not "
                             f"{provider}; build a dataset for a {provider} model (--base-model).", field="provider")
        slot = self._provider(provider)
        try:
            content = await asyncio.to_thread(Path(d.path).read_bytes)
        except OSError as exc:
            raise VerificationFailed(f"the file of dataset {dataset} ({d.path}) cannot be read ({exc.strerror}); "
                                     "build the dataset again.", dataset=dataset) from None
        if hashlib.sha256(content).hexdigest() != d.sha256:
            raise VerificationFailed(f"the file of dataset {dataset} ({d.path}) changed since it was built; build "
                                     "the dataset again.", dataset=dataset)
        n = epochs or d.epochs  # 0 or None: the dataset's own
        cost = training_cost_micros(d.tokens * n, price)
        from core.orchestration.providers import own_model_id

        now = self.e.now()
        rec = TuneJob(new_tune_id(), ctx.tenant, d.project, d.dataset_id, provider, slot.settings.name, spec.id,
                      own_model_id(spec), n, "", "queued", cost, ctx.user, now, now, suffix=suffix)
        holder: list[Any] = []

        def op() -> dict[str, Any]:
            self.e.require(ctx, "quotas.manage")
            self.usage._admit(ctx, Charge(tokens=d.tokens * n, cost_usd=cost),
                              f"fine-tuning on {d.tokens * n:,} tokens ({d.examples} examples x {n} epochs)")
            job = self.jobs.enqueue(ctx, KIND, {"tune": rec.tune_id, "poll_ms": poll_ms or POLL_MS}, d.project or None)
            holder.append(job)
            rec.job_id = job.id
            self.e.write(Insert("provider_tune_jobs", rec.row()))
            self.e.audit(ctx.tenant, ctx, "tune.submit", f"tune:{rec.tune_id}", details={
                "dataset": dataset, "provider": provider, "provider_name": rec.provider_name, "base_model": spec.id,
                "epochs": n, "est_cost_usd": micros_to_usd(cost), "job": job.id})
            self.tunes[rec.tune_id] = rec
            return rec.as_json()

        try:
            answer = await self.e.run(ctx, "tune.submit", f"tune:{rec.tune_id}", op)
        except BaseException:
            for job in holder:
                self.jobs.forget(job.id)
            self.tunes.pop(rec.tune_id, None)
            raise
        self.jobs.enqueued(holder[0])
        return answer

    async def status(self, ctx: Caller, id: str | None = None, limit: int = 50) -> dict[str, Any]:
        """One job with the vendor's latest events, or the caller's visible jobs, newest first."""
        suspended_read_check(self.e.state, ctx)
        if id is None:
            rows = [r for r in self.tunes.values() if self._visible(ctx, r.tenant_id, r.project)]
            rows.sort(key=lambda r: (r.created_at, r.tune_id), reverse=True)
            return {"jobs": [r.as_json() for r in rows[:limit]]}
        rec = self.get(ctx, id)
        events: list[dict[str, Any]] = []
        note = None
        if rec.vendor_job_id:
            try:  # a status answer must not hang on a slow vendor: the job's own row is the answer
                events = await asyncio.wait_for(self._client(rec).events(rec.vendor_job_id), EVENTS_TIMEOUT_S)
            except FineTuneError as err:
                note = f"the provider's events could not be read: {err.message}"
            except TimeoutError:
                note = f"the provider did not list the job's events within {EVENTS_TIMEOUT_S:g} s"
        return {"jobs": [rec.as_json()], "events": events, "events_note": note}

    async def cancel(self, ctx: Caller, id: str) -> dict[str, Any]:
        """Cancel the engine job; the job cancels the vendor's job as it stops."""
        rec = self.get(ctx, id)
        if rec.state in FINAL:
            raise BadRequest(f"fine-tuning job {id} already ended ({rec.state}).", field="id")
        await self.jobs.cancel(ctx, rec.job_id)
        return rec.as_json()

    # -- the job --------------------------------------------------------------------------

    def _client(self, rec: TuneJob) -> FineTuneApi:
        provider = self.providers.current.get(rec.provider_name)
        make = getattr(getattr(provider, "inner", provider), "finetune_client", None)
        if provider is None or make is None:
            raise FineTuneError(f"provider {rec.provider_name!r} is no longer configured or cannot fine-tune; "
                                "configure it again and run musubi engine reload", kind="not_configured")
        client: FineTuneApi = make()
        return client

    async def _save(self, rec: TuneJob, action: str | None = None, details: dict[str, Any] | None = None,
                    **changes: Any) -> None:
        def op() -> None:
            for k, v in changes.items():
                setattr(rec, k, v)
            rec.updated_at = self.e.now()
            if rec.state in FINAL and rec.finished_at is None:
                rec.finished_at = rec.updated_at
            cols = {**changes, "updated_at": rec.updated_at, "finished_at": rec.finished_at}
            self.e.write(Update("provider_tune_jobs", cols, {"tune_id": rec.tune_id}))
            if action:
                self.e.audit(rec.tenant_id, rec.created_by, action, f"tune:{rec.tune_id}",
                             outcome="error" if action == "tune.fail" else "success",
                             details={**(details or {}), "job": rec.job_id})

        await self.e.run(None, action or "tune.progress", f"tune:{rec.tune_id}", op)

    async def _sleep(self, h: JobHandle, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(h.cancelled.wait(), timeout=max(seconds, 0.0))
        h.raise_if_cancelled()

    async def _job(self, h: JobHandle) -> dict[str, Any]:
        rec = self.tunes[h.params["tune"]]
        poll = int(h.params["poll_ms"]) / 1000
        try:
            if rec.vendor_job_id is None:
                await self._start(h, rec)
            vj = await self._poll(h, rec, poll)
        except asyncio.CancelledError:
            job = self.jobs.jobs.get(h.id)
            if job is not None and job.state == "cancelling":  # a user's cancel, not the engine stopping
                await asyncio.shield(self._cancel_vendor(rec))
            raise
        except FineTuneError as err:
            await self._save(rec, "tune.fail", {"step": rec.state, "error": err.message, "status": err.status},
                             state="failed", error_code=err.vendor_code or err.kind, error_message=err.message[:2000])
            raise
        if vj.status == "succeeded":
            return await self._succeeded(rec, vj)
        if vj.status == "failed":
            verr = vj.error or {}
            code, msg = str(verr.get("code") or "failed"), str(verr.get("message") or "no reason given")
            await self._save(rec, "tune.fail", {"vendor_job": vj.id, "error": verr}, state="failed",
                             error_code=code, error_message=msg[:2000])
            raise MusubiError(f"the provider's fine-tuning job {vj.id} failed: {code}: {msg}", code="tune_failed")
        await self._save(rec, "tune.cancel", {"vendor_job": vj.id, "by": "the provider"}, state="cancelled")
        return rec.as_json()

    async def _start(self, h: JobHandle, rec: TuneJob) -> None:
        d = self.datasets[rec.dataset_id]
        if rec.file_id is None:
            await self._save(rec, state="uploading")
            try:
                content = await asyncio.to_thread(Path(d.path).read_bytes)
            except OSError as exc:
                raise FineTuneError(f"the file of dataset {d.dataset_id} cannot be read ({exc.strerror}); nothing "
                                    "was uploaded", kind="verification") from None
            if hashlib.sha256(content).hexdigest() != d.sha256:
                raise FineTuneError(f"the file of dataset {d.dataset_id} changed since it was built; nothing was "
                                    "uploaded", kind="verification")
            file_id = await self._client(rec).upload(f"{d.dataset_id}.jsonl", content)
            await self._save(rec, "tune.upload", {"file": file_id, "bytes": len(content)}, file_id=file_id)
        h.raise_if_cancelled()
        assert rec.file_id is not None
        vj = await self._client(rec).create(rec.file_id, rec.vendor_model, rec.epochs, rec.suffix)
        await self._save(rec, "tune.create", {"vendor_job": vj.id, "status": vj.status, "file": rec.file_id},
                         state="submitted", vendor_job_id=vj.id, vendor_status=vj.status)

    async def _poll(self, h: JobHandle, rec: TuneJob, poll: float) -> VendorJob:
        assert rec.vendor_job_id is not None
        while True:
            h.raise_if_cancelled()
            try:
                vj = await self._client(rec).get(rec.vendor_job_id)
            except FineTuneError as err:
                if err.kind not in TRANSIENT:
                    raise
                # The HTTP layer already retried; wait what the vendor asked (Retry-After), else one interval.
                await self._sleep(h, err.retry_after_s if err.retry_after_s is not None else poll)
                continue
            stage = VENDOR_STATES.index(vj.status) + 1 if vj.status in VENDOR_STATES else 0
            h.progress(min(stage, 4), 4, "stages")
            if vj.status != rec.vendor_status:
                await self._save(rec, "tune.status", {"vendor_job": vj.id, "status": vj.status},
                                 vendor_status=vj.status)
            if vj.status in VENDOR_FINAL:
                return vj
            await self._sleep(h, poll)

    async def _cancel_vendor(self, rec: TuneJob) -> None:
        try:
            if rec.vendor_job_id:
                vj = await self._client(rec).cancel(rec.vendor_job_id)
                status = vj.status
            else:
                status = None
            await self._save(rec, "tune.cancel", {"vendor_job": rec.vendor_job_id, "by": "a user"},
                             state="cancelled", vendor_status=status or rec.vendor_status)
        except FineTuneError as err:
            await self._save(rec, "tune.cancel", {"vendor_job": rec.vendor_job_id, "error": err.message},
                             state="cancelled", error_code=err.vendor_code or err.kind,
                             error_message=f"the provider's cancel failed: {err.message}"[:2000])

    async def _succeeded(self, rec: TuneJob, vj: VendorJob) -> dict[str, Any]:
        from core.finetune.register import register_model

        d = self.datasets[rec.dataset_id]
        spec, price = self._base(rec.tenant_id, rec.base_model)
        if not vj.fine_tuned_model:
            raise MusubiError(f"the provider says job {vj.id} succeeded but names no fine-tuned model",
                              code="tune_failed")
        trained = vj.trained_tokens if vj.trained_tokens is not None else d.tokens * rec.epochs
        cost = training_cost_micros(trained, price)
        model_id = await asyncio.to_thread(register_model, self.e.paths.home, rec, spec, price, vj.fine_tuned_model,
                                           self.e.now().date())
        owner = Caller(rec.created_by, rec.created_by, rec.tenant_id, rec.project or None)

        def op() -> None:
            # The vendor trained and billed already: recorded without admission (like a settle).
            self.usage._charge(owner, Charge(tokens=trained, requests=1, cost_usd=cost), model_id, trained, 0,
                               "finetune", None)

        await self.e.run(None, "tune.register", f"tune:{rec.tune_id}", op)
        await self._save(rec, "tune.register", {"model": model_id, "vendor_model": vj.fine_tuned_model,
                                                "trained_tokens": trained, "cost_usd": micros_to_usd(cost)},
                         state="succeeded", fine_tuned_model=vj.fine_tuned_model, registered_model=model_id,
                         trained_tokens=trained, cost_micros=cost)
        return rec.as_json()
