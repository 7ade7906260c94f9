"""`musubi integrations` and `musubi sync` end to end: the real CLI, a real engine, the Jira fake."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Cli, short_home
from tests.connectors.fakes_fixtures import spec_repo
from tests.fakes.jira import JiraFake
from tests.fakes.threaded import threaded

HOOK = ",".join(f"{n}=connectors.{n}:factory" for n in ("jira", "github", "gitlab", "ado", "slack", "teams"))


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSUBI_TEST_CONNECTORS", HOOK)
        c = Cli(short_home())
        try:
            c.ok("engine", "start")
            yield c
        finally:
            c.stop()
            shutil.rmtree(c.home, ignore_errors=True)


@pytest.fixture(scope="module")
def fake() -> Iterator[JiraFake]:
    with threaded(JiraFake) as f:
        yield f


def test_set_test_sync_resync_and_audit(cli: Cli, fake: JiraFake, tmp_path: Path) -> None:
    root = spec_repo(tmp_path / "repo")
    cli.ok("project", "add", str(root), "--name", "shop")
    saved = cli.ok("integrations", "set", "jira", f"url={fake.url}", f"email={fake.email}", "--secret", "token",
                   "--json", input=fake.token + "\n").json()
    assert saved == {"system": "jira", "settings": {"url": fake.url, "email": fake.email}, "secrets": ["token"]}
    secrets = Path(cli.home) / "tenants" / "default" / "integrations" / "secrets.json"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.parent.stat().st_mode) == 0o700
    listed = cli.ok("integrations", "list", "--json").json()
    jira_row = next(r for r in listed["integrations"] if r["system"] == "jira")
    assert jira_row["secrets"] == ["token"] and fake.token not in json.dumps(listed)
    assert cli.ok("integrations", "test", "jira", "--json").json()["detail"]["account"] == "Musubi Bot"

    dry = cli.ok("sync", "jira", "--project", "PROJ", "--dry-run", "--json", cwd=str(root)).json()
    assert dry["state"] == "done" and dry["result"]["planned"] == {"create": 4} and fake.issues == {}

    first = cli.ok("sync", "jira", "--project", "PROJ", "--json", cwd=str(root)).json()
    assert first["kind"] == "integrations.sync" and len(first["result"]["created"]) == 4
    links = root / "storage" / "traceability" / "links.yml"
    before = links.read_bytes()
    human = cli.ok("sync", "jira", "--project", "PROJ", cwd=str(root))
    assert "4 unchanged" in human.out
    assert links.read_bytes() == before

    trace = cli.ok("trace", "show", "REQ-AUTH-001", "--json", cwd=str(root)).json()
    assert {x["key"] for x in trace["external"]} == {"PROJ-1", "PROJ-3"}  # its epic and its task's story

    audit = cli.ok("audit", "list", "--json", "--limit", "200").json()
    events = audit["events"] if isinstance(audit, dict) else audit
    writes = [(e["action"], e["resource"], e["outcome"]) for e in events if e["action"].startswith("integration.")]
    assert ("integration.create", "jira:PROJ-1", "success") in writes
    assert sum(1 for w in writes if w[0] == "integration.create") == 4
    assert ("integration.set", "integration:jira", "success") in writes
    everything = json.dumps(audit) + (Path(cli.home) / "logs" / "engine.log").read_text()
    assert fake.token not in everything


def test_failed_connection_test_shows_jiras_text(cli: Cli, fake: JiraFake, tmp_path: Path) -> None:
    cli.ok("--tenant", "default", "integrations", "set", "jira", f"url={fake.url}", f"email={fake.email}",
           "--secret", "token", input="wrong-SECRET-value\n")
    r = cli("integrations", "test", "jira")
    assert r.rc == 1 and "Traceback" not in r.err
    assert "Client must be authenticated" in r.err and "wrong-SECRET-value" not in r.out + r.err
    root = spec_repo(tmp_path / "bad")
    cli.ok("project", "add", str(root), "--name", "badtoken")
    r = cli("sync", "jira", "--project", "PROJ", cwd=str(root))
    assert r.rc == 1 and "Traceback" not in r.err
    assert "failed" in r.err and "Client must be authenticated" in r.err and "wrong-SECRET-value" not in r.err
    cli.ok("integrations", "set", "jira", "--secret", "token", input=fake.token + "\n")


def test_bad_input_is_refused_with_the_fix(cli: Cli) -> None:
    r = cli("integrations", "set", "jira", "token=abc")
    assert r.rc == 2 and "is a secret" in r.err
    r = cli("integrations", "set", "jira", "nonsense")
    assert r.rc == 2 and "KEY=VALUE" in r.err
    r = cli("sync", "jira", "--project", "PROJ", "--resolve", "REQ-1=mine")
    assert r.rc == 2 and "ID=local" in r.err
    r = cli("integrations", "test", "gitlab")
    assert r.rc == 1 and "not set up" in r.err and "musubi integrations set gitlab" in r.err


def test_pipeline_status_through_the_engine(cli: Cli) -> None:
    from tests.fakes.github import GitHubFake

    with threaded(GitHubFake) as gh:
        gh.add_run("main", "completed", "success", name="CI")
        gh.add_run("main", "in_progress", name="Deploy")
        cli.ok("integrations", "set", "github", f"api_url={gh.url}", f"repo={gh.repo}", "--secret", "token",
               input=gh.token + "\n")
        got = cli.ok("integrations", "pipeline", "github", "--ref", "main", "--json").json()
        human = cli.ok("integrations", "pipeline", "github", "--ref", "main")
    assert [(r["name"], r["state"]) for r in got["runs"]] == [("Deploy", "running"), ("CI", "success")]
    assert "Deploy" in human.out and "running" in human.out
    r = cli("integrations", "pipeline", "slack", "--ref", "main")
    assert r.rc == 2 and "Traceback" not in r.err


def test_answers_have_the_response_shapes(cli: Cli, fake: JiraFake, tmp_path: Path) -> None:
    """The integrations routes' real answers match their response models exactly (no extra keys)."""
    from core.api import integrations as i
    from core.client import EngineClient, Identity
    from tests.engine.test_api_models import _exactly

    root = spec_repo(tmp_path / "repo2")
    cli.ok("project", "add", str(root), "--name", "shapes")
    api = EngineClient(cli.paths, Identity(tenant="default", cwd=str(root)), autostart=False)
    _exactly(api.get("/v1/integrations"), i.Integrations)
    _exactly(api.put("/v1/integrations/jira", {"settings": {"url": fake.url, "email": fake.email},
                                               "secrets": {"token": fake.token}}), i.IntegrationSaved)
    _exactly(api.post("/v1/integrations/jira/test", {}), i.IntegrationTested)
    _exactly(api.post("/v1/sync/jira", {"project_key": "PROJ", "dry_run": True}), i.SyncStarted)
    from tests.fakes.github import GitHubFake

    with threaded(GitHubFake) as gh:
        gh.add_run("main", "queued")
        api.put("/v1/integrations/github", {"settings": {"api_url": gh.url, "repo": gh.repo},
                                            "secrets": {"token": gh.token}})
        _exactly(api.get("/v1/integrations/github/pipelines", {"ref": "main"}), i.PipelineStatus)


def test_notify_through_slack_is_sent_audited_and_refusals_carry_slacks_code(cli: Cli) -> None:
    from core.api import integrations as i
    from core.client import EngineClient, Identity
    from tests.engine.test_api_models import _exactly
    from tests.fakes.slack import SlackFake

    with threaded(SlackFake) as slack:
        cli.ok("integrations", "set", "slack", f"api_url={slack.url}", "channel=C0001", "--secret", "token",
               input=slack.token + "\n")
        sent = cli.ok("integrations", "notify", "slack", "Deploy of shop done", "--title", "shop", "--json").json()
        bad = cli("integrations", "notify", "slack", "x", "--target", "C9999")
        api = EngineClient(cli.paths, Identity(tenant="default", cwd="/"), autostart=False)
        _exactly(api.post("/v1/integrations/slack/notify", {"title": "t", "text": "again"}), i.Notified)
        assert [m["channel"] for m in slack.messages] == ["C0001", "C0001"]
    assert sent["target"] == "C0001" and sent["id"] == slack.messages[0]["ts"]
    assert bad.rc == 1 and "channel_not_found" in bad.err and "Traceback" not in bad.err
    events = cli.ok("audit", "list", "--json", "--action", "integration.notify").json()
    rows = events["events"] if isinstance(events, dict) else events
    assert {(e["resource"], e["outcome"]) for e in rows} >= {("slack:C0001", "success"), ("integration:slack", "error")}
    assert slack.token not in json.dumps(rows) and "Deploy of shop done" not in json.dumps(rows)


def test_two_syncs_of_one_project_at_once_create_each_item_once(cli: Cli, fake: JiraFake, tmp_path: Path) -> None:
    fake.projects.add("OPS")
    root = spec_repo(tmp_path / "twice")
    cli.ok("project", "add", str(root), "--name", "twice")
    cli.ok("integrations", "set", "jira", f"url={fake.url}", f"email={fake.email}", "--secret", "token",
           input=fake.token + "\n")
    jobs = [cli.ok("sync", "jira", "--project", "OPS", "--detach", "--json", cwd=str(root)).json()["id"]
            for _ in range(2)]
    finals = [cli.ok("jobs", "show", j, "--follow", "--json").json() for j in jobs]
    assert [f["state"] for f in finals] == ["done", "done"]
    assert sum(len(f["result"]["created"]) for f in finals) == 4
    assert sorted(k for k in fake.issues if k.startswith("OPS-")) == ["OPS-1", "OPS-2", "OPS-3", "OPS-4"]
