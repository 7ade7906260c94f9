"""One warm search worker with the real all-MiniLM-L6-v2 for the session's rag tests (loading the model
costs seconds; every test that needs real vectors shares it), with every network route closed."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from core.config import SearchSettings
from core.rag.worker_client import WorkerClient

from .helpers import NO_NETWORK, can_unshare


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def real_worker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[WorkerClient]:
    """The worker, started (model loaded) before the first test uses it; tests using it run on the session loop
    (``pytest.mark.asyncio(loop_scope="session")``) and must leave it as they found it (their own folders)."""
    pytest.importorskip("sentence_transformers")
    tmp = tmp_path_factory.mktemp("rag")
    c = WorkerClient(SearchSettings(idle_s=600), log_path=tmp / "worker.log")
    if can_unshare():  # better still: a network namespace with no interface up at all
        c.python = str(tmp / "python-no-net")
        Path(c.python).write_text(f'#!/bin/sh\nexec unshare -rn {sys.executable} "$@"\n')
        Path(c.python).chmod(0o755)
    try:
        # The closed routes are in the worker's environment from its start; the rest of the session keeps its own.
        with pytest.MonkeyPatch.context() as mp:
            for k, v in NO_NETWORK.items():
                mp.setenv(k, v)
            await c.hello()
        yield c
    finally:
        await c.close()
