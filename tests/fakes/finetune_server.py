"""A fake of OpenAI's and Azure OpenAI's files and fine-tuning endpoints, on 127.0.0.1.

Shapes (read, not copied) from:

- OpenAI API reference, Files (``POST /v1/files`` multipart with ``purpose`` and ``file`` -> a
  ``file`` object: ``id``, ``object: "file"``, ``bytes``, ``created_at``, ``filename``,
  ``purpose``, ``status``) and Fine-tuning (``POST /v1/fine_tuning/jobs`` with
  ``training_file``, ``model``, ``hyperparameters.n_epochs``, ``suffix``; ``GET`` one job, the
  list, ``GET .../events`` and ``POST .../cancel``), as typed by the official SDKs:
  ``FineTuningJob`` (``status`` one of validating_files | queued | running | succeeded | failed |
  cancelled; ``fine_tuned_model`` null until success; ``error`` ``{code, message, param}`` on
  failure; ``trained_tokens``), ``FineTuningJobEvent`` (``object: "fine_tuning.job.event"``,
  ``created_at``, ``level`` info | warn | error, ``message``), see
  https://elsoul.github.io/skeet-ai/interfaces/openai.OpenAI.FineTuning.Jobs.FineTuningJob-1.html
  and https://developers.openai.com/api/reference/go/resources/files;
- Azure OpenAI "data plane - authoring" (2024-10-21 GA): the same bodies under
  ``{endpoint}/openai/files`` and ``{endpoint}/openai/fine_tuning/jobs`` with a required
  ``?api-version=`` and an ``api-key`` header (Microsoft's fine-tuning REST how-to,
  MicrosoftDocs/azure-ai-docs ``articles/ai-foundry/openai/includes/fine-tuning-rest.md``);
- errors: OpenAI's 401 body ``{"error": {"message": "Incorrect API key provided: sk-...",
  "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}`` and 429 with
  ``Retry-After`` (/work/shared/api-notes/llm-providers.md).

Control (tests run it in a thread: ``with threaded(lambda: FineTuneFake(key)) as fake``):
``fake.script = ["validating_files", "queued", "running", "succeeded"]`` is the status each
``GET`` of a job moves to (the last one sticks); ``fake.failure`` is the error object a job that
reaches ``failed`` carries; ``fake.fail(429, headers={"Retry-After": "1"}, path="/fine_tuning")``
(from :class:`FakeServer`) answers the next matching request with a fault.
"""

from __future__ import annotations

import email.parser
import json
import secrets
import time
from typing import Any

from aiohttp import web

from tests.fakes.base import FakeServer, bearer, json_error

DEFAULT_SCRIPT = ["validating_files", "queued", "running", "succeeded"]
INVALID_FILE = {"code": "invalid_training_file", "param": "training_file",
                "message": "The job failed due to an invalid training file. Expected file to have JSONL format."}


def _error(status: int, message: str, code: str | None, type_: str = "invalid_request_error",
           param: str | None = None) -> web.Response:
    return json_error(status, {"error": {"message": message, "type": type_, "param": param, "code": code}})


class FineTuneFake(FakeServer):
    """Files and fine-tuning jobs of one fake account; ``url`` + ``/v1`` (OpenAI) or the endpoint (Azure)."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.script = list(DEFAULT_SCRIPT)
        self.failure: dict[str, Any] = dict(INVALID_FILE)
        self.trained_tokens: int | None = 4_242
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, int] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        for prefix in ("/v1", "/openai"):
            r = self.app.router
            r.add_post(f"{prefix}/files", self.upload)
            r.add_post(f"{prefix}/fine_tuning/jobs", self.create)
            r.add_get(f"{prefix}/fine_tuning/jobs", self.list_jobs)
            r.add_get(f"{prefix}/fine_tuning/jobs/{{id}}", self.get_job)
            r.add_get(f"{prefix}/fine_tuning/jobs/{{id}}/events", self.list_events)
            r.add_post(f"{prefix}/fine_tuning/jobs/{{id}}/cancel", self.cancel)

    # -- auth -------------------------------------------------------------------------------

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.path.startswith("/openai/"):
            if not request.query.get("api-version"):
                return json_error(404, {"error": {"code": "404", "message": "Resource not found"}})
            given = request.headers.get("api-key")
            if given != self.api_key:
                return json_error(401, {"error": {"code": "401", "message": "Access denied due to invalid "
                                                  "subscription key or wrong API endpoint."}})
            return None
        given = bearer(request) or ""
        if given != self.api_key:
            shown = f"{given[:3]}...{given[-4:]}" if len(given) > 8 else given
            return _error(401, f"Incorrect API key provided: {shown}. You can find your API key at "
                               "https://platform.openai.com/account/api-keys.", "invalid_api_key")
        return None

    # -- files ------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        ctype = request.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            return _error(400, "Expected multipart/form-data.", None)
        raw = self.requests[-1].body  # the middleware read it
        msg = email.parser.BytesParser().parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw)
        payload: Any = msg.get_payload() or []
        parts: dict[Any, Any] = {p.get_param("name", header="content-disposition"): p for p in payload}
        purpose = parts.get("purpose")
        filepart = parts.get("file")
        if purpose is None or purpose.get_payload(decode=True).decode() != "fine-tune":
            return _error(400, "'purpose' must be 'fine-tune' here.", None, param="purpose")
        if filepart is None:
            return _error(400, "Missing required parameter: 'file'.", None, param="file")
        content = filepart.get_payload(decode=True) or b""
        fid = "file-" + secrets.token_hex(12)
        self.contents[fid] = content
        self.files[fid] = {"id": fid, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                           "filename": filepart.get_filename(), "purpose": "fine-tune", "status": "processed"}
        return web.json_response(self.files[fid], status=200 if request.path.startswith("/v1") else 201)

    # -- jobs -------------------------------------------------------------------------------

    def _event(self, jid: str, level: str, message: str) -> None:
        self.events[jid].insert(0, {"id": "ftevent-" + secrets.token_hex(8), "object": "fine_tuning.job.event",
                                    "created_at": int(time.time()), "level": level, "message": message,
                                    "type": "message"})

    async def create(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        body = json.loads(self.requests[-1].body or b"{}")
        if body.get("training_file") not in self.files:
            return _error(400, f"invalid training_file: {body.get('training_file')}", "invalid_file",
                          param="training_file")
        if not body.get("model"):
            return _error(400, "Missing required parameter: 'model'.", None, param="model")
        jid = "ftjob-" + secrets.token_hex(12)
        self.jobs[jid] = {
            "id": jid, "object": "fine_tuning.job", "model": body["model"], "created_at": int(time.time()),
            "finished_at": None, "fine_tuned_model": None, "organization_id": "org-fake",
            "result_files": [], "status": "validating_files", "validation_file": None,
            "training_file": body["training_file"], "trained_tokens": None, "error": None, "seed": 42,
            "hyperparameters": {"n_epochs": (body.get("hyperparameters") or {}).get("n_epochs", "auto")},
            "suffix": body.get("suffix"),
        }
        self.steps[jid] = 0
        self.events[jid] = []
        self._event(jid, "info", f"Validating training file: {body['training_file']}")
        return web.json_response(self.jobs[jid], status=200 if request.path.startswith("/v1") else 201)

    def _advance(self, jid: str) -> None:
        job = self.jobs[jid]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        i = min(self.steps[jid] + 1, len(self.script) - 1)
        self.steps[jid] = i
        status = self.script[i]
        if status == job["status"]:
            return
        job["status"] = status
        if status == "succeeded":
            suffix = job.get("suffix") or ""
            job["fine_tuned_model"] = f"ft:{job['model']}:org-fake:{suffix}:{jid[-8:]}"
            job["trained_tokens"] = self.trained_tokens
            job["finished_at"] = int(time.time())
            self._event(jid, "info", "The job has successfully completed")
        elif status == "failed":
            job["error"] = dict(self.failure)
            job["finished_at"] = int(time.time())
            self._event(jid, "error", self.failure["message"])
        else:
            self._event(jid, "info", f"Job {status}")

    async def get_job(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        jid = request.match_info["id"]
        if jid not in self.jobs:
            return _error(404, f"No such fine-tuning job: {jid}", "fine_tune_not_found")
        self._advance(jid)
        return web.json_response(self.jobs[jid])

    async def list_jobs(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        rows = sorted(self.jobs.values(), key=lambda j: j["created_at"], reverse=True)
        return web.json_response({"object": "list", "data": rows, "has_more": False})

    async def list_events(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        jid = request.match_info["id"]
        if jid not in self.jobs:
            return _error(404, f"No such fine-tuning job: {jid}", "fine_tune_not_found")
        limit = int(request.query.get("limit", "20"))
        return web.json_response({"object": "list", "data": self.events[jid][:limit], "has_more": False})

    async def cancel(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        jid = request.match_info["id"]
        job = self.jobs.get(jid)
        if job is None:
            return _error(404, f"No such fine-tuning job: {jid}", "fine_tune_not_found")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return _error(400, f"Job {jid} has already completed.", None)
        job["status"] = "cancelled"
        job["finished_at"] = int(time.time())
        self._event(jid, "info", "Job cancelled")
        return web.json_response(job)
