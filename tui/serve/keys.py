"""The keys file of ``musubi serve ssh``: which public key is which musubi user, in which tenant.

One key per line, in this project's own syntax (docs/remote.md#keys-file)::

    # comment
    musubi:user=mia,tenant=acme ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... mia@laptop

The ``musubi:`` prefix keeps an OpenSSH ``authorized_keys`` file from being read by
mistake: its options (``environment=``, ``command=``, ``from=`` …) mean nothing here and a
line carrying them is refused.  ``user`` and ``tenant`` are required, nothing else is
accepted.  The SSH user name a client logs in with is never looked at.

The file must be owned by the server's OS user (or root) and writable by nobody else.  It
is read again whenever it changes; a change that does not parse refuses every key until
it is fixed (never the old keys: a key being removed must not stay valid).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core import names
from core.errors import BadRequest, MusubiError

log = logging.getLogger("musubi.serve")
PREFIX = "musubi:"
FIELDS = ("user", "tenant")


class KeysFileError(BadRequest):
    """The keys file cannot be used (unreadable, unsafe permissions, a line that does not parse)."""

    code = "keys_file"


@dataclass(frozen=True)
class KeyEntry:
    """One authorized key: who it is."""

    user: str
    tenant: str
    fingerprint: str
    comment: str
    line: int


def _options(text: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        if not eq or name not in FIELDS:
            raise KeysFileError(f"{where}: unknown option {part!r}; a line starts with "
                                "musubi:user=NAME,tenant=TENANT (docs/remote.md#keys-file).")
        if name in out:
            raise KeysFileError(f"{where}: {name} is given twice.")
        out[name] = value
    missing = [f for f in FIELDS if f not in out]
    if missing:
        raise KeysFileError(f"{where}: {', '.join(missing)} missing; "
                            "a line starts with musubi:user=NAME,tenant=TENANT.")
    try:
        names.user_name(out["user"])
        names.tenant_name(out["tenant"])
    except MusubiError as exc:
        raise KeysFileError(f"{where}: {exc.message}") from None
    return out


def parse(text: str, source: str = "keys file") -> dict[bytes, KeyEntry]:
    """The entries of a keys file, by the key's public blob; :class:`KeysFileError` naming the line otherwise."""
    out: dict[bytes, KeyEntry] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {no}"
        head, _, rest = line.partition(" ")
        if not head.startswith(PREFIX):
            raise KeysFileError(f"{where}: each line starts with musubi:user=NAME,tenant=TENANT, then the key "
                                "(OpenSSH authorized_keys options are not read here; docs/remote.md#keys-file).")
        opts = _options(head[len(PREFIX):], where)
        parts = rest.split(None, 2)
        if len(parts) < 2:
            raise KeysFileError(f"{where}: no public key after the options (give: TYPE BASE64 [comment]).")
        try:
            key = asyncssh.import_public_key(f"{parts[0]} {parts[1]}")
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise KeysFileError(f"{where}: not a public key ({exc}).") from None
        blob = key.public_data
        if blob in out:
            raise KeysFileError(f"{where}: the same key as line {out[blob].line}; give each key once.")
        out[blob] = KeyEntry(opts["user"], opts["tenant"], key.get_fingerprint("sha256"),
                             parts[2] if len(parts) > 2 else "", no)
    return out


def check_safe(path: Path, st: os.stat_result) -> None:
    """Refuse a keys file others could change (as sshd's StrictModes does)."""
    if not stat.S_ISREG(st.st_mode):
        raise KeysFileError(f"{path} is not a regular file.")
    if st.st_uid not in (os.getuid(), 0):
        raise KeysFileError(f"{path} belongs to uid {st.st_uid}; it must belong to the user running musubi serve.")
    if st.st_mode & 0o022:
        raise KeysFileError(f"{path} may be written by other users; fix with: chmod go-w {path}")


def load(path: Path) -> dict[bytes, KeyEntry]:
    """Read and check ``path``."""
    try:
        st = path.stat()
        check_safe(path, st)
        return parse(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise KeysFileError(f"cannot read the keys file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise KeysFileError(f"the keys file {path} is not UTF-8 text.") from None


class KeyRing:
    """The keys file, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries = load(path)  # a bad file stops the start, with its message
        self._sig = self._signature()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def lookup(self, key: asyncssh.SSHKey) -> KeyEntry | None:
        """Who ``key`` is, or None for a key the file does not list."""
        sig = self._signature()
        if sig != self._sig:
            self._sig = sig
            try:
                self.entries = load(self.path)
                log.info("keys file %s re-read: %d key(s)", self.path, len(self.entries))
            except KeysFileError as exc:
                log.error("%s; refusing every key until it is fixed", exc.message)
                self.entries = {}
        return self.entries.get(key.public_data)
