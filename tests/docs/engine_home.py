"""A real engine on a short temporary MUSUBI_HOME for the documentation tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.client import EngineClient, Identity, read_pid, start_engine, stop_engine
from core.paths import HomePaths

from ..engine.helpers import wait_gone


def new_home() -> HomePaths:
    # Short on purpose: the socket path must stay under 107 bytes.
    return HomePaths(Path(tempfile.mkdtemp(prefix="mh", dir="/tmp")))


def client(paths: HomePaths, tenant: str | None = None, as_user: str | None = None) -> EngineClient:
    return EngineClient(paths, Identity(tenant=tenant, as_user=as_user, cwd="/"), autostart=False)


def shutdown(paths: HomePaths) -> None:
    """Stop the engine of ``paths`` gracefully; SIGKILL it by its pid if that fails."""
    try:
        stop_engine(paths)  # also finds an engine that does not answer, through its pid lock
    except Exception:
        pid = read_pid(paths)
        if pid and pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid)


@contextlib.contextmanager
def running_engine(paths: HomePaths | None = None) -> Iterator[HomePaths]:
    """Start an engine (on a new temp home unless given), stop it on exit; the home stays."""
    paths = paths or new_home()
    start_engine(paths, timeout=60)
    try:
        yield paths
    finally:
        shutdown(paths)


def remove_home(paths: HomePaths) -> None:
    shutil.rmtree(paths.home, ignore_errors=True)
