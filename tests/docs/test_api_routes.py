"""docs/api.md documents every route build_app registers, and nothing else, with its models' fields."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

from core.api.responses import Streamed
from core.engine.apidoc import model_line
from core.engine.routing import Route
from core.engine.server import all_routes
from tests.engine.helpers import routes_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
HEADING = re.compile(r"^### (GET|POST|PUT|DELETE|PATCH) (/\S+)\s*$", re.M)
TABLE_ROW = re.compile(r"^\| (GET|POST|PUT|DELETE|PATCH) \| `(/\S+)` \|", re.M)


def registered_routes() -> set[tuple[str, str]]:
    app = routes_app()  # the router is what we inspect: a stand-in engine does
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


def _sections() -> dict[tuple[str, str], str]:
    text = DOC.read_text(encoding="utf-8")
    found = list(HEADING.finditer(text))
    return {
        (m[1], m[2]): text[m.end() : found[i + 1].start() if i + 1 < len(found) else len(text)]
        for i, m in enumerate(found)
    }


def _doc_path(route: Route) -> str:
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.path)  # /v1/models/{id:.+} is documented as {id}


def test_the_route_table_is_what_build_app_registers() -> None:
    table = {(r.method, _doc_path(r)) for r in all_routes()}
    assert len(table) == len(all_routes()), "a route is in the tables twice"
    assert table == registered_routes()


def test_each_section_names_its_request_fields_and_answer() -> None:
    # The first paragraph of a section is the line its route's models make: a field added to or
    # removed from a request model, or a new answer shape, shows here until the doc says it.
    sections = _sections()
    wrong = []
    for route in all_routes():
        section = sections[(route.method, _doc_path(route))]
        first = section.strip().split("\n\n", 1)[0]
        want = model_line(route)
        if first != want:
            wrong.append(f"### {route.method} {_doc_path(route)}\n  has:  {first[:200]}\n  want: {want}")
    assert not wrong, "docs/api.md differs from core/api/models.py:\n" + "\n".join(wrong)


def test_model_line_can_fail() -> None:
    usage = next(r for r in all_routes() if r.path == "/v1/usage")
    line = model_line(usage)
    assert "`requests`" in line and "`cost_usd`" in line and "Answer `UsageRecorded`" in line
    assert model_line(next(r for r in all_routes() if r.path == "/v1/health")) != line


def _first_answer(section: str) -> Any:
    """The section's first JSON example that is an answer, not an error (some show the refusal first)."""
    for block in re.findall(r"```json\n(.*?)```", section, re.S):
        example = json.loads(block)
        if not (isinstance(example, dict) and set(example) == {"error"}):
            return example
    raise AssertionError("no JSON example of an answer")


def test_documented_answers_have_the_response_models_keys() -> None:
    # Routes with a typed answer: the first example in their section has exactly its keys
    # (optional ones may be left out).
    sections = _sections()
    checked = 0
    for route in all_routes():
        if route.response is None or route.response is Streamed:
            continue  # untyped, or not JSON (file content, events)
        shape = route.response
        example = _first_answer(sections[(route.method, _doc_path(route))])
        if typing.get_origin(shape) is list:
            (shape,) = typing.get_args(shape)
            assert isinstance(example, list) and example, route.path
            example = example[0]
        keys = set(typing.get_type_hints(shape))
        required = set(shape.__required_keys__)
        assert required <= set(example) <= keys, (
            f"{route.method} {route.path}: example keys {sorted(example)} vs {shape.__name__} "
            f"(required {sorted(required)}, all {sorted(keys)})"
        )
        checked += 1
    assert checked >= 45
