"""docs/rbac.md publishes the built-in role matrix; it must say exactly what core.rbac does."""

from __future__ import annotations

import re
from pathlib import Path

from core.rbac import BUILTIN_ROLES, PERMISSIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "rbac.md"


def parse_matrix(text: str) -> tuple[list[str], dict[str, set[str]]]:
    """(permissions in table order, role -> permissions marked ✓) from the marked table."""
    m = re.search(r"<!-- role-matrix:start -->\n(.*?)<!-- role-matrix:end -->", text, re.S)
    assert m, "docs/rbac.md lost its <!-- role-matrix:start/end --> markers"
    lines = [ln.strip() for ln in m.group(1).strip().splitlines()]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[0] == "permission"
    roles = header[1:]
    perms: list[str] = []
    held: dict[str, set[str]] = {r: set() for r in roles}
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        assert len(cells) == len(header), f"row has {len(cells)} cells, header {len(header)}: {ln}"
        perm = cells[0].strip("`")
        perms.append(perm)
        for role, mark in zip(roles, cells[1:], strict=True):
            assert mark in ("✓", "·"), f"unexpected mark {mark!r} for {perm}/{role}"
            if mark == "✓":
                held[role].add(perm)
    return perms, held


def test_matrix_matches_code() -> None:
    perms, held = parse_matrix(DOC.read_text(encoding="utf-8"))
    assert perms == list(PERMISSIONS), (
        "permission rows differ from core.rbac.PERMISSIONS (names or order)"
    )
    assert list(held) == list(BUILTIN_ROLES), "role columns differ from core.rbac.BUILTIN_ROLES"
    for role, granted in BUILTIN_ROLES.items():
        assert held[role] == set(granted), (
            f"role {role}: doc {sorted(held[role])} != code {sorted(granted)}"
        )


def test_parser_notices_a_wrong_mark() -> None:
    # The comparison above must be able to fail: flip one cell and it does.
    text = DOC.read_text(encoding="utf-8").replace(
        "| `impersonate` | ✓ |", "| `impersonate` | · |", 1
    )
    _perms, held = parse_matrix(text)
    assert held["owner"] != set(BUILTIN_ROLES["owner"])


def test_every_permission_is_described() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Permissions", 1)[1].split("## Built-in roles", 1)[0]
    for p in PERMISSIONS:
        assert f"`{p}`" in table, f"permission {p} has no description in docs/rbac.md"


def test_admin_read_permissions_match_code() -> None:
    # The suspended-tenant rule names the permissions that still allow reads (ADMIN_READERS).
    from core.engine.access import ADMIN_READERS

    text = DOC.read_text(encoding="utf-8").split("## Suspended tenants", 1)[1].split("\n## ", 1)[0]
    bullet = next(b for b in text.split("\n- ") if "ADMIN_READERS" in b)
    named = {p for p in re.findall(r"`([a-z_.]+)`", bullet) if p in PERMISSIONS}
    assert named == set(ADMIN_READERS), f"doc {sorted(named)} != code {sorted(ADMIN_READERS)}"
