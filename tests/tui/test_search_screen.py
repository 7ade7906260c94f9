"""The Search screen (mode 3): Pilot tests on the fake engine's code-search routes (tests/tui/fake_search.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from core.errors import EngineUnavailable, MusubiError, NotFound
from tests.tui.conftest import settle, wait_for
from tests.tui.fake_search import job_row
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.screens import search_view as view
from tui.screens.search import SearchScreen


@asynccontextmanager
async def search_screen(
    api: FakeEngineApi, size: tuple[int, int] = (80, 24), *, status: bool = True
) -> AsyncIterator[tuple[MusubiApp, SearchScreen, Pilot[Any]]]:
    """The app on the Search screen; ``status``: wait until the index status has loaded."""
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        if status:
            await wait_for(pilot, lambda: screen.status is not None, "index status loaded")
        await settle(pilot)
        yield app, screen, pilot


@pytest.fixture
def corpus_api(tmp_path: Path) -> FakeEngineApi:
    api = FakeEngineApi()
    api.code.write(tmp_path / "webshop")
    return api


def text(screen: SearchScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


def shown_symbols(screen: SearchScreen) -> list[str]:
    table = screen.query_one("#search-results", DataTable)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)] if table.display else []


async def search_for(pilot: Pilot[Any], screen: SearchScreen, query: str) -> None:
    """Type ``query`` into the (focused) query box and press enter: the search goes out at once."""
    box = screen.query_one("#search-query", Input)
    box.focus()
    box.value = ""
    await pilot.press(*query, "enter")
    await wait_for(pilot, lambda: screen.answer is not None or screen.error is not None, f"answer to {query!r}")
    await settle(pilot)


async def test_typing_searches_and_shows_ranked_results(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (app, screen, pilot):
        assert app.focused is screen.query_one("#search-query"), "focus lands in the query box on entry"
        await pilot.press(*"refund payment")
        await wait_for(pilot, lambda: screen.answer is not None, "the debounced search answered")
        await settle(pilot)
        assert corpus_api.code.searches[-1] == {"query": "refund payment", "k": 20}
        assert shown_symbols(screen) == ["Payments > Refunds", "refund_payment", "charge_card", "submitCheckout"]
        table = screen.query_one("#search-results", DataTable)
        assert table.get_row_at(1)[0] == "src/shop/payment.py:11-13" and table.get_row_at(1)[2] == "1.00"
        status = text(screen, "#search-status")
        assert "● ready" in status and "4 files" in status and "8 chunks" in status and "dense 100%" in status
        assert "all-MiniLM-L6-v2@1f0c3b" in status and "updated 2026-01-15 14:02" in status


async def test_debounce_sends_nothing_until_the_pause_then_only_the_newest_text(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (_app, screen, pilot):
        screen.debounce_s = 60.0  # a pause that never ends within the test: only enter sends
        await pilot.press(*"cart")
        await settle(pilot)
        assert corpus_api.code.searches == [], "no query goes out while the user is still typing"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.answer is not None, "search on enter")
        assert [s["query"] for s in corpus_api.code.searches] == ["cart"]


async def test_the_newest_query_wins_over_a_slower_earlier_one(corpus_api: FakeEngineApi) -> None:
    gate = asyncio.Event()
    corpus_api.code.gates["cart"] = gate  # the answer to "cart" is held back
    async with search_screen(corpus_api) as (_app, screen, pilot):
        box = screen.query_one("#search-query", Input)
        await pilot.press(*"cart", "enter")
        await wait_for(pilot, lambda: [s["query"] for s in corpus_api.code.searches] == ["cart"], "cart sent")
        box.focus()
        box.value = ""
        await pilot.press(*"refund", "enter")
        await wait_for(pilot, lambda: screen.answer is not None and screen.answer["query"] == "refund", "refund")
        await pilot.pause(0.1)  # not settle(): it would wait for the held-back worker
        assert shown_symbols(screen) == ["Payments > Refunds", "refund_payment"]
        gate.set()  # now the stale answer to "cart" arrives, after the newer one
        await wait_for(pilot, lambda: screen.dropped == 1, "the stale answer dropped")
        await settle(pilot)
        assert shown_symbols(screen) == ["Payments > Refunds", "refund_payment"]
        assert screen.answer["query"] == "refund"


async def test_filters_go_with_the_request_and_x_clears_them(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (app, screen, pilot):
        await search_for(pilot, screen, "refund payment")
        await pilot.press("p")
        assert app.focused is screen.query_one("#search-path")
        await pilot.press(*"src/*", "escape", "l")
        assert app.focused is screen.query_one("#search-lang")
        await pilot.press(*"python", "enter")
        await wait_for(pilot, lambda: corpus_api.code.searches[-1]["lang"] == "python", "filtered search sent")
        await settle(pilot)
        assert corpus_api.code.searches[-1] == {"query": "refund payment", "k": 20, "path": "src/*", "lang": "python"}
        assert shown_symbols(screen) == ["refund_payment", "charge_card"]
        await pilot.press("x")
        await wait_for(pilot, lambda: "path" not in corpus_api.code.searches[-1], "unfiltered search sent")
        await settle(pilot)
        assert corpus_api.code.searches[-1] == {"query": "refund payment", "k": 20}
        assert len(shown_symbols(screen)) == 4


async def test_preview_shows_the_hit_with_lines_around_it(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (_app, screen, pilot):
        await search_for(pilot, screen, "refund payment")
        await pilot.press("down")  # row 2: refund_payment, lines 11-13 of payment.py
        await wait_for(pilot, lambda: "refund_payment(" in text(screen, "#search-preview"), "preview of row 2")
        lines = text(screen, "#search-preview").splitlines()
        assert lines[0].startswith("  8 │") and "return f\"pay-" in lines[0]  # three lines of context above
        assert lines[3].startswith("▶11 │ def refund_payment(payment_id: str) -> bool:")
        assert [ln[:4] for ln in lines] == ["  8 ", "  9 ", " 10 ", "▶11 ", "▶12 ", "▶13 "]  # the file ends at 13
        title = str(screen.query_one("#search-preview-panel").border_title)
        assert "src/shop/payment.py:11-13 · lines 11-13 marked ▶" in title


async def test_preview_falls_back_to_the_snippet_when_the_file_changed_or_is_gone(corpus_api: FakeEngineApi) -> None:
    root = corpus_api.code.root
    assert root is not None
    (root / "src/shop/payment.py").write_text("# rewritten\n" * 20, encoding="utf-8")
    (root / "docs/payments.md").unlink()
    async with search_screen(corpus_api) as (_app, screen, pilot):
        await search_for(pilot, screen, "refund payment")
        title = lambda: str(screen.query_one("#search-preview-panel").border_title)  # noqa: E731
        await wait_for(pilot, lambda: "file unreadable" in title(), "fallback for the deleted file")
        assert text(screen, "#search-preview").splitlines()[0].startswith("▶3 │ ## Refunds")
        await pilot.press("down")
        await wait_for(pilot, lambda: "file changed since indexing" in title(), "fallback for the changed file")
        assert text(screen, "#search-preview").splitlines()[0].startswith("▶11 │ def refund_payment(")


def test_a_path_from_the_engine_never_reads_outside_the_root(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("key\n")
    (tmp_path / "root").mkdir()
    assert view.read_lines(str(tmp_path / "root"), "../secret.txt") is None
    assert view.read_lines(None, "a.py") is None


async def test_e_and_enter_open_the_editor_at_the_first_line(
    corpus_api: FakeEngineApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", "myedit --wait")
    async with search_screen(corpus_api) as (_app, screen, pilot):
        ran: list[list[str]] = []
        monkeypatch.setattr(screen, "run_editor", lambda cmd: ran.append(cmd))
        await search_for(pilot, screen, "refund payment")
        await pilot.press("down", "e")
        root = corpus_api.code.root
        assert ran == [["myedit", "--wait", "+11", f"{root}/src/shop/payment.py"]]
        await pilot.press("up", "enter")
        assert ran[-1] == ["myedit", "--wait", "+3", f"{root}/docs/payments.md"]


async def test_editor_without_results_or_a_suspendable_terminal_says_so(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (app, screen, pilot):
        await pilot.press("escape", "e")
        await settle(pilot)
        assert any("No result selected" in str(n.message) for n in app._notifications)
        screen.run_editor(["true", "+3", "/tmp/x.py"])  # the headless test driver cannot suspend
        await settle(pilot)
        assert any("cannot hand over to an editor" in str(n.message) for n in app._notifications)


async def test_reindex_shows_progress_from_events_until_done(corpus_api: FakeEngineApi) -> None:
    corpus_api.code.state = "none"
    async with search_screen(corpus_api) as (app, screen, pilot):
        assert "This project is not indexed yet" in text(screen, "#search-message")
        assert "○ not indexed" in text(screen, "#search-status")
        await pilot.press("escape", "i")
        await wait_for(pilot, lambda: screen.job is not None, "index job started")
        assert corpus_api.code.index_calls == [{}]
        panel = screen.query_one("#search-job", Static)
        assert panel.display and text(screen, "#search-job").startswith("… queued")
        # Another project's job is none of this screen's business.
        other = {**job_row("job-9", "running", 1, 9), "project": "other"}
        corpus_api.queue.put_nowait({"type": "job.progress", "job": other})
        held = job_row("job-1", "running", 0, None)  # held at an embedder switch: it says so, not "0 files"
        held["progress"]["message"] = "waiting for the embedder re-embed to finish"
        corpus_api.queue.put_nowait({"type": "job.progress", "job": held})
        await wait_for(pilot, lambda: "waiting" in text(screen, "#search-job"), "the wait shown")
        assert text(screen, "#search-job") == "↻ indexing · waiting for the embedder re-embed to finish"
        progress = job_row("job-1", "running", 2, 4, rate=10.0, eta_s=75.0)
        corpus_api.queue.put_nowait({"type": "job.progress", "job": progress})
        await wait_for(pilot, lambda: "2/4" in text(screen, "#search-job"), "progress event shown")
        assert text(screen, "#search-job") == "↻ indexing [████████████░░░░░░░░░░░░] 2/4 files 50% · 10/s · ETA 1m15s"
        assert "↻ indexing" in text(screen, "#search-status")
        corpus_api.code.state, corpus_api.code.job = "ready", job_row("job-1", "done", 4, 4)
        corpus_api.queue.put_nowait({"type": "job.state", "job": job_row("job-1", "done", 4, 4)})
        await wait_for(pilot, lambda: "✔ indexed" in text(screen, "#search-job"), "done shown")
        await wait_for(pilot, lambda: "● ready" in text(screen, "#search-status"), "status re-read")
        assert text(screen, "#search-job").startswith("✔ indexed [████")
        assert any("Index ready: 4 files" in str(n.message) for n in app._notifications)
        assert "Type a query" in text(screen, "#search-message")


async def test_a_failed_index_job_says_why(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (app, screen, pilot):
        await pilot.press("escape", "i")
        await wait_for(pilot, lambda: screen.job is not None, "index job started")
        corpus_api.queue.put_nowait({"type": "job.state", "job": job_row("job-1", "failed", 1, 4, error="disk full")})
        await wait_for(pilot, lambda: "✘ index failed" in text(screen, "#search-job"), "failure shown")
        assert text(screen, "#search-job") == "✘ index failed: disk full — i tries again"
        assert any("Indexing failed: disk full" in str(n.message) for n in app._notifications)


async def test_empty_states_no_project_and_no_results(corpus_api: FakeEngineApi) -> None:
    corpus_api.code.project = None
    async with search_screen(corpus_api) as (app, screen, pilot):
        assert "No project here" in text(screen, "#search-message")
        assert "musubi project add PATH" in text(screen, "#search-message")
        assert "no project for this folder" in text(screen, "#search-status")
        await pilot.press("escape", "i")
        await settle(pilot)
        assert corpus_api.code.index_calls == []
        assert any("musubi project add PATH" in str(n.message) for n in app._notifications)
    async with search_screen(FakeEngineApi()) as (_app, screen, pilot):
        assert "Type a query to search the code in webshop" in text(screen, "#search-message")
        await search_for(pilot, screen, "zebra")
        assert "No results for 'zebra'." in text(screen, "#search-message")
        await pilot.press("l", *"go", "enter")
        await wait_for(pilot, lambda: screen.answer is not None and screen._sent[2] == "go", "filtered")
        await settle(pilot)
        assert "within language 'go'" in text(screen, "#search-message")
        assert "Remove the filters: press x" in text(screen, "#search-message")


async def test_search_on_a_project_not_indexed_yet_says_so(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (_app, screen, pilot):
        corpus_api.code.state = "none"  # the index went away after the status was read
        await pilot.press(*"cart", "enter")
        await wait_for(pilot, lambda: "not indexed yet" in text(screen, "#search-message"), "not indexed")
        assert corpus_api.code.searches[-1]["query"] == "cart"
        assert "○ not indexed" in text(screen, "#search-status")


@pytest.mark.parametrize(("error", "words"), [
    (MusubiError("storage is read-only: free disk space, then retry."), "storage is read-only: free disk space"),
    (EngineUnavailable("engine not reachable: Cannot connect to host localhost:0 ssl:default [Connection refused]"),
     "the engine is not reachable; ctrl+r reconnects"),
    (RuntimeError("ClientPayloadError: Response payload is not completed"), "an unexpected RuntimeError"),
])
async def test_an_engine_failure_is_a_notification_and_an_f12_row(
    corpus_api: FakeEngineApi, error: Exception, words: str
) -> None:
    async with search_screen(corpus_api) as (app, screen, pilot):
        corpus_api.code.fail = error
        await search_for(pilot, screen, "cart")
        shown = text(screen, "#search-message")
        assert shown.startswith(f"Search failed: {words}")
        assert "Connection refused" not in shown and "ClientPayloadError" not in shown  # in words, not raw text
        notes = [n for n in app._notifications if n.title == "Search"]
        assert notes and notes[-1].severity == "error" and words in str(notes[-1].message)
        rows = [f for f in app.ctx.failures.entries if f.title == "Search"]
        assert rows and rows[-1].where == "SearchScreen"


@pytest.mark.parametrize(("error", "words"), [
    (MusubiError("permission denied: alice lacks 'search.query'."), "permission denied: alice lacks 'search.query'."),
    # An engine from before the code index answers 404 "no route": not the same as "no project here".
    (NotFound("no route GET /v1/index/status"), "this engine has no code index"),
])
async def test_index_status_failure_is_shown_in_words_and_logged(
    corpus_api: FakeEngineApi, error: Exception, words: str
) -> None:
    corpus_api.code.fail = error
    async with search_screen(corpus_api, status=False) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.status_error is not None, "status failed")
        await settle(pilot)
        assert words in text(screen, "#search-status")
        assert text(screen, "#search-message").startswith(f"The index status could not be read: {words}")
        assert "No project here" not in text(screen, "#search-message")
        assert any(f.title == "Index status" for f in app.ctx.failures.entries)


async def test_redraws_for_job_progress_keep_the_selected_result(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (_app, screen, pilot):
        await search_for(pilot, screen, "refund payment")
        await pilot.press("down", "down")
        table = screen.query_one("#search-results", DataTable)
        assert table.cursor_row == 2
        await pilot.press("i")
        await wait_for(pilot, lambda: screen.job is not None, "index job started")
        corpus_api.queue.put_nowait({"type": "job.progress", "job": job_row("job-1", "running", 1, 4)})
        await wait_for(pilot, lambda: "1/4" in text(screen, "#search-job"), "progress shown")
        await settle(pilot)
        assert table.cursor_row == 2 and "charge_card(" in text(screen, "#search-preview")


async def test_digits_type_into_the_query_and_switch_modes_after_escape(corpus_api: FakeEngineApi) -> None:
    async with search_screen(corpus_api) as (app, screen, pilot):
        hint = text(screen, "#search-hint")
        assert "Esc: leave the query box, then 1-6 switch screens" in hint
        await pilot.press("3", "1")
        assert screen.query_one("#search-query", Input).value == "31"
        assert app.current_mode == "search"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.focused, Input)
        assert text(screen, "#search-hint").startswith("1-6 switch screens")
        await pilot.press("1")
        await settle(pilot)
        assert app.current_mode == "dashboard"
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.focused, Input), "back in the query box"
        await pilot.press("f2")  # F-keys are not text: they switch from inside the box too
        await settle(pilot)
        assert app.current_mode == "dashboard"


async def test_keys_typed_right_after_switching_land_in_the_query(corpus_api: FakeEngineApi) -> None:
    app = MusubiApp(fake_ctx(corpus_api))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await settle(pilot)
        burst(app, "3cart1")  # all queued before the screen exists, as a fast typist's terminal sends them
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), "search screen shown")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        assert app.current_mode == "search"
        assert screen.query_one("#search-query", Input).value == "cart1"
        # And on a second visit (left from the results), focus is back in the query box at once.
        await pilot.press("escape")
        await settle(pilot)
        burst(app, ["1", "3", "r", "e"])
        await wait_for(pilot, lambda: screen.query_one("#search-query", Input).value.endswith("re"), "second visit")
        assert screen.query_one("#search-query", Input).value == "cart1re"


def burst(app: MusubiApp, keys: str | list[str]) -> None:
    """Queue key events without waiting between them (Pilot.press idles after each)."""
    driver = app._driver
    assert driver is not None
    for key in keys:
        driver.send_message(events.Key(key, key if len(key) == 1 else None))


async def test_every_action_has_a_binding_id_and_a_palette_entry(corpus_api: FakeEngineApi) -> None:
    from tui.screens.actions import ACTIONS
    from tui.screens.bindings import all_binding_ids

    ids = {b.id for b in SearchScreen.BINDINGS if hasattr(b, "id")}
    assert ids == {"search_leave", "search_query", "search_path", "search_lang", "search_clear", "search_index",
                   "search_open", "search_embedder"}
    assert ids <= all_binding_ids() and ids <= set(ACTIONS)
    async with search_screen(corpus_api) as (app, screen, pilot):
        palette = {c.title: c.help for c in app.get_system_commands(screen)}
        search_entries = [t for t in palette if t.startswith("Search: ")]
        assert len(search_entries) == len(ids)
        assert palette["Search: Index"].startswith("i · (re)index this project")
        await pilot.press("escape", "f1")
        await settle(pilot)
        shown = str(app.screen.query_one("#help-keys-screen", Static).render())
        assert all(i in shown for i in ids), "F1 lists every Search key with its binding id"


async def test_reindex_without_index_build_is_refused_before_the_engine_is_asked(corpus_api: FakeEngineApi) -> None:
    corpus_api.data["members"].append({"user": "vera", "project": None, "role": "viewer",
                                       "since": "2026-01-07T09:00:00.000000Z", "added_by": "alice"})
    corpus_api.identity.as_user = "vera"  # a viewer: may search, may not build the index
    async with search_screen(corpus_api) as (app, screen, pilot):
        palette = {c.title: c.help for c in app.get_system_commands(screen)}
        assert "needs index.build, which you lack" in palette["Search: Index"]
        await pilot.press("escape", "i")
        await settle(pilot)
        assert corpus_api.code.index_calls == []
        assert any("lacks index.build" in str(n.message) for n in app._notifications)


async def test_without_colour_the_selection_and_states_read_in_words(corpus_api: FakeEngineApi) -> None:
    """NO_COLOR: the preview names the selected result and marks its lines with ▶; states are words."""
    app = MusubiApp(fake_ctx(corpus_api, color="none"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "fake engine connected")
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SearchScreen) and app.no_color
        await wait_for(pilot, lambda: screen.status is not None, "index status loaded")
        await search_for(pilot, screen, "cart total")
        await wait_for(pilot, lambda: "▶16 │" in text(screen, "#search-preview"), "preview")
        assert "src/shop/cart.py:16-18" in str(screen.query_one("#search-preview-panel").border_title)
        assert "● ready" in text(screen, "#search-status")
