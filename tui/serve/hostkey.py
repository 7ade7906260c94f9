"""The SSH server's host key: generated once, kept ``0600`` in ``$MUSUBI_HOME``.

A client pins it on first contact (``known_hosts``), so it must survive restarts; a
key file other users could read is refused (they could impersonate the server).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import asyncssh

from tui.serve.keys import KeysFileError

HOST_KEY = "ssh_host_ed25519_key"


class HostKeyError(KeysFileError):
    """The host key file cannot be used."""

    code = "host_key"


def host_key(home: Path) -> tuple[asyncssh.SSHKey, bool]:
    """(the host key, whether it was made just now); made ed25519 and 0600 when missing."""
    path = home / HOST_KEY
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return _load(path), False
    except OSError as exc:
        raise HostKeyError(f"cannot create the SSH host key {path}: {exc.strerror}.") from None
    key = asyncssh.generate_private_key("ssh-ed25519", comment="musubi serve ssh")
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key())
        f.flush()
        os.fsync(f.fileno())
    return key, True


def _load(path: Path) -> asyncssh.SSHKey:
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode):
        raise HostKeyError(f"the SSH host key {path} is not a regular file; remove it to make a new one.")
    if st.st_mode & 0o077:
        raise HostKeyError(f"the SSH host key {path} may be read by other users; fix with: chmod 600 {path}")
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError) as exc:
        raise HostKeyError(f"cannot read the SSH host key {path} ({exc}); remove it to make a new one "
                           "(clients will then see a changed host key).") from None


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:...``, as ``ssh`` shows it on first contact."""
    return str(key.get_fingerprint("sha256"))
