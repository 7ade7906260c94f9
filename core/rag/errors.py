"""Typed errors of the embedding model, the vector index and the embedding worker (light)."""

from __future__ import annotations

from core.errors import MusubiError


class ModelUnavailable(MusubiError):
    """The embedding model cannot be found, extracted or loaded; the message names the path and the fix."""

    code = "model_unavailable"
    http_status = 503


class IndexCorrupt(MusubiError):
    """A vector index on disk is torn, truncated or built with another model: rebuild it, never serve it.

    ``extra["reason"]`` is one of ``missing_manifest``, ``bad_manifest``, ``format``, ``checksum``,
    ``unreadable``, ``model_mismatch``, ``dim_mismatch``, ``count_mismatch``.
    """

    code = "index_corrupt"
    http_status = 503


class WorkerFailed(MusubiError):
    """The embedding worker died or answered nonsense twice in a row; the message says where its log is."""

    code = "search_worker_failed"
    http_status = 503


class WorkerRequestError(MusubiError):
    """The worker refused one request (bad arguments); the worker itself is fine."""

    code = "search_worker_request"
    http_status = 400
    exit_code = 2
