"""The pure access-control functions: scopes (core.rbac) and caller read access (core.paths)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.paths import readable_by, system_path_reason
from core.rbac import (
    BUILTIN_ROLES,
    acting_permissions,
    may_impersonate,
    scope_permissions,
    visible_projects,
)

BINDINGS = {
    ("ten", ""): {"role": "viewer"},
    ("ten", "p1"): {"role": "admin"},
    ("pro", "p1"): {"role": "owner"},
    ("own", ""): {"role": "owner"},
}


def perms(role: str) -> frozenset[str] | None:
    return BUILTIN_ROLES.get(role)


def test_a_project_binding_counts_for_its_project_only() -> None:
    assert scope_permissions(BINDINGS, perms, "pro", None) == frozenset()
    assert scope_permissions(BINDINGS, perms, "pro", "p1") == BUILTIN_ROLES["owner"]
    assert scope_permissions(BINDINGS, perms, "pro", "p2") == frozenset()
    # Tenant-scope grants hold everywhere; a project binding adds to them there.
    assert scope_permissions(BINDINGS, perms, "ten", "p2") == BUILTIN_ROLES["viewer"]
    assert scope_permissions(BINDINGS, perms, "ten", "p1") == BUILTIN_ROLES["viewer"] | BUILTIN_ROLES["admin"]


def test_impersonation_is_tenant_wide_and_lends_nothing() -> None:
    assert may_impersonate(BINDINGS, perms, "own")
    assert not may_impersonate(BINDINGS, perms, "pro")  # owner of p1 only
    # Acting as someone holds only what both hold.
    assert acting_permissions(BINDINGS, perms, "ten", "own", None) == BUILTIN_ROLES["viewer"]
    assert acting_permissions(BINDINGS, perms, "own", "ten", "p1") == BUILTIN_ROLES["viewer"] | BUILTIN_ROLES["admin"]
    assert acting_permissions(BINDINGS, perms, "own", "own", None) == BUILTIN_ROLES["owner"]


def test_visible_projects() -> None:
    assert visible_projects(BINDINGS, "ten") is None
    assert visible_projects(BINDINGS, "pro") == {"p1"}
    assert visible_projects(BINDINGS, "nobody") == frozenset()


@pytest.fixture
def pub() -> Iterator[Path]:
    """A folder straight under /tmp (pytest's tmp_path sits in a folder only its owner may search)."""
    p = Path(tempfile.mkdtemp(dir="/tmp"))
    yield p
    shutil.rmtree(p, ignore_errors=True)


def test_readable_by_mode_bits(pub: Path) -> None:
    tmp_path = pub
    d = tmp_path / "d"
    d.mkdir()
    f = d / "f"
    f.write_text("x")
    uid, gid = 4242, 4343  # an unrelated user: "others" bits decide
    os.chmod(tmp_path, 0o755)
    for mode, ok in ((0o755, True), (0o750, False), (0o744, False), (0o711, False)):
        os.chmod(d, mode)
        assert readable_by(str(d), uid, frozenset({gid})) is ok, oct(mode)
    os.chmod(d, 0o711)  # searchable, not listable: the file inside is still readable
    os.chmod(f, 0o644)
    assert readable_by(str(f), uid, frozenset())
    os.chmod(f, 0o640)
    assert not readable_by(str(f), uid, frozenset())
    st = os.stat(f)
    assert readable_by(str(f), uid, frozenset({st.st_gid}))  # the group bits, for a member
    assert readable_by(str(f), st.st_uid, frozenset())  # the owner bits, for the owner
    assert not readable_by(str(tmp_path / "missing"), uid, frozenset())
    # A folder above that others may not search hides everything below it.
    os.chmod(tmp_path, 0o700)
    os.chmod(f, 0o644)
    assert not readable_by(str(f), uid, frozenset())
    os.chmod(tmp_path, 0o755)


def test_system_paths() -> None:
    assert system_path_reason("/etc") and system_path_reason("/etc/nginx") and system_path_reason("/")
    assert system_path_reason("/home") and system_path_reason("/proc/1")
    assert system_path_reason("/home/alice/src/shop") is None
    assert system_path_reason("/usr/local/src/repo") is None
    assert system_path_reason("/etcetera") is None
