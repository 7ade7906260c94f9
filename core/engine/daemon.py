"""The engine process: one per ``$MUSUBI_HOME``, owner of the database.

Start-up: take the pid-file lock (a second engine reports the running one),
clean a stale socket, open and migrate the database, create tenant 'default'
for the first user, then serve on ``engine.sock`` (mode 0600).  SIGTERM/SIGINT
stop gracefully: stop accepting, flush the open group commit, checkpoint.
A start-up failure is written to ``logs/engine-start-error.json`` so the
client that launched us can show the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import gc
import json
import logging
import logging.handlers
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from core.config import env
from core.errors import MusubiError, StorageError
from core.paths import MAX_SOCKET_PATH, HomePaths

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("musubi.engine")
START_ERROR = "engine-start-error.json"
LOCK_TRIES = 10


def _setup_logging(paths: HomePaths) -> None:
    handler = logging.handlers.RotatingFileHandler(paths.engine_log, maxBytes=5_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _write_start_error(paths: HomePaths, exc: MusubiError) -> None:
    with contextlib.suppress(OSError):
        (paths.logs / START_ERROR).write_text(json.dumps(exc.to_dict()), encoding="utf-8")


def take_lock(paths: HomePaths) -> IO[str]:
    """Hold an exclusive lock on the pid file for the engine's lifetime."""
    f = open(paths.pidfile, "a+", encoding="utf-8")  # noqa: SIM115 - held open on purpose
    # `engine status` and `engine stop` probe the lock with a shared flock for a moment: retry
    # briefly so a probe never passes for a running engine.
    for attempt in range(LOCK_TRIES):
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt < LOCK_TRIES - 1:
                time.sleep(0.02)
                continue
            f.seek(0)
            other = f.read().strip() or "?"
            f.close()
            raise MusubiError(f"an engine is already running for {paths.home} (pid {other}).", code="already_running") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


async def bind_socket(runner: web.AppRunner, paths: HomePaths) -> tuple[web.UnixSite, int]:
    """Serve on a new ``engine.sock`` (born 0600); returns the site and the socket's inode."""
    from aiohttp import web

    with contextlib.suppress(FileNotFoundError):
        paths.socket.unlink()  # we hold the lock, so no live engine owns whatever is there
    old = os.umask(0o177)  # the socket is born 0600: no window where others may connect
    try:
        site = web.UnixSite(runner, str(paths.socket))
        await site.start()
    finally:
        os.umask(old)
    os.chmod(paths.socket, 0o600)
    return site, os.lstat(paths.socket).st_ino


def socket_is_ours(paths: HomePaths, ino: int) -> bool:
    """Whether ``engine.sock`` is still the socket we bound (not deleted, not replaced)."""
    try:
        st = os.lstat(paths.socket)
    except FileNotFoundError:
        return False
    return st.st_ino == ino and stat.S_ISSOCK(st.st_mode)


async def serve(paths: HomePaths) -> None:
    from aiohttp import web

    from core.engine.access import engine_os_user
    from core.engine.engine import Engine
    from core.engine.server import build_app
    from core.storage.duckdb_store import DuckDBStorage

    # Export content left by a crash on its way to a client: nobody can still be reading it.
    if paths.scratch.is_dir():
        for leftover in paths.scratch.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()
    storage = DuckDBStorage(paths.db)
    engine = Engine(paths, storage)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, engine.providers.reload_soon)  # re-read the provider settings
    ops = engine.runner
    ops.committer.start()
    owner = engine_os_user()
    if engine.tenancy.bootstrap(owner):
        await ops.committer.seal()
        log.info("empty home: created tenant 'default' owned by %s", owner)

    app = build_app(engine, stop)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await engine.tune_embed.start()  # before jobs resume: finish the folder cleanup a crash interrupted
    await engine.jobs.start()  # after build_app: route features register their job kinds there
    await engine.notifications.start()  # notify (issue 17): resume the durable notification queue
    site, ino = await bind_socket(runner, paths)
    log.info("engine %s serving on %s", os.getpid(), paths.socket)

    async def sweeper() -> None:
        nonlocal site, ino
        while not stop.is_set():
            await asyncio.sleep(1.0)
            try:
                if not socket_is_ours(paths, ino):
                    # Deleted or replaced (a cleanup script, a careless rm): without it no client can
                    # reach us, so bind a new one; connections already open keep working.
                    log.warning("%s was removed or replaced: re-creating it", paths.socket)
                    old_site = site
                    site, ino = await bind_socket(runner, paths)
                    await old_site.stop()
            except Exception:
                log.exception("cannot re-create the socket %s", paths.socket)
            try:
                await ops.run(None, "usage.expire", "reservations", engine.usage.expire_reservations)
            except Exception:
                log.exception("reservation sweep failed")

    sweep = asyncio.create_task(sweeper())
    # Every request allocates a few hundred short-lived objects (request, task, futures,
    # dicts); with the default threshold of 700 the collector ran every few requests and
    # walked the loaded state each time.  Freeze what start-up built and collect the
    # youngest generation every 50,000 allocations: ~4 % less CPU per request under load
    # (benchmarks/bench_engine_load.py).  Reference counting still frees almost everything.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    await stop.wait()
    log.info("stopping: flushing writes")
    sweep.cancel()
    if socket_is_ours(paths, ino):  # whatever else sits there now is not ours to remove
        with contextlib.suppress(FileNotFoundError):
            paths.socket.unlink()
    await runner.cleanup()
    await engine.jobs.close()  # running jobs become interrupted, resumed at the next start
    # notify (issue 17): a few seconds for queued notifications (e.g. "run interrupted"), then stop sending
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine.notifications.idle(), 3)
    await engine.notifications.close()
    await engine.entra_logins.close()  # issue 17 gaps: end pending Entra device-flow polls
    await engine.providers.aclose()  # the providers' pooled HTTP sessions
    await ops.committer.close()
    storage.close()
    log.info("engine stopped cleanly")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.engine", description="Run the Musubi engine in the foreground.")
    ap.add_argument("--home", help="MUSUBI_HOME (default: $MUSUBI_HOME or the platform data dir)")
    args = ap.parse_args(argv)
    paths = HomePaths.resolve(args.home)
    try:
        paths.ensure_writable()
    except MusubiError as exc:
        print(exc.message, file=sys.stderr)  # nowhere else to put it: the home itself is the problem
        return 1
    with contextlib.suppress(FileNotFoundError):
        (paths.logs / START_ERROR).unlink()
    _setup_logging(paths)
    if len(str(paths.socket)) > MAX_SOCKET_PATH:
        err = MusubiError(
            f"socket path {paths.socket} is longer than {MAX_SOCKET_PATH} bytes, the Unix limit; use a shorter MUSUBI_HOME.",
            code="home_path_too_long",
        )
        _write_start_error(paths, err)
        print(err.message, file=sys.stderr)
        return 1
    try:
        lock = take_lock(paths)
    except MusubiError as exc:
        _write_start_error(paths, exc)
        print(exc.message, file=sys.stderr)
        return 1
    try:
        prof_out = env("MUSUBI_ENGINE_PROFILE")
        if prof_out:  # developers: profile the engine's loop thread (see DEVELOPERS.md)
            import cProfile

            cProfile.runctx("asyncio.run(serve(paths))", globals(), {"serve": serve, "paths": paths, "asyncio": asyncio}, prof_out)
        else:
            asyncio.run(serve(paths))
    except StorageError as exc:
        log.error("cannot start: %s", exc.message)
        _write_start_error(paths, exc)
        print(exc.message, file=sys.stderr)
        return 1
    except Exception as exc:
        log.exception("engine crashed")
        _write_start_error(paths, MusubiError(f"engine failed to start: {type(exc).__name__}: {exc}", code="start_failed"))
        return 1
    finally:
        with contextlib.suppress(OSError):
            Path(paths.pidfile).write_text("")
        lock.close()
    return 0
