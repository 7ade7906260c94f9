"""Change detection for the automatic re-scan: a file watcher per repository, or polling.

The Trace screen asks the engine every few seconds whether the repository changed
(``/v1/trace?view=summary``).  Without a watcher, each ask is an incremental scan:
a stat of every listed file.  With one, the engine knows whether anything changed
since its last scan and answers from memory when nothing did.

What is watched is what the scan reads: the folders holding the files it listed
(git's list or the .gitignore-aware walk) and their parent folders, each one
non-recursively.  So ignored trees (``node_modules``, build output) cost no OS
watches and symlinks are never followed (a link to ``/`` cannot make the watcher
walk the disk).  A new folder shows as a change in its watched parent; the re-scan
that follows lists it and the watcher is restarted on the new set of folders
(which counts as a change itself, so nothing written meanwhile is missed).

The watcher is watchfiles' Rust notifier (inotify, FSEvents, ...) in a daemon
thread that looks at its stop event every ``STEP_MS``, so :meth:`RepoWatch.stop`
(called on the engine's graceful stop) ends it promptly.  Where watching is
unavailable — the notifier fails to start (inotify limits, an unsupported file
system), it dies, the repository has more than ``MAX_DIRS`` folders, more than
``MAX_WATCHED`` repositories are watched, or ``MUSUBI_TRACE_WATCH=0`` — the
repository is polled as before: every ask re-scans.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from core.config import env

log = logging.getLogger(__name__)

ENV = "MUSUBI_TRACE_WATCH"  # "0" turns watching off (polling only)
MAX_WATCHED = 8  # repositories watched at once; more are polled
MAX_DIRS = 20_000  # folders watched per repository (each is one OS watch); more: polled
DEBOUNCE_MS = 400  # changes are grouped over at most this long before they count
STEP_MS = 50  # how often the notifier looks at the stop event (bounds how long stop takes)
ADDED = 1  # watchfiles.Change.added
JOIN_S = 5.0  # how long stop waits for the thread (it ends within a step or two)


class Notifier(Protocol):
    """What :class:`RepoWatch` needs of watchfiles' ``RustNotify``."""

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop_event: Any) -> Any: ...

    def close(self) -> None: ...


MakeNotifier = Callable[[list[str]], Notifier]


def rust_notifier(paths: list[str]) -> Notifier:
    """Watch each of ``paths`` (folders) non-recursively; raises when the OS will not (e.g. inotify limit)."""
    # Imported here: only an engine that serves the Trace screen pays for it; the TUI never does.
    from watchfiles._rust_notify import RustNotify

    return RustNotify(paths, False, False, 300, False, True)


def folders(listed: Iterable[str]) -> frozenset[str]:
    """The folders (relative, ``""`` for the root) holding ``listed`` files, and all their parents."""
    out = {""}
    for rel in listed:
        d = rel.rpartition("/")[0]
        while d not in out:
            out.add(d)
            d = d.rpartition("/")[0]
    return frozenset(out)


def _relevant() -> Callable[[int, str], bool]:
    """watchfiles' default filter: .git, __pycache__, node_modules, editor swap files do not count."""
    from watchfiles import Change, DefaultFilter

    f = DefaultFilter()
    return lambda change, path: f(Change(change), path)


class RepoWatch:
    """A repository's change counter, bumped by a watcher thread; ``watching`` says whether it is trusted."""

    def __init__(self, root: Path, make: MakeNotifier = rust_notifier) -> None:
        self.root = root
        self.make = make
        self.version = 0  # bumped after each group of relevant changes (and on each restart)
        self.reason: str | None = "not started yet"  # why this repository is polled, when it is
        self._dirs: frozenset[str] | None = None  # absolute paths being watched
        self._base: frozenset[str] = frozenset()  # of them, those holding listed files (and their parents)
        self._new: set[str] = set()  # folders created in a base folder since: watched though still empty
        self._failed = False  # the OS refused: do not try again on every ask
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one (re)start at a time
        self._bump_lock = threading.Lock()  # version and _new: changed by the watcher thread and by restarts
        self._relevant = _relevant()

    @property
    def watching(self) -> bool:
        """True while the watcher runs: an unchanged version then means an unchanged repository."""
        t = self._thread
        return t is not None and t.is_alive() and not self._stop.is_set()

    def mode(self) -> dict[str, Any]:
        return {"mode": "watch" if self.watching else "poll", "reason": None if self.watching else self.reason}

    def ensure(self, listed: list[str]) -> None:
        """Watch the folders of ``listed`` (the last scan's files); restart only when they changed."""
        with self._lock:
            if self._failed:
                return
            base = frozenset(str(self.root / d) if d else str(self.root) for d in folders(listed))
            # A new, still empty folder holds no listed file; watch it anyway, or a file written
            # into it would go unseen. Only one level below a base folder: an ignored tree
            # being built (build/, dist/) costs one watch, not one per folder.
            with self._bump_lock:
                self._new = {d for d in self._new if d not in base and os.path.isdir(d)}
                dirs = base | self._new
            if dirs == self._dirs and self.watching:
                return
            if len(dirs) > MAX_DIRS:
                self._give_up(f"{len(dirs)} folders to watch (more than {MAX_DIRS}); polling instead")
                return
            self._halt()
            self._stop = threading.Event()
            try:
                notifier = self.make(sorted(dirs))
            except FileNotFoundError:
                # A folder went away since the scan: the next ask re-scans and tries again.
                self.reason, self._dirs = "a folder vanished while the watcher started; retrying", None
                self._bump()
                return
            except Exception as exc:  # noqa: BLE001 - any failure to watch means: poll instead
                self._give_up(f"file watcher unavailable ({type(exc).__name__}: {exc}); polling instead")
                return
            self._dirs, self._base, self.reason = dirs, base, None
            self._thread = threading.Thread(
                target=self._run, args=(notifier, self._stop), name=f"trace-watch:{self.root.name}", daemon=True
            )
            self._thread.start()
            # Whatever changed between the scan's listing and now was not seen: count it as a change.
            self._bump()

    def _bump(self) -> None:
        with self._bump_lock:
            self.version += 1

    def _give_up(self, reason: str) -> None:
        self._failed, self.reason = True, reason
        log.info("trace: %s: %s", self.root, reason)

    def _run(self, notifier: Notifier, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                got = notifier.watch(DEBOUNCE_MS, STEP_MS, 0, stop)
                if got == "stop":
                    break
                if not isinstance(got, set):
                    continue
                relevant = [(c, p) for c, p in got if self._relevant(c, p)]
                for c, p in relevant:
                    if c == ADDED and os.path.dirname(p) in self._base and os.path.isdir(p):
                        with self._bump_lock:
                            self._new.add(p)  # watched from the restart the next re-scan makes
                if relevant:
                    self._bump()
        except Exception as exc:  # noqa: BLE001 - a dead watcher degrades to polling, never to stale answers
            self._failed = True
            self.reason = f"file watcher stopped ({type(exc).__name__}: {exc}); polling instead"
            log.warning("trace: %s: %s", self.root, self.reason)
        finally:
            stop.set()  # `watching` turns false before the notifier goes away
            notifier.close()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_S)

    def stop(self) -> None:
        """End the watcher thread and wait for it (a step or two); the repository is polled afterwards."""
        with self._lock:
            self._halt()
            self._failed, self.reason = True, "stopped"

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


class Watches:
    """The watched repositories of one engine; :meth:`close` stops them all."""

    def __init__(self, make: MakeNotifier = rust_notifier) -> None:
        self.make = make
        self._watches: dict[Path, RepoWatch] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, root: Path) -> RepoWatch | None:
        """The watch of ``root`` (created on first use, started by :meth:`RepoWatch.ensure`); None: poll it."""
        with self._lock:
            w = self._watches.get(root)
            if w is not None or self._closed or env(ENV) == "0":
                return w
            if sum(1 for x in self._watches.values() if x.watching) >= MAX_WATCHED:
                return None
            w = self._watches[root] = RepoWatch(root, self.make)
            return w

    def peek(self, root: Path) -> RepoWatch | None:
        """The watch of ``root`` if one was created (never creates one)."""
        with self._lock:
            return self._watches.get(root)

    def threads(self) -> list[threading.Thread]:
        """The watcher threads still alive (for tests: none after :meth:`close`)."""
        with self._lock:
            return [t for w in self._watches.values() if (t := w.thread) is not None and t.is_alive()]

    def close(self) -> None:
        """Stop every watcher (the engine's graceful stop); later requests poll."""
        with self._lock:
            self._closed = True
            watches, self._watches = list(self._watches.values()), {}
        for w in watches:
            w.stop()
