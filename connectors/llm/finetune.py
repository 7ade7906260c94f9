"""OpenAI's and Azure OpenAI's files and fine-tuning APIs, over the chat provider's own HTTP client.

Wire format (sources: OpenAI API reference for Files and Fine-tuning, as mirrored by the official
SDK types ``FileObject``, ``FineTuningJob``, ``FineTuningJobEvent``; Azure OpenAI "data plane -
authoring" spec 2024-10-21 and Microsoft's fine-tuning REST how-to):

- ``POST {base}/files``, multipart/form-data with ``purpose=fine-tune`` and ``file`` -> a
  ``file`` object (``id``);
- ``POST {base}/fine_tuning/jobs`` ``{"training_file", "model", "hyperparameters": {"n_epochs"},
  "suffix"}`` -> a ``fine_tuning.job`` (``id``, ``status``, ``fine_tuned_model``,
  ``trained_tokens``, ``error: {code, message, param}``);
- ``GET {base}/fine_tuning/jobs/{id}``, ``GET .../events?limit=N`` (a ``list`` of
  ``fine_tuning.job.event``: ``created_at``, ``level``, ``message``), ``POST .../cancel``.

OpenAI's base is ``https://api.openai.com/v1`` with ``Authorization: Bearer``; Azure's is
``{endpoint}/openai`` with ``?api-version=`` on every call and an ``api-key`` header (or an
Entra ID bearer token).  Retries (429 with ``Retry-After``, 5xx on idempotent calls), timeouts
and key redaction are the HTTP layer's (:mod:`connectors.http`); this module maps its typed
errors onto :class:`core.finetune.contracts.FineTuneError`.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from connectors.http import HttpError
from core.finetune.contracts import FineTuneError, VendorJob

if TYPE_CHECKING:
    from connectors.llm.openai import OpenAIProvider

UPLOAD_TIMEOUT_S = 300.0
CALL_TIMEOUT_S = 60.0


def _job(data: Any) -> VendorJob:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("status"), str):
        raise FineTuneError(f"the provider answered something that is not a fine-tuning job: {str(data)[:200]}",
                            kind="malformed")
    err = data.get("error")
    tokens = data.get("trained_tokens")
    return VendorJob(
        id=data["id"], status=data["status"], model=str(data.get("model") or ""),
        fine_tuned_model=data.get("fine_tuned_model") or None,
        trained_tokens=int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
        error={k: err.get(k) for k in ("code", "message", "param")} if isinstance(err, dict) and err else None,
    )


class FineTuneClient:
    """:class:`core.finetune.contracts.FineTuneApi` for an OpenAI or Azure OpenAI provider."""

    def __init__(self, provider: OpenAIProvider) -> None:
        self.provider = provider
        self.http = provider.http
        self.azure = provider.kind == "azure-openai"

    def _path(self, path: str) -> str:
        if not self.azure:
            return path
        version = self.provider.api_version()  # type: ignore[attr-defined]
        return f"{path}{'&' if '?' in path else '?'}api-version={version}"

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**(await self.provider.request_headers()), **kw.pop("headers", {})}
        try:
            answer = await self.http.request(method, self._path(path), headers=headers, **kw)
        except HttpError as err:
            raise FineTuneError(self.http.redactor.text(err.message), kind=err.kind, status=err.status,
                                retry_after_s=err.retry_after_s, vendor_code=err.vendor_code) from None
        return answer.json()

    async def upload(self, filename: str, content: bytes) -> str:
        # The multipart body is built once as bytes, so a retried attempt (a 429) sends it again intact.
        boundary = "musubi-" + secrets.token_hex(12)
        safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe}\"\r\n"
                "Content-Type: application/jsonl\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        data = await self._call("POST", "files", data=body, timeout_s=UPLOAD_TIMEOUT_S,
                                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise FineTuneError(f"the provider's upload answer has no file id: {str(data)[:200]}", kind="malformed")
        return str(data["id"])

    async def create(self, training_file: str, model: str, epochs: int, suffix: str | None) -> VendorJob:
        body: dict[str, Any] = {"training_file": training_file, "model": model,
                                "hyperparameters": {"n_epochs": epochs}}
        if suffix:
            body["suffix"] = suffix
        return _job(await self._call("POST", "fine_tuning/jobs", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, timeout_s=CALL_TIMEOUT_S))

    async def get(self, job_id: str) -> VendorJob:
        return _job(await self._call("GET", f"fine_tuning/jobs/{job_id}", timeout_s=CALL_TIMEOUT_S))

    async def events(self, job_id: str, limit: int = 20) -> list[dict[str, Any]]:
        data = await self._call("GET", f"fine_tuning/jobs/{job_id}/events?limit={limit}", timeout_s=CALL_TIMEOUT_S)
        rows = data.get("data") if isinstance(data, dict) else None
        return [{k: e.get(k) for k in ("created_at", "level", "message")} for e in rows or () if isinstance(e, dict)]

    async def cancel(self, job_id: str) -> VendorJob:
        return _job(await self._call("POST", f"fine_tuning/jobs/{job_id}/cancel", timeout_s=CALL_TIMEOUT_S))

    async def aclose(self) -> None:
        """The provider owns the HTTP session; the provider set closes it."""
