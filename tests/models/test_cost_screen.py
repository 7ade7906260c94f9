"""The Cost screen (mode 4): Pilot tests of its behaviour, SVG snapshots, and one run on a real engine.

The fake engine (tests/tui/fakes.py) answers the model and cost routes with the real
pure code on fixed texts (tests/models/fake_cost.py), so numbers are real and
snapshots stable.  Regenerate after a deliberate UI change with
``pytest tests/models/test_cost_screen.py --snapshot-update``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DirectoryTree, Input, Select, SelectionList

from tests.tui.conftest import settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path_factory.mktemp("cfg")))
    monkeypatch.delenv("MUSUBI_TENANT", raising=False)


async def open_cost(pilot: Pilot[Any]) -> Any:
    app: Any = pilot.app
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "engine connected")
    await pilot.press("4")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "CostScreen", "cost screen")
    scr = app.screen
    await wait_for(pilot, lambda: scr.estimate is not None, "first estimate")
    await settle(pilot)
    return scr


async def next_estimate(pilot: Pilot[Any], scr: Any, cond: Callable[[dict[str, Any]], bool], what: str) -> None:
    await wait_for(pilot, lambda: scr.estimate is not None and cond(scr.estimate), what)


def rows(scr: Any) -> list[list[str]]:
    t = scr.query_one("#cost-table")
    return [[str(c) for c in t.get_row_at(i)] for i in range(t.row_count)]


async def test_opens_with_default_models_and_a_workflow() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        assert [r[0] for r in rows(scr)] == ["gpt-6.1-sol", "claude-sonnet-5-5 *", "gemini-3.8-flash *"]
        assert scr.estimate["workflow"] == "implement"
        first = rows(scr)[0]
        est = scr.estimate["models"][0]
        assert first[1].startswith(f"{float(est['cost_usd']['expected']):.4f} (")
        assert first[2].startswith(("OK", "MAY TRIP", "TRIPS"))  # a word, not colour alone
        assert "estimated tokenizer" in str(scr.query_one("#cost-notes").render())


async def test_selecting_a_model_updates_the_table_live() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        sl = scr.query_one("#cost-models", SelectionList)
        sl.select("gpt-6-astra")
        sl.deselect("gemini-3.8-flash")
        await next_estimate(pilot, scr,
                            lambda e: {m["model"] for m in e["models"]} == {"gpt-6.1-sol", "gpt-6-astra", "claude-sonnet-5-5"},
                            "estimate with gpt-6-astra, without gemini")
        await settle(pilot)
        assert {r[0] for r in rows(scr)} == {"gpt-6.1-sol", "gpt-6-astra", "claude-sonnet-5-5 *"}


async def test_keyboard_selection_and_workflow_change() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        sl = scr.query_one("#cost-models", SelectionList)
        sl.focus()
        await pilot.press("home", "space")  # toggles the first model (gpt-5.4-nano) on
        await next_estimate(pilot, scr, lambda e: "gpt-5.4-nano" in [m["model"] for m in e["models"]], "nano added")
        scr.query_one("#cost-workflow", Select).value = "task:review"
        await next_estimate(pilot, scr, lambda e: e.get("task") == "review" and len(e["steps"]) == 1, "single review step")


async def test_glob_and_tree_choose_files(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for n in ("a.py", "b.py", "notes.md"):
        (tmp_path / "src" / n).write_text("print('x')\n")
    api = FakeEngineApi()
    api.identity.cwd = str(tmp_path)
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        scr.query_one("#cost-glob", Input).value = "src/**/*.py"
        await next_estimate(pilot, scr, lambda e: len(e["files"]) == 2, "two files by glob")
        assert "2 file(s) chosen" in str(scr.query_one("#cost-scope-info").render())
        sent = [p for p in scr.paths()]
        assert sent == [str(tmp_path / "src" / "a.py"), str(tmp_path / "src" / "b.py")]
        await pilot.press("t")
        await wait_for(pilot, lambda: bool(scr.query(DirectoryTree)), "tree mounted")
        tree = scr.query_one(DirectoryTree)
        await wait_for(pilot, lambda: tree.has_focus, "tree focused")
        scr._tree_pick(DirectoryTree.FileSelected(tree.root, tmp_path / "src" / "notes.md"))
        await next_estimate(pilot, scr, lambda e: len(e["files"]) == 3, "three files with the tree pick")
        scr._tree_pick(DirectoryTree.FileSelected(tree.root, tmp_path / "src" / "notes.md"))  # again: removed
        await next_estimate(pilot, scr, lambda e: len(e["files"]) == 2, "back to two files")
        await pilot.press("escape")  # leave the tree's focus for the screen's keys
        scr.action_clear_files()
        await next_estimate(pilot, scr, lambda e: e["files"][0]["name"] == "/src/webshop/spec.md", "no files: prompts only")


async def test_export_writes_markdown(tmp_path: Path) -> None:
    api = FakeEngineApi()
    api.identity.cwd = str(tmp_path)
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        scr.query_one("#cost-table").focus()
        await pilot.press("x")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "FormModal", "export dialog")
        app.screen.query_one("#field-path", Input).value = "out/estimate.md"
        (tmp_path / "out").mkdir()
        await pilot.press("ctrl+s")
        target = tmp_path / "out" / "estimate.md"
        await wait_for(pilot, target.exists, "export file written")
        text = target.read_text()
        assert text.startswith("# Cost estimate: workflow `implement`") and "| gpt-6.1-sol |" in text


async def test_refused_estimate_is_a_notification_not_a_crash() -> None:
    api = FakeEngineApi()
    api.denied.add(("POST", "/v1/cost/estimate"))
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "engine connected")
        await pilot.press("4")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CostScreen", "cost screen")
        scr: Any = app.screen
        await wait_for(pilot, lambda: "permission denied" in str(scr.query_one("#cost-notes").render()), "refusal shown")
        # notify() posts a message: the notification lands after the note, so wait for it too.
        await wait_for(pilot, lambda: any(n.title == "Estimate refused" for n in app._notifications), "notification")
        assert scr.estimate is None and app.is_running


async def test_no_model_selected_says_what_to_do() -> None:
    app = MusubiApp(fake_ctx(FakeEngineApi()))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        scr.query_one("#cost-models", SelectionList).deselect_all()
        await wait_for(pilot, lambda: scr.estimate is None, "estimate cleared")
        assert "select at least one model" in str(scr.query_one("#cost-notes").render())
        assert rows(scr) == []


def goto_cost(extra: Callable[[Pilot[Any]], Awaitable[None]] | None = None) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await open_cost(pilot)
        if extra:
            await extra(pilot)
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_snapshot(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    assert snap_compare(MusubiApp(fake_ctx(FakeEngineApi())), terminal_size=size, run_before=goto_cost())


def test_snapshot_16_colours(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(MusubiApp(fake_ctx(FakeEngineApi(), color="16")), terminal_size=(80, 24), run_before=goto_cost())


async def test_against_a_real_engine(engine_home: Any, tmp_path: Path) -> None:
    from core.wire import Identity
    from tui.context import AppContext, AsyncEngineClient

    (tmp_path / "m.py").write_text("def f(x):\n    return x * 2\n" * 50)
    api = AsyncEngineClient(engine_home, Identity(cwd=str(tmp_path)))
    app = MusubiApp(AppContext(api, animations=False))
    async with app.run_test(size=(120, 40)) as pilot:
        scr = await open_cost(pilot)
        scr.query_one("#cost-glob", Input).value = "*.py"
        await next_estimate(pilot, scr, lambda e: len(e["files"]) == 1, "the real engine counted the file")
        from core.models.tokens import count_exact

        f = scr.estimate["files"][0]
        assert f["tokens"]["o200k_base"]["tokens"] == count_exact((tmp_path / "m.py").read_text())
        await asyncio.sleep(0)
