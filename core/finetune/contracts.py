"""What the engine needs of a provider's files and fine-tuning API, and what it gets back.

The client is :class:`connectors.llm.finetune.FineTuneClient`; the engine reaches it through
the configured chat provider (``provider.finetune_client()``), so no new entry point is needed
and the provider's own settings (base URL, key or Entra token, api-version) apply.  Core never
imports connectors: this module holds the protocol and the shapes both sides share.

Vendor states (OpenAI ``fine_tuning.job.status``; Azure uses the same words): ``validating_files``,
``queued``, ``running``, then one of ``succeeded``, ``failed``, ``cancelled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from core.errors import MusubiError

VENDOR_STATES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
VENDOR_FINAL = frozenset({"succeeded", "failed", "cancelled"})
PROVIDERS = {"openai": "openai", "azure": "azure-openai"}  # --provider -> the configured provider's kind


@dataclass(frozen=True)
class VendorJob:
    """One ``fine_tuning.job`` as the vendor answered it."""

    id: str
    status: str
    model: str
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: dict[str, Any] | None = None  # {"code", "message", "param"} of a failed job


class FineTuneError(MusubiError):
    """The vendor refused or failed a files / fine-tuning call (its own text, keys masked)."""

    code = "provider_error"
    http_status = 502

    def __init__(self, message: str, *, kind: str = "upstream", status: int | None = None,
                 retry_after_s: float | None = None, vendor_code: str | None = None) -> None:
        super().__init__(message, kind=kind, status=status, vendor_code=vendor_code)
        self.kind = kind  # auth | rate_limited | bad_request | not_found | upstream | timeout | connection
        self.status = status
        self.retry_after_s = retry_after_s
        self.vendor_code = vendor_code


@runtime_checkable
class FineTuneApi(Protocol):
    """Files and fine-tuning jobs at one provider.  Every method raises :class:`FineTuneError`."""

    async def upload(self, filename: str, content: bytes) -> str:
        """``POST files`` (multipart, ``purpose=fine-tune``): the file's id."""
        ...

    async def create(self, training_file: str, model: str, epochs: int, suffix: str | None) -> VendorJob:
        """``POST fine_tuning/jobs``."""
        ...

    async def get(self, job_id: str) -> VendorJob:
        """``GET fine_tuning/jobs/{id}``."""
        ...

    async def events(self, job_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """``GET fine_tuning/jobs/{id}/events``: newest first, each ``{created_at, level, message}``."""
        ...

    async def cancel(self, job_id: str) -> VendorJob:
        """``POST fine_tuning/jobs/{id}/cancel``."""
        ...

    async def aclose(self) -> None:
        ...
