"""Admin panes while a second client changes their data through a REAL engine.

Each test opens one pane, then another client (the sync engine client, or the
``musubi`` CLI itself) changes what the pane shows, in bursts and one by one.  The
app must stay up (``run_test`` re-raises any crash at exit) and converge on what
the engine holds.  The first test is the issue's reproduction: adding a quota
from another shell while Admin ▸ Quotas is shown crashed the app with DuplicateIds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Static

from core.client import EngineClient
from core.paths import HomePaths
from tests.tui.conftest import open_admin_tab, settle, wait_for
from tests.tui.fakes import FakeEngineApi, fake_ctx
from tests.tui.test_admin_engine import real_app, submit_form
from tui.app import MusubiApp
from tui.screens.admin.audit import AuditPane
from tui.screens.admin.members import MembersPane, RoleList
from tui.screens.admin.quotas import NOTE_ID, GaugeList
from tui.screens.admin.tenants import TenantsPane
from tui.widgets.gauge import QuotaGauge


async def open_pane(pilot: Pilot[Any], app: MusubiApp, tab: str) -> None:
    await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected to the real engine")
    await open_admin_tab(pilot, tab)


async def converges(pilot: Pilot[Any], engine_view: Callable[[], Any], pane_view: Callable[[], Any], what: str) -> None:
    """Poll until the pane shows what the engine holds, both read afresh each time (a hang guard, not a speed check)."""
    want: Any = None
    for _ in range(200):
        want = await asyncio.to_thread(engine_view)
        if pane_view() == want:
            assert pilot.app.is_running
            return
        await pilot.pause(0.1)
    raise AssertionError(f"{what}: the pane shows {pane_view()!r}, the engine holds {want!r}")


def cli(home: HomePaths, *args: str) -> str:
    """Run ``musubi --home H ARGS`` as another shell would; return its output."""
    code = "import sys; sys.argv = ['musubi', *sys.argv[1:]]; import tui.launch as l; l.main()"
    out = subprocess.run([sys.executable, "-c", code, "--home", str(home.home), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- quotas -------------------------------------------------------------------------------


def gauges_shown(app: MusubiApp) -> list[tuple[str, str, Any]]:
    box = app.screen.query_one(GaugeList)
    return [(g.quota["metric"], g.quota["period"], g.quota["limit"]) for g in box.query_children(QuotaGauge)]


def engine_quotas(client: EngineClient) -> list[tuple[str, str, Any]]:
    return [(q["metric"], q["period"], q["limit"]) for q in client.get("/v1/quotas")["quotas"]]


async def test_quotas_pane_survives_quota_changes_from_another_shell_and_from_the_tui(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, _ctx = real_app(engine_home)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(pilot, app, "quotas")
        assert len(gauges_shown(app)) == 2

        # The reproduction, word for word: another shell adds a quota.
        await asyncio.to_thread(cli, engine_home, "quota", "set", "tokens", "300000", "--per", "month")
        await converges(pilot, lambda: engine_quotas(client), lambda: gauges_shown(app), "a quota added from the CLI")
        assert ("tokens", "month", 300000) in gauges_shown(app)

        # A burst: added, changed, removed, with no pause between the writes.
        def burst() -> None:
            client.put("/v1/quotas", {"metric": "requests", "period": "minute", "limit": 60})
            client.put("/v1/quotas", {"metric": "tokens", "period": "month", "limit": 350_000})
            client.put("/v1/quotas", {"metric": "tokens", "period": "day", "limit": 200_000})
            client.delete("/v1/quotas", {"metric": "tokens", "period": "month"})
            client.put("/v1/quotas", {"metric": "cost_usd", "period": "day", "limit": "5"})
            client.put("/v1/quotas", {"metric": "tokens", "period": "month", "limit": 400_000})

        for _ in range(3):
            await asyncio.to_thread(burst)
        await converges(pilot, lambda: engine_quotas(client), lambda: gauges_shown(app), "a burst of quota changes")

        # Every quota removed: the pane says so instead of showing gauges; one added again: a gauge.
        for metric, period, _limit in await asyncio.to_thread(engine_quotas, client):
            await asyncio.to_thread(client.delete, "/v1/quotas", {"metric": metric, "period": period})
        await converges(pilot, lambda: engine_quotas(client), lambda: gauges_shown(app), "all quotas removed")
        note = app.screen.query_one(f"#{NOTE_ID}", Static)
        await wait_for(pilot, lambda: "No quotas" in str(note.render()), "the no-quotas note")
        await asyncio.to_thread(client.put, "/v1/quotas", {"metric": "requests", "period": "hour", "limit": 100})
        await converges(pilot, lambda: engine_quotas(client), lambda: gauges_shown(app), "a quota after none")
        assert not app.screen.query(f"#{NOTE_ID}")

        # From this TUI: a new quota through the form, while another client keeps writing.
        await pilot.press("n")
        await pilot.pause()
        await submit_form(pilot, app, metric="cost_usd", period="month", limit="50")
        await asyncio.to_thread(burst)
        await converges(pilot, lambda: engine_quotas(client), lambda: gauges_shown(app), "a quota added in the TUI")
        assert ("cost_usd", "month", 50) in {(m, p, float(x)) for m, p, x in gauges_shown(app)}
        ids = [g.id for g in app.screen.query(QuotaGauge)]
        assert len(ids) == len(set(ids))


# -- members ------------------------------------------------------------------------------


async def test_members_pane_follows_members_and_roles_changed_elsewhere(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, _ctx = real_app(engine_home)

    def engine_members() -> list[tuple[str, str]]:
        return sorted((m["user"], m["role"]) for m in client.get("/v1/members"))

    def engine_roles() -> list[str]:
        return sorted(r["name"] for r in client.get("/v1/roles"))

    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(pilot, app, "members")
        pane = app.screen.query_one(MembersPane)

        def shown() -> list[tuple[str, str]]:
            return sorted((m["user"], m["role"]) for m in pane.members)

        def roles_shown() -> list[str]:
            roles = pane.query_one(RoleList)
            return sorted(str(roles.get_option_at_index(i).id) for i in range(roles.option_count))

        for round_ in range(3):
            def burst(r: int = round_) -> None:
                for user in ("bob", "carol", "dave"):
                    client.post("/v1/members", {"user": user, "role": "member"})
                client.post("/v1/members", {"user": "carol", "role": "viewer"})
                client.delete("/v1/members/bob")
                client.delete("/v1/members/dave")
                client.post("/v1/roles", {"name": f"auditor{r}", "permissions": ["audit.read"]})

            await asyncio.to_thread(burst)
            await converges(pilot, engine_members, shown, f"members after burst {round_}")
            await converges(pilot, engine_roles, roles_shown, f"roles after burst {round_}")
        assert ("carol", "viewer") in shown() and not {"bob", "dave"} & {u for u, _ in shown()}

        await asyncio.to_thread(client.delete, "/v1/roles/auditor0")
        await converges(pilot, engine_roles, roles_shown, "a custom role deleted elsewhere")

        # The cursor stays on the binding the user is on while rows come and go around it.
        table = pane.query_one("#members-table")
        table.move_cursor(row=next(i for i, m in enumerate(pane.members) if m["user"] == "carol"))
        await asyncio.to_thread(client.post, "/v1/members", {"user": "aaron", "role": "viewer"})
        await converges(pilot, engine_members, shown, "a member added before carol")
        assert (pane.selected() or {}).get("user") == "carol"


# -- tenants ------------------------------------------------------------------------------


async def test_tenants_pane_follows_tenants_created_and_suspended_elsewhere(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, _ctx = real_app(engine_home)

    def engine_tenants() -> list[tuple[str, str]]:
        return sorted((t["name"], t["status"]) for t in client.get("/v1/tenants"))

    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(pilot, app, "tenants")
        pane = app.screen.query_one(TenantsPane)

        def shown() -> list[tuple[str, str]]:
            return sorted((t["name"], t["status"]) for t in pane.tenants)

        for i in range(3):
            await asyncio.to_thread(client.post, "/v1/tenants", {"name": f"team{i}"})
            await converges(pilot, engine_tenants, shown, f"tenant team{i} created elsewhere")

        def flip() -> None:
            client.post("/v1/tenants/team0/suspend", {"reason": "audit"})
            client.post("/v1/tenants/team1/suspend", {})
            client.post("/v1/tenants/team0/resume", {})
            client.post("/v1/tenants", {"name": "team9"})

        await asyncio.to_thread(flip)
        await converges(pilot, engine_tenants, shown, "tenants suspended, resumed and created in a burst")
        assert ("team1", "suspended") in shown() and ("team0", "active") in shown()


# -- audit --------------------------------------------------------------------------------


async def test_audit_pane_shows_events_written_by_another_client(engine_home: HomePaths) -> None:
    client = EngineClient(engine_home, autostart=False)
    app, _ctx = real_app(engine_home)

    def engine_seqs() -> list[int]:
        return [e["seq"] for e in client.get("/v1/audit", {"limit": 200})]

    async with app.run_test(size=(120, 40)) as pilot:
        await open_pane(pilot, app, "audit")
        pane = app.screen.query_one(AuditPane)

        def burst() -> None:
            for i in range(15):
                client.post("/v1/usage", {"model": "m", "input_tokens": 10 + i, "output_tokens": 1})
            client.post("/v1/members", {"user": "erin", "role": "viewer"})
            client.delete("/v1/members/erin")
            client.put("/v1/quotas", {"metric": "requests", "period": "minute", "limit": 600})

        for _ in range(3):
            await asyncio.to_thread(burst)
        await converges(pilot, engine_seqs, lambda: [e["seq"] for e in pane.events], "audit events of another client")
        table = pane.query_one("#audit-table")
        assert table.row_count == len(pane.events)

        # A refresh (r) racing live events still ends on the engine's log, with no duplicate rows.
        await pilot.press("r")
        await asyncio.to_thread(burst)
        await pilot.press("r")
        await converges(pilot, engine_seqs, lambda: [e["seq"] for e in pane.events], "audit after refreshes racing events")
        assert table.row_count == len(pane.events)


async def test_audit_pane_keeps_live_events_when_a_fetch_answers_late_and_shows_each_once() -> None:
    api = FakeEngineApi()
    app = MusubiApp(fake_ctx(api))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.name == "connected", "connected")
        await pilot.press("6", *["right_square_bracket"] * 3)
        await settle(pilot)
        pane = app.screen.query_one(AuditPane)
        stale = [dict(e) for e in pane.events]  # the log as a slow fetch would answer it
        ev = {**stale[0], "seq": 7, "actor": "carol", "action": "usage.record"}
        for _ in range(2):  # the same event twice (a replay) must not add a second row with key 7
            api.queue.put_nowait({"type": "audit", "tenant": "acme", "event": ev})
        await wait_for(pilot, lambda: pane.events and pane.events[0]["seq"] == 7, "the live event")
        pane.post_message(AuditPane.Loaded(stale))
        await settle(pilot)
        assert [e["seq"] for e in pane.events] == [7, 6, 5, 4, 3, 2, 1]
        assert pane.query_one("#audit-table").row_count == 7
