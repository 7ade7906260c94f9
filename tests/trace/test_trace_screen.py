"""The Trace screen (mode 2): Pilot tests on the fake engine, snapshots, and one run against a real engine."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, Tree

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens.trace import TraceScreen, read_preview


@asynccontextmanager
async def trace_screen(api: FakeEngineApi, size: tuple[int, int] = (120, 40)) -> AsyncIterator[tuple[MusubiApp, TraceScreen, Pilot[Any]]]:
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TraceScreen)
        await wait_for(pilot, lambda: screen.report is not None, "trace report loaded")
        await settle(pilot)
        yield app, screen, pilot


def tree_ids(screen: TraceScreen) -> list[str]:
    tree = screen.query_one("#trace-tree", Tree)
    return [n.data[1] for n in tree.root.children if n.data]


def text_of(screen: TraceScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_tree_header_and_details(fake_api: FakeEngineApi) -> None:
    async with trace_screen(fake_api) as (_app, screen, pilot):
        assert tree_ids(screen) == ["REQ-AUTH-001", "REQ-AUTH-0010", "REQ-AUTH-002", "REQ-AUTH-SSO-001",
                                    "REQ-BILL-001", "REQ-BILL-002", "REQ-CRLF-001"]
        header = text_of(screen, "#trace-header")
        assert "7 requirements" in header and "overall 64.3% grade D" in header and "/src/webshop" in header
        tree = screen.query_one("#trace-tree", Tree)
        labels = [str(n.label) for n in tree.root.children]
        assert labels[0].startswith("✔ REQ-AUTH-001 covered — Password login")
        assert labels[-1].startswith("✘ REQ-CRLF-001") and "uncovered" in labels[-1]
        assert "◐" in labels[1] and "(no design, tasks)" in labels[1]
        tree.focus()
        await pilot.press("home")
        await settle(pilot)
        details = text_of(screen, "#trace-details")
        assert "REQ-AUTH-001 — covered" in details and "AC2. The token expires" in details
        assert "lint: no findings" in details
        # Children: the four columns, each with its links.
        first = tree.root.children[0]
        assert [str(c.label) for c in first.children] == ["Design ✔ 1", "Tasks ✔ 2", "Code ✔ 3", "Tests ✔ 2"]
        assert [str(leaf.label) for leaf in first.children[2].children] == [
            "src/auth/login.py:3 (docstring) via TASK-AUTH-001",
            "src/auth/login.py:10 (comment)",
            "src/auth/session.ts:7 (comment) via ADR-001",
        ]


async def test_filters(fake_api: FakeEngineApi) -> None:
    async with trace_screen(fake_api) as (_app, screen, pilot):
        screen.query_one("#trace-tree", Tree).focus()
        await pilot.press("home", "u")
        await settle(pilot)
        assert tree_ids(screen) == ["REQ-AUTH-0010", "REQ-AUTH-SSO-001", "REQ-BILL-002", "REQ-CRLF-001"]
        # The details follow the cursor onto a requirement that is still shown.
        assert "REQ-AUTH-0010 — partial" in text_of(screen, "#trace-details")
        assert "4/7 · uncovered · comp any · status any" in text_of(screen, "#trace-filter-state")
        await pilot.press("u", "c")  # all again; component AUTH
        assert tree_ids(screen) == ["REQ-AUTH-001", "REQ-AUTH-0010", "REQ-AUTH-002", "REQ-AUTH-SSO-001"]
        await pilot.press("c")  # BILL
        assert tree_ids(screen) == ["REQ-BILL-001", "REQ-BILL-002"]
        await pilot.press("c", "c", "t")  # CRLF, then any component; status: first in sorted order
        assert screen.component is None and screen.status == "approved"
        assert tree_ids(screen) == ["REQ-AUTH-001", "REQ-BILL-001"]
        await pilot.press("t", "t")  # draft, then none
        assert screen.status == "none"
        assert tree_ids(screen) == ["REQ-AUTH-0010", "REQ-AUTH-SSO-001", "REQ-BILL-002", "REQ-CRLF-001"]
        await pilot.press("t")
        assert screen.status is None
        await pilot.press("slash")
        assert isinstance(app_focused(screen), Input)
        await pilot.press(*"sign-on")
        assert tree_ids(screen) == ["REQ-AUTH-SSO-001"]
        await pilot.press("enter")
        assert isinstance(app_focused(screen), Tree)
        await pilot.press("slash", *["backspace"] * 7, *"zzz")
        assert tree_ids(screen) == []
        assert "No requirement matches the filters" in text_of(screen, "#trace-details")


def app_focused(screen: TraceScreen) -> object:
    return screen.app.focused


async def test_impact_review_and_link_preview(fake_api: FakeEngineApi, tmp_path: Path) -> None:
    async with trace_screen(fake_api) as (_app, screen, pilot):
        tree = screen.query_one("#trace-tree", Tree)
        tree.focus()
        await pilot.press("home", "i")
        await settle(pilot)
        details = text_of(screen, "#trace-details")
        assert "Impact of REQ-AUTH-001" in details and "5 file(s) to revisit" in details
        assert "REQ-AUTH-SSO-001 storage/specs/auth.md" in details
        await pilot.press("v")
        await settle(pilot)
        assert ("POST", "/v1/trace/review", {"id": "REQ-AUTH-001"}, None) in fake_api.writes
        # A link leaf: details name it; the preview says the file is not on this machine.
        await pilot.press("enter")  # expand REQ-AUTH-001
        await settle(pilot)
        await pilot.press("down", "down")  # Design, then ADR-001
        await settle(pilot)
        await wait_for(pilot, lambda: "cannot read" in text_of(screen, "#trace-details"), "preview")
        assert "ADR-001 Use signed JWT session tokens" in text_of(screen, "#trace-details")


async def test_open_in_editor_runs_editor_at_the_line(fake_api: FakeEngineApi, monkeypatch: pytest.MonkeyPatch) -> None:
    async with trace_screen(fake_api) as (_app, screen, pilot):
        ran: list[list[str]] = []
        monkeypatch.setenv("EDITOR", "myedit --wait")
        monkeypatch.delenv("VISUAL", raising=False)
        monkeypatch.setattr(screen, "run_editor", lambda cmd: ran.append(cmd))
        screen.query_one("#trace-tree", Tree).focus()
        await pilot.press("home", "e")
        assert ran == [["myedit", "--wait", "+3", "/src/webshop/storage/specs/auth.md"]]


async def test_editor_without_a_suspendable_terminal_says_so(fake_api: FakeEngineApi) -> None:
    async with trace_screen(fake_api) as (_app, screen, pilot):
        notes: list[str] = []
        orig = screen.notify
        screen.notify = lambda msg, **kw: notes.append(msg) or orig(msg, **kw)  # type: ignore[method-assign]
        screen.run_editor(["true", "+3", "/src/webshop/x.py"])  # the headless test driver cannot suspend
        assert notes and "open /src/webshop/x.py at line 3 yourself" in notes[0]


async def test_engine_refusal_shows_a_message(fake_api: FakeEngineApi) -> None:
    fake_api.denied.add(("GET", "/v1/trace"))
    app = MusubiApp(fake_ctx(fake_api))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TraceScreen)
        await wait_for(pilot, lambda: screen.error is not None, "error shown")
        # Which permission is missing (the fake engine names it 'x'), not "nothing to trace here".
        assert "this screen needs x, which you lack" in text_of(screen, "#trace-header")
        assert "Nothing to trace here" not in text_of(screen, "#trace-details")


def test_read_preview(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_bytes(b"one\r\ntwo\r\nthree\r\nfour\n\xff five\n")
    out = read_preview(str(tmp_path), "a.py", 2, context=1).splitlines()
    assert out == ["      1  one", "▶     2  two", "      3  three"]
    assert "\ufffd five" in read_preview(str(tmp_path), "a.py", 5, context=0)
    assert read_preview(str(tmp_path), "../etc/passwd", 1) == "(no file to preview)"
    assert read_preview(str(tmp_path), "missing.py", 1).startswith("(cannot read missing.py")


SIZES = {"80x24": (80, 24), "120x40": (120, 40)}


def goto(keys: list[str]) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")  # type: ignore[attr-defined]
        await settle(pilot)
        await pilot.press("2")
        await wait_for(pilot, lambda: getattr(app.screen, "report", None) is not None, "report")
        await settle(pilot)
        for k in keys:
            await pilot.press(k)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize(("name", "keys"), [("tree", ["tab", "home", "enter"]), ("uncovered", ["tab", "u", "home", "i"])])
def test_snapshot(snap_compare: Callable[..., bool], name: str, keys: list[str], size: tuple[int, int]) -> None:
    assert os.environ.get("MUSUBI_CONFIG_DIR")  # the tui conftest's config isolation is in force here too
    assert snap_compare(MusubiApp(fake_ctx(FakeEngineApi())), terminal_size=size, run_before=goto(keys))


async def test_suggested_links_show_marked_and_are_decided(fake_api: FakeEngineApi, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    import tests.trace.fake_trace as ft

    data = copy.deepcopy(ft._data())
    row = next(r for r in data["report"]["requirements"] if r["id"] == "REQ-CRLF-001")
    row["links"]["code"].append({"kind": "code", "target": "src/crlf.py", "path": "src/crlf.py", "line": 3,
                                 "source": "suggested", "state": "suggested", "via": "REQ-CRLF-001",
                                 "title": "", "status": "", "context": ""})
    monkeypatch.setattr(ft, "_data", lambda: data)
    async with trace_screen(fake_api) as (_app, screen, pilot):
        tree = screen.query_one("#trace-tree", Tree)
        node = tree.root.children[-1]
        assert str(node.label).startswith("✘ REQ-CRLF-001")  # a suggestion does not cover anything
        code = node.children[2]
        assert str(code.label) == "Code ✘ none + 1 suggested"
        assert [str(x.label) for x in code.children] == ["src/crlf.py:3 [suggested]"]
        tree.focus()
        node.expand()
        await settle(pilot)
        tree.move_cursor(code.children[0])
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert fake_api.writes[-1] == ("POST", "/v1/trace/links", {"requirement": "REQ-CRLF-001", "kind": "code",
                                       "target": "src/crlf.py", "line": 3, "state": "accepted", "source": "suggested"}, None)
        await pilot.press("home", "x")  # on a requirement: nothing to decide
        await settle(pilot)
        assert len([w for w in fake_api.writes if w[1] == "/v1/trace/links"]) == 1
