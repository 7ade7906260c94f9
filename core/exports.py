"""Writing export files safely, in the client process (docs/api.md#export-files).

Every command that writes a file for the user (audit export, audit checkpoint
--export, trace export, the TUI's export forms) goes through :class:`ExportFile`.
The engine only streams the content; the caller's own process creates the file,
so nothing is ever written where the caller could not write.  The rules:

- never inside ``$MUSUBI_HOME`` (its database, journal, key, socket …), except
  its ``exports/`` folder; checked on the resolved path, so a symlinked folder
  pointing into the home is caught too;
- never over an existing file unless ``force`` (``--force``), and then the file
  is *replaced* (a rename), never written into, so a hard link to it elsewhere
  keeps its content;
- never through a symbolic link, even with ``force``: the last component must not
  be one (``O_NOFOLLOW``), and the content goes to a new temporary file
  (``O_CREAT | O_EXCL``) in the target's folder, opened by a descriptor of that
  folder, which is linked into place only when complete — so a partial file
  never appears under the chosen name and a file that appeared meanwhile is not
  replaced.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from core.errors import BadRequest, EngineUnavailable

if TYPE_CHECKING:
    from core.client import EngineClient

# Mode of a new export: audit exports hold who did what, so only the owner reads them.
PRIVATE = 0o600
# Mode of a new export nobody needs to keep private (a trace matrix, a cost estimate); umask applies.
SHARED = 0o666
_LINK_UNSUPPORTED = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}


# A remote session (`musubi serve`, docs/remote.md) runs as the server's OS user: its exports are
# confined to one folder of its own, so a remote user cannot write, or replace, that OS user's files.
_confined: str | None = None


def confine(folder: Path) -> None:
    """Allow exports of this process only inside ``folder`` (created 0700 when missing)."""
    global _confined
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _confined = os.path.realpath(folder)


def _check_confined(folder: str, absolute: str) -> None:
    if _confined is not None and not _inside(folder, _confined):
        raise refused(f"cannot write {absolute}: a remote session writes exports only into {_confined}.",
                      "export_outside_remote")


def refused(message: str, code: str) -> BadRequest:
    """A refused destination: a usage error (exit 2) naming the fix."""
    return BadRequest(message, code=code, field="output")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_destination(path: str, home: Path | None, force: bool = False) -> str:
    """The absolute destination for ``path`` (relative to the working directory), or a refusal.

    ``home`` is the ``$MUSUBI_HOME`` exports must stay out of (but for its ``exports/``).
    The final component is kept as given (a symlink is refused, not followed);
    its folder is resolved, so the home check sees through symlinked folders.
    """
    if not path or not path.strip():
        raise refused("no output file given; name one with -o FILE.", "export_no_path")
    absolute = os.path.abspath(os.path.expanduser(path))
    folder, name = os.path.split(absolute)
    if name in ("", ".", "..") or path.endswith(os.sep):
        raise refused(f"cannot write {absolute}: it names a folder; give a file name.", "export_is_folder")
    real_folder = os.path.realpath(folder)
    if not os.path.isdir(real_folder):
        raise refused(f"cannot write {absolute}: folder {folder} does not exist; create it first or choose another -o FILE.",
                      "export_no_folder")
    target = os.path.join(real_folder, name)
    _check_confined(real_folder, absolute)
    if home is not None:
        real_home = os.path.realpath(home)
        exports = os.path.join(real_home, "exports")
        if _inside(target, real_home) and not (_inside(real_folder, exports)):
            raise refused(
                f"cannot write {absolute}: it is inside MUSUBI_HOME ({home}), where the engine keeps its database, "
                f"journal and keys. Write it elsewhere, or into {Path(home) / 'exports'}.",
                "export_inside_home",
            )
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return target
    if stat.S_ISLNK(st.st_mode):
        raise refused(f"cannot write {absolute}: it is a symbolic link, and exports never write through one "
                      "(even with --force). Remove the link or choose another -o FILE.", "export_symlink")
    if stat.S_ISDIR(st.st_mode):
        raise refused(f"cannot write {absolute}: it is a folder; give a file name.", "export_is_folder")
    if not stat.S_ISREG(st.st_mode):
        raise refused(f"cannot write {absolute}: it exists and is not a regular file; choose another -o FILE.",
                      "export_exists")
    if not force:
        raise refused(f"cannot write {absolute}: the file exists. Add --force to replace it, or choose another -o FILE.",
                      "export_exists")
    return target


class ExportFile:
    """A checked destination being written: ``write`` chunks, then ``commit`` (or ``abort``).

    Used as a context manager it commits on a clean exit and aborts (removes the
    temporary file, leaves the destination as it was) on an exception.
    """

    def __init__(self, path: str, home: Path | None, *, force: bool = False, mode: int = PRIVATE) -> None:
        self.path = check_destination(path, home, force)
        self.force = force
        self.bytes = 0
        folder, self.name = os.path.split(self.path)
        flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
        try:
            self._dir = os.open(folder, flags | os.O_NOFOLLOW)
        except OSError as exc:
            raise refused(f"cannot write {self.path}: {exc.strerror}; choose another -o FILE.", "export_failed") from None
        # The folder was resolved before it was opened: make sure a component swapped meanwhile
        # did not land us inside the home after all.
        self._recheck(home)
        self._tmp = f".{self.name[:180]}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                               mode, dir_fd=self._dir)
        except OSError as exc:
            os.close(self._dir)
            raise refused(f"cannot write in {folder}: {exc.strerror}; choose another -o FILE.", "export_failed") from None
        self._open = True

    def _recheck(self, home: Path | None) -> None:
        link = f"/proc/self/fd/{self._dir}"
        if not os.path.exists(link):
            return
        opened = os.readlink(link)
        if _confined is not None and not _inside(opened, _confined):
            os.close(self._dir)
            _check_confined(opened, self.path)
        if home is None:
            return
        real_home = os.path.realpath(home)
        if _inside(opened, real_home) and not _inside(opened, os.path.join(real_home, "exports")):
            os.close(self._dir)
            raise refused(f"cannot write {self.path}: its folder now resolves inside MUSUBI_HOME ({home}).",
                          "export_inside_home")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.bytes += len(data)

    def write_all(self, chunks: Iterable[bytes]) -> None:
        for c in chunks:
            self.write(c)

    def commit(self) -> str:
        """Make the file appear under its name, complete; returns the path."""
        try:
            os.fsync(self._fd)
            os.close(self._fd)
            self._open = False
            if self.force:
                os.replace(self._tmp, self.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
            else:
                self._link_new()
            with contextlib.suppress(OSError):
                os.fsync(self._dir)
        except BadRequest:
            self.abort()
            raise
        except OSError as exc:
            self.abort()
            raise refused(f"cannot write {self.path}: {exc.strerror}; choose another -o FILE.", "export_failed") from None
        os.close(self._dir)
        return self.path

    def _link_new(self) -> None:
        """Put the finished file in place without replacing anything that appeared meanwhile."""
        try:
            os.link(self._tmp, self.name, src_dir_fd=self._dir, dst_dir_fd=self._dir, follow_symlinks=False)
        except FileExistsError:
            raise refused(f"cannot write {self.path}: a file of that name appeared while exporting. "
                          "Add --force to replace it, or choose another -o FILE.", "export_exists") from None
        except OSError as exc:
            if exc.errno not in _LINK_UNSUPPORTED:
                raise
            # A filesystem without hard links: a rename after a last check (the one racy case).
            try:
                os.lstat(self.name, dir_fd=self._dir)
            except FileNotFoundError:
                os.rename(self._tmp, self.name, src_dir_fd=self._dir, dst_dir_fd=self._dir)
                return
            raise refused(f"cannot write {self.path}: the file exists. Add --force to replace it.", "export_exists") from None
        os.unlink(self._tmp, dir_fd=self._dir)

    def abort(self) -> None:
        """Remove the temporary file; the destination is left as it was."""
        if self._open:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._open = False
        with contextlib.suppress(OSError):
            os.unlink(self._tmp, dir_fd=self._dir)
        with contextlib.suppress(OSError):
            os.close(self._dir)

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            self.commit()
        else:
            self.abort()


def write_export(path: str, home: Path | None, data: bytes | str, *, force: bool = False, mode: int = SHARED) -> str:
    """Write one in-memory export (trace matrix, estimate, checkpoint) under the rules above."""
    with ExportFile(path, home, force=force, mode=mode) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return f.path


def export_audit(
    client: EngineClient, fmt: str, filters: dict[str, Any], output: str, *, force: bool = False
) -> dict[str, Any]:
    """``musubi audit export``: the engine streams the events, this process writes ``output``.

    The engine checks the permission first (a dry run, audited when refused), so a
    refusal is the same whatever the destination; only then is the destination
    checked, here, with the caller's own view of the disk.
    """
    route = "/v1/audit/export"
    client.post(route, {"format": fmt, "filters": filters, "dry_run": True})
    f = ExportFile(output, client.paths.home, force=force, mode=PRIVATE)
    try:
        with client.stream("POST", route, {"format": fmt, "filters": filters, "destination": f.path}) as resp:
            expected = int(resp.getheader("Content-Length") or -1)
            events = int(resp.getheader("X-Musubi-Events") or 0)
            while chunk := client.guarded_read(resp.read, 1 << 20):
                f.write(chunk)
        if expected >= 0 and f.bytes != expected:
            raise EngineUnavailable(f"the export stream ended after {f.bytes} of {expected} bytes; nothing was written. Retry.")
    except BaseException:
        f.abort()
        raise
    path = f.commit()
    return {"format": fmt, "path": path, "events": events, "bytes": f.bytes}


def export_checkpoint(client: EngineClient, output: str, *, force: bool = False) -> dict[str, Any]:
    """``musubi audit checkpoint --export FILE``: the engine signs the head, this process writes the document."""
    route = "/v1/audit/checkpoint"
    client.post(route, {"dry_run": True})
    f = ExportFile(output, client.paths.home, force=force, mode=SHARED)
    try:
        doc: dict[str, Any] = client.post(route, {"destination": f.path})
        f.write((json.dumps(doc, indent=2) + "\n").encode("utf-8"))
    except BaseException:
        f.abort()
        raise
    f.commit()
    return doc
