"""The Search screen's embedder line and its versions dialog (issue 19) on a REAL engine.

The engine runs the tuning job's test hook (``MUSUBI_TEST_TUNE_GAIN``, docs/finetune.md#test-hook:
no torch; the "tuned" model scores the base's real held-out measures plus the gain) with the fake
embedder, so mining, the activation rule, versions, re-embedding and the switch all run for real,
started from the TUI's keys through core's client only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from core.api import calls
from core.async_client import AsyncEngineClient
from core.wire import Identity
from tests.engine.helpers import Home, poll
from tests.index.helpers import FAKE_EMBEDDER
from tests.tui.conftest import settle, wait_for
from tests.tui.fake_tune import FakeTune
from tests.tui.fakes import FakeEngineApi
from tests.tui.test_search_screen import search_screen
from tests.tune.test_tune_cli import GAIN, _repo
from tui.app import MusubiApp
from tui.config import ColorDecision, EngineSettings, Settings
from tui.context import AppContext
from tui.screens.embedder import EmbedderModal
from tui.screens.modals import ConfirmModal
from tui.screens.search import SearchScreen

pytestmark = pytest.mark.xdist_group("tune-tui")  # each test starts an engine and trains: one at a time


def _engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gain: str) -> Iterator[tuple[Home, str, Path]]:
    for k, v in {**FAKE_EMBEDDER, GAIN: gain}.items():
        monkeypatch.setenv(k, v)
    repo = _repo(tmp_path)
    h = Home()
    try:
        h.start()
        tenant = h.new_tenant("emb", members={"vic": "viewer"})
        h.client(tenant).call(calls.project_add(str(repo), "sc"))
        jid = h.client(tenant, cwd=str(repo)).call(calls.index_start())["job"]["id"]
        poll(lambda: h.client(tenant).get(f"/v1/jobs/{jid}")["state"] == "done", timeout=120, interval=0.1)
        yield h, tenant, repo
    finally:
        h.cleanup()


@pytest.fixture
def worse(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Home, str, Path]]:
    yield from _engine(monkeypatch, tmp_path, "-0.05")


@pytest.fixture
def better(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[Home, str, Path]]:
    yield from _engine(monkeypatch, tmp_path, "0.05")


@asynccontextmanager
async def search(h: Home, tenant: str, repo: Path, as_user: str | None = None
                 ) -> AsyncIterator[tuple[MusubiApp, SearchScreen, Pilot[Any]]]:
    settings = Settings(engine=EngineSettings(retry_initial_s=0.1, retry_max_s=0.5, poll_s=30))
    api = AsyncEngineClient(h.paths, Identity(tenant=tenant, as_user=as_user, cwd=str(repo)))
    app = MusubiApp(AppContext(api, settings, ColorDecision("truecolor", "test"), animations=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "engine connected", 30)
        await wait_for(pilot, lambda: app.ctx.whoami is not None, "whoami read", 30)
        await settle(pilot)
        await pilot.press("3")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await wait_for(pilot, lambda: screen.embed is not None, "embedder versions read", 30)
        await pilot.press("escape")  # out of the query box: letters are keys
        await settle(pilot)
        yield app, screen, pilot


def line(screen: SearchScreen) -> str:
    return str(screen.query_one("#search-embedder", Static).render())


def said(modal: EmbedderModal) -> str:
    return modal.message


def first_option(app: MusubiApp) -> str:
    """The palette's first (highlighted) match, or "" while it is still searching."""
    from textual.command import CommandList

    found = app.screen.query(CommandList)
    if not found or not found.first().option_count:
        return ""
    return str(found.first().get_option_at_index(0).prompt)


def fake_api(tmp_path: Path) -> FakeEngineApi:
    """The TUI's fake engine on the webshop corpus with the embedder routes on (tests/tui/fake_tune.py)."""
    api = FakeEngineApi()
    api.code.write(tmp_path / "webshop")
    api.tune = FakeTune()
    return api


async def open_versions(app: MusubiApp, pilot: Pilot[Any]) -> EmbedderModal:
    await pilot.press("v")
    await wait_for(pilot, lambda: isinstance(app.screen, EmbedderModal), "the versions dialog open")
    modal = app.screen
    assert isinstance(modal, EmbedderModal)
    await settle(pilot)
    return modal


async def test_a_worse_model_is_kept_out_and_its_activation_refused(worse: tuple[Home, str, Path]) -> None:
    h, tenant, repo = worse
    async with search(h, tenant, repo) as (app, screen, pilot):
        assert "Embedder: base all-MiniLM-L6-v2" in line(screen)
        modal = await open_versions(app, pilot)
        assert "No tuned versions yet" in str(modal.query_one("#embedder-details", Static).render())
        # A budget outside the engine's range is refused here, and nothing is sent.
        await pilot.press("b")
        budget = modal.query_one("#embedder-budget", Input)
        assert app.focused is budget
        budget.value = ""
        await pilot.press(*"30", "enter")  # enter in the field starts: refused
        assert "60 to 86,400 seconds, not 30" in said(modal)
        assert modal.job is None
        await pilot.press("b", "backspace", "backspace", *"120", "escape")  # out of the field, the dialog stays
        assert app.screen is modal
        await pilot.press("t")
        await wait_for(pilot, lambda: modal.job is not None, "the tuning job started")
        assert modal.job is not None and modal.job["kind"] == "tune.embed"
        assert screen.embed_job is not None and screen.embed_job["id"] == modal.job["id"], "the line follows it"
        jid = modal.job["id"]
        assert h.client(tenant).get(f"/v1/jobs/{jid}")["params"]["budget_s"] == 120
        # (a second t while a job runs is refused locally: test_a_second_tune_while_one_runs_is_refused_here)
        await wait_for(pilot, lambda: modal.job is not None and modal.job["state"] == "done", "tuning done", 120)
        await wait_for(pilot, lambda: modal.data is not None and modal.data["versions"], "the version listed")
        await settle(pilot)
        assert modal.data is not None
        v1 = modal.data["versions"][0]
        assert v1["state"] == "rejected" and modal.data["serving"] == 0
        # The TUI fake's version rows (snapshots) are the engine's own shape, key for key.
        fake = FakeTune().versions[0]
        assert set(fake) == set(v1) and set(fake["pairs"]) == set(v1["pairs"])
        assert all(set(fake["pairs"][k]) == set(v1["pairs"][k]) for k in ("train", "held_out", "found", "files"))
        assert "kept the current model" in said(modal)
        details = str(modal.query_one("#embedder-details", Static).render())
        assert "kept out" in details and "R@10 must rise by at least 0.01" in details
        # Activating the kept-out version: the engine refuses with its reason; nothing changes.
        await pilot.press("a")
        await wait_for(pilot, lambda: "refused" in said(modal), "the refusal shown")
        assert "Activate refused" in said(modal) and "rejected" in said(modal)
        assert h.client(tenant, cwd=str(repo)).call(calls.tune_embedders())["serving"] == 0
        await pilot.press("r")  # nothing to roll back to: refused in words
        await wait_for(pilot, lambda: "Roll back refused" in said(modal), "the rollback refusal shown")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "back on Search")
        assert "Embedder: base all-MiniLM-L6-v2" in line(screen)


async def test_a_better_model_serves_then_rolls_back_and_a_viewer_is_refused(
        better: tuple[Home, str, Path]) -> None:
    h, tenant, repo = better
    async with search(h, tenant, repo) as (app, screen, pilot):
        modal = await open_versions(app, pilot)
        await pilot.press("t")  # the default budget (600 s; the hook trains in seconds)
        await wait_for(pilot, lambda: modal.job is not None, "the tuning job started")
        await wait_for(pilot, lambda: screen.embed is not None and screen.embed["serving"] == 1,
                       "v1 activated and serving", 120)
        await settle(pilot)
        assert "Embedder: tuned v1 · held-out R@10" in line(screen)
        assert modal.data is not None and modal.data["versions"][0]["state"] == "active"
        assert modal.query_one("#embedder-table", DataTable).get_row_at(0)[:2] == ["v1", "▶● active"]
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the rollback asked first")
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.embed is not None and screen.embed["serving"] == 0
                       and (screen.embed_job or {}).get("state") == "done", "rolled back to the base model", 120)
        assert "Embedder: base all-MiniLM-L6-v2" in line(screen)
        # A second client (core's, as `musubi tune activate 1` would) serves v1 again while the dialog is open:
        # the engine's job events reach the dialog and the line, which read the versions again.
        other = h.client(tenant, cwd=str(repo)).call(calls.tune_embed_activate(1))["job"]["id"]
        await wait_for(pilot, lambda: (modal.job or {}).get("id") == other, "the other client's job shown")
        await wait_for(pilot, lambda: modal.data is not None and modal.data["serving"] == 1
                       and screen.embed is not None and screen.embed["serving"] == 1, "v1 serving again", 120)
        await settle(pilot)
        assert modal.query_one("#embedder-table", DataTable).get_row_at(0)[:2] == ["v1", "▶● active"]
        assert "Serving: tuned v1" in str(modal.query_one("#embedder-serving", Static).render())
        assert "Embedder: tuned v1" in line(screen)
        # Through the palette too: its entries are the dialog's actions, each with its key.
        titles = [c.title for c in app.get_system_commands(modal)]
        assert {"Embedder versions: Tune", "Embedder versions: Activate", "Embedder versions: Roll back"} <= set(titles)

    # A viewer (search.query, not embedder.tune) sees the versions; tuning is refused before anything is sent.
    async with search(h, tenant, repo, as_user="vic") as (app, screen, pilot):
        modal = await open_versions(app, pilot)
        await wait_for(pilot, lambda: modal.data is not None, "versions read")
        await pilot.press("t")
        assert "not allowed" in said(modal)
        await pilot.press("a")
        assert "not allowed" in said(modal)
        jobs = h.client(tenant).get("/v1/jobs", {"kind": "tune.embed"})
        assert len(jobs) == 1, "the viewer's keys started nothing"


async def test_the_fake_engine_refusing_a_second_job_is_shown_in_words(tmp_path: Path) -> None:
    """A 409 (a job of the project already running elsewhere) reaches the dialog as words and a notification."""
    api = fake_api(tmp_path)
    async with search_screen(api) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.embed is not None, "versions read")
        assert line(screen) == "Embedder: tuned v1 · held-out R@10 0.861 MRR 0.660 · v versions"
        await pilot.press("escape")
        modal = await open_versions(app, pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: "refused" in said(modal), "the refusal shown")
        assert said(modal).startswith("✘ Tune refused: project webshop already has a tuning or activation job")
        assert any("Tune refused" in str(n.title) for n in app._notifications)
        assert app.screen is modal and app.is_running
        # The palette (ctrl+p) over the dialog lists its actions: "Roll back" runs the rollback.
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: app.screen is not modal, "the palette open")
        await pilot.press(*"Embedder versions: Roll back")
        await wait_for(pilot, lambda: first_option(app).startswith("Embedder versions: Roll back"), "the entry found")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the rollback asked first")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is modal and "Roll back refused" in said(modal),
                       "rollback from the palette")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, "closed")


async def test_an_engine_without_tuning_routes_hides_the_line(tmp_path: Path) -> None:
    api = FakeEngineApi()  # no tune routes: 404 as an older engine
    api.code.write(tmp_path / "webshop")
    async with search_screen(api) as (_app, screen, pilot):
        assert not screen.query_one("#search-embedder").display and screen.embed is None


def test_the_fake_answers_with_the_routes_response_shape() -> None:
    from tests.engine.test_api_models import _exactly
    from tests.tui.contract import route_for

    fake = FakeTune()
    _exactly(fake.answer("GET", "/v1/tune/embedders", "webshop"), route_for("GET", "/v1/tune/embedders").response)


async def test_a_second_tune_while_one_runs_is_refused_here(tmp_path: Path) -> None:
    """With a job of the project running (the fake's keeps running), t is refused in words and nothing is sent."""
    from tests.tui.fake_search import job_row
    api = fake_api(tmp_path)
    api.tune.job = {**job_row("j-000000000009", "running", 3, 9), "kind": "tune.embed", "params": {"budget_s": 600}}
    async with search_screen(api) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.embed is not None, "versions read")
        await pilot.press("escape")
        modal = await open_versions(app, pilot)
        await pilot.press("t")
        # the local refusal, not the fake engine's 409 ("Tune refused: ... already has a ... job running")
        assert said(modal).startswith("✘ tune.embed job j-000000000009 is still running")


async def test_x_deletes_the_highlighted_version_after_a_confirm(tmp_path: Path) -> None:
    """x asks first (n changes nothing), y deletes; the serving version is refused here, before any dialog."""
    from tests.engine.test_api_models import _exactly
    from tests.tui.contract import route_for
    from tests.tui.fakes import FakeEngineApi
    from tui.screens.modals import ConfirmModal

    api = FakeEngineApi()
    api.code.write(tmp_path / "webshop")
    api.tune = FakeTune()
    async with search_screen(api) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.embed is not None, "versions read")
        await pilot.press("escape")
        modal = await open_versions(app, pilot)
        await wait_for(pilot, lambda: modal.data is not None, "versions listed")
        assert modal.selected() is not None and modal.selected()["version"] == 2  # type: ignore[index]
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm dialog")
        assert "Delete embedder version v2?" in str(app.screen.query_one(".dialog-title", Static).render())
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is modal, "back in the dialog")
        assert api.tune.versions[0]["state"] == "rejected", "n deleted nothing"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirm dialog again")
        await pilot.press("y")
        await wait_for(pilot, lambda: "deleted" in said(modal) and modal.data is not None
                       and modal.data["versions"][0]["state"] == "deleted", "v2 deleted and listed so")
        assert said(modal).startswith("✔ v2 deleted: 91.2 MB freed")
        assert modal.query_one("#embedder-table", DataTable).get_row_at(0)[:2] == ["v2", " ∅ deleted"]
        await pilot.press("x")  # already deleted: said here, nothing sent
        assert said(modal) == "✘ v2 is already deleted"
        await pilot.press("down", "x")  # v1 serves: refused before any dialog
        assert app.screen is modal and "v1 serves search" in said(modal)
        titles = [c.title for c in app.get_system_commands(modal)]
        assert "Embedder versions: Delete" in titles
    _exactly(FakeTune().delete("webshop", 2), route_for("DELETE", "/v1/tune/embedders/{version}").response)


def _body(app: MusubiApp) -> str:
    return " ".join(str(w.render()) for w in app.screen.query(".dialog-title, .dialog-body"))


async def test_activate_and_rollback_ask_first_and_no_changes_nothing(tmp_path: Path) -> None:
    """a and r name the version and what happens, and send only on y; escape and n send nothing."""
    api = fake_api(tmp_path)
    api.tune.versions[0]["state"] = "ready"  # v2 passed the rule: activating it changes what serves
    sent: list[str] = []
    answer = api.tune.answer

    def spy(method: str, path: str, project: str | None) -> Any:
        if method == "POST":
            sent.append(path)
        return answer(method, path, project)

    api.tune.answer = spy  # type: ignore[method-assign]
    async with search_screen(api) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.embed is not None, "versions read")
        await pilot.press("escape")
        modal = await open_versions(app, pilot)
        await wait_for(pilot, lambda: modal.data is not None, "versions read")
        for key, no in (("a", "escape"), ("r", "n")):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "asked first")
            await pilot.press(no)
            await wait_for(pilot, lambda: app.screen is modal, "back in the dialog")
            assert "cancelled, nothing changed" in said(modal)
        assert sent == []
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "asked first")
        text = _body(app)
        assert "Activate v2 for webshop?" in text and "re-embedded with tuned v2 as a job" in text
        assert "keeps answering from the current index (tuned v1)" in text
        await pilot.press("y")
        await wait_for(pilot, lambda: "Activate refused" in said(modal), "sent, and the fake's refusal shown")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "asked first")
        assert "Roll back webshop to base all-MiniLM-L6-v2?" in _body(app)  # no retired version: the base model
        await pilot.press("y")
        await wait_for(pilot, lambda: "Roll back refused" in said(modal), "sent")
        assert sent == ["/v1/tune/embedders/activate", "/v1/tune/embedders/rollback"]


async def test_f1_opens_help_inside_the_dialog_and_its_confirm(tmp_path: Path) -> None:
    """F1 is the app's; a modal screen cuts the app's bindings off unless they are priority ones."""
    from tui.screens.help import HelpScreen

    api = fake_api(tmp_path)
    async with search_screen(api) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.embed is not None, "versions read")
        box = screen.query_one("#search-query", Input)
        assert app.focused is box
        await pilot.press("?")  # typed into the query box, it is text, not help
        assert box.value == "?" and app.screen is screen
        await pilot.press("backspace", "escape")
        modal = await open_versions(app, pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help over the dialog")
        help_screen = app.screen
        title = str(help_screen.query_one(".dialog-title", Static).render())
        assert title == "Help — Search ▸ Embedder versions · webshop"
        keys = str(help_screen.query_one("#help-keys-screen", Static).render())
        assert "embedder_activate" in keys and "embedder_rollback" in keys
        await pilot.press("f1")  # F1 again closes it
        await wait_for(pilot, lambda: app.screen is modal, "back in the dialog")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "asked first")
        confirm = app.screen
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "help over the question")
        assert "confirm_yes" in str(app.screen.query_one("#help-keys-screen", Static).render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is confirm, "back to the question, still unanswered")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is modal, "back in the dialog")
        assert "cancelled, nothing changed" in said(modal)


async def test_a_delete_by_another_client_shows_in_the_open_dialog(tmp_path: Path) -> None:
    """A delete starts no job: its audit event makes the open dialog (and the line) read the versions again;
    another project's delete, or a refused one, reads nothing."""
    api = fake_api(tmp_path)
    async with search_screen(api) as (app, screen, pilot):
        await wait_for(pilot, lambda: screen.embed is not None, "versions read")
        await pilot.press("escape")
        modal = await open_versions(app, pilot)
        await wait_for(pilot, lambda: modal.data is not None, "versions listed")
        table = modal.query_one("#embedder-table", DataTable)
        api.tune.delete("webshop", 2)  # as `musubi tune delete 2` in another terminal

        def audit(resource: str, outcome: str = "success") -> dict[str, Any]:
            return {"type": "audit", "tenant": "default",
                    "event": {"action": "tune.delete", "resource": resource, "outcome": outcome}}

        for other in (audit("project:elsewhere"), audit("project:webshop", "denied")):
            app.ctx.engine_event.publish(other)
            await settle(pilot)
            assert table.get_row_at(0)[1] != " ∅ deleted", "read again on an event that is not this delete"
        app.ctx.engine_event.publish(audit("project:webshop"))
        await wait_for(pilot, lambda: table.get_row_at(0)[:2] == ["v2", " ∅ deleted"], "v2 shown deleted")
