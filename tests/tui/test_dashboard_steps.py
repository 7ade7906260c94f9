"""The first-run Dashboard points somewhere (issue 15 item 13): with no runs yet, next steps from the real state;
and one convention for quota figures (the percentage is what is left; amounts are what is used of the limit)."""

from __future__ import annotations

from tests.tui.conftest import settle, wait_for
from tests.tui.fake_runs import FakeRuns
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tui.app import MusubiApp
from tui.config import Settings
from tui.screens.dashboard_view import provider_step
from tui.widgets.status_bar import render_status


def screen_text(app: MusubiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def dashboard(
    api: FakeEngineApi, settings: Settings | None = None, keys: tuple[str, ...] = ()
) -> tuple[str, str]:
    api.runs = FakeRuns(empty=True)  # next steps show while there is no run to show
    app = MusubiApp(fake_ctx(api, settings=settings))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await settle(pilot)
        for k in keys:
            await pilot.press(k)
            await settle(pilot)
        return screen_text(app), str(render_status(app.ctx, 120))


async def test_no_project_says_how_to_add_one_and_no_provider_where_to_set_it() -> None:
    api = FakeEngineApi()
    api.data["projects"] = []
    text, _ = await dashboard(api)
    assert "Next steps" in text
    assert "No project for this folder. Add one: musubi project add PATH" in text
    assert "No runs yet in this tenant" in text and 'musubi run WORKFLOW --feature "what to build"' in text
    assert "No model provider is ready in the engine" in text and "OPENAI_API_KEY" in text


def with_openai(api: FakeEngineApi) -> FakeEngineApi:
    """The engine has a ready provider (GET /v1/providers), so no provider step is due."""
    api.data["providers"]["providers"] = [{
        "name": "openai", "kind": "openai", "label": "OpenAI", "is_replay": False, "source": "env:OPENAI_API_KEY",
        "base_url": None, "key_set": True, "serves": ["openai"], "models": [], "check_model": "gpt-5.4-mini",
        "status": "ready", "problem": None}]
    api.data["providers"]["hints"] = [h for h in api.data["providers"]["hints"] if h["provider"] != "openai"]
    return api


async def test_a_project_with_specs_shows_its_coverage_and_the_trace_key() -> None:
    text, _ = await dashboard(with_openai(FakeEngineApi()))
    assert "Project webshop: 7 requirements, coverage 64.3% (grade D) — press 2 for Trace" in text
    assert "No model provider" not in text  # configured: not asked for


async def test_a_project_registered_elsewhere_is_not_this_folders() -> None:
    api = FakeEngineApi()
    api.data["projects"] = [{"name": "webshop", "path": "/src/webshop", "current": False}]
    text, _ = await dashboard(with_openai(api))
    assert "No project for this folder" in text and "No model provider" not in text


async def test_no_provider_says_what_the_engine_says_to_set() -> None:
    """The engine's provider list decides (its keys come from its own environment, not this app's config)."""
    api = FakeEngineApi()
    text, _ = await dashboard(api, Settings(providers={"openai": {}}))
    assert "No model provider is ready in the engine, so a run cannot call a model." in text
    assert "openai: set OPENAI_API_KEY" in text and "musubi engine reload" in text
    plist = with_openai(FakeEngineApi()).data["providers"]
    plist["providers"][0].update(status="unavailable", problem="the key was refused (401)")
    said = provider_step(plist) or ""
    assert "openai is configured but unavailable: the key was refused (401)." in said
    assert "anthropic: set ANTHROPIC_API_KEY" in said
    plist["providers"].append({**plist["providers"][0], "name": "replay", "is_replay": True, "status": "ready"})
    assert provider_step(plist) is not None  # the replay provider never counts as a real one


async def test_an_engine_without_the_providers_route_falls_back_to_the_apps_config() -> None:
    api = FakeEngineApi()
    api.data["providers"] = None  # the route below answers 404, as an older engine does
    api.engine.routes = [r for r in api.engine.routes if r[1].pattern != "^/v1/providers$"]
    text, _ = await dashboard(api)
    assert "No model provider configured, so a run cannot call a model." in text
    text, _ = await dashboard(api, Settings(providers={"openai": {}}))
    assert "No model provider" not in text


async def test_quota_figures_say_left_everywhere() -> None:
    text, status = await dashboard(FakeEngineApi())
    assert "38% left OK" in text and "62,000 / 100,000 used" in text and "62% OK" not in text
    assert "requests/hour 9% left NEAR" in status
    admin, _ = await dashboard(FakeEngineApi(), keys=("6", "right_square_bracket", "right_square_bracket"))
    assert "OK 38% left" in admin and "NEAR 9% left" in admin and "OK 62%" not in admin
