"""docs/api.md documents every route build_app registers, and nothing else."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from core.engine.server import build_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HEADING = re.compile(r"^### (GET|POST|PUT|DELETE|PATCH) (/\S+)\s*$", re.M)
TABLE_ROW = re.compile(r"^\| (GET|POST|PUT|DELETE|PATCH) \| `(/\S+)` \|", re.M)


def registered_routes() -> set[tuple[str, str]]:
    # build_app only stores the engine; the router is what we inspect, so no engine is needed.
    engine: Any = None
    app = build_app(engine, asyncio.Event())
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD next to every GET
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        out.add((route.method, str(path)))
    return out


def test_every_route_has_a_section_and_nothing_else() -> None:
    routes = registered_routes()
    assert len(routes) >= 30  # the parser found the router, not an empty app
    documented = set(HEADING.findall(DOC.read_text(encoding="utf-8")))
    assert routes - documented == set(), (
        f"routes without a section in docs/api.md: {sorted(routes - documented)}"
    )
    assert documented - routes == set(), (
        f"docs/api.md documents routes that do not exist: {sorted(documented - routes)}"
    )


def test_summary_table_lists_every_route() -> None:
    routes = registered_routes()
    table = set(TABLE_ROW.findall(DOC.read_text(encoding="utf-8")))
    assert table == routes, (
        f"summary table differs: missing {sorted(routes - table)}, extra {sorted(table - routes)}"
    )


def test_each_section_shows_a_response() -> None:
    # Every route section carries a real example: a fenced block before the next heading.
    text = DOC.read_text(encoding="utf-8")
    starts = [m.start() for m in HEADING.finditer(text)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        section = text[start:end]
        assert "```" in section, f"no example in: {section.splitlines()[0]}"


def test_error_codes_table_covers_core_errors() -> None:
    from core import errors

    text = DOC.read_text(encoding="utf-8").split("## Errors", 1)[1].split("## Routes", 1)[0]
    rows = {
        m[0]: (m[1], m[2]) for m in re.findall(r"^\| `([a-z_]+)` \| (\S+) \| (\d) \|", text, re.M)
    }
    for cls in errors._BY_CODE.values():
        if cls is errors.MusubiError:
            continue
        assert cls.code in rows, f"error code {cls.code} missing from the table"
        status, exit_code = rows[cls.code]
        assert int(exit_code) == cls.exit_code, f"{cls.code}: exit {exit_code} != {cls.exit_code}"
        if status != "—":
            assert int(status) == cls.http_status, f"{cls.code}: HTTP {status} != {cls.http_status}"
