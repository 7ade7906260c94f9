"""Finding connectors by entry point (core never imports connectors) and the settings/secrets store."""

from __future__ import annotations

import importlib.metadata
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from core.errors import BadRequest, MusubiError
from core.integrations import registry
from core.integrations.contracts import Notifier, Pipelines, Tracker
from core.integrations.store import IntegrationStore


@pytest.fixture(autouse=True)
def _fresh_registry() -> Any:
    registry.clear()
    yield
    registry.clear()


def _eps(*pairs: tuple[str, str]) -> Any:
    return importlib.metadata.EntryPoints(
        importlib.metadata.EntryPoint(name, value, "musubi.connectors") for name, value in pairs)


def test_factories_load_through_the_entry_point_group(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def entry_points(*, group: str) -> Any:
        asked.append(group)
        return _eps(("jira", "connectors.jira:factory"), ("github", "connectors.github:factory"),
                    ("gitlab", "connectors.gitlab:factory"), ("ado", "connectors.ado:factory"),
                    ("slack", "connectors.slack:factory"), ("teams", "connectors.teams:factory"))

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.delenv("MUSUBI_TEST_CONNECTORS", raising=False)
    jira = registry.factory("jira")({"url": "https://x.atlassian.net", "email": "a@b"}, {"token": "t0ken"})
    gh = registry.factory("github")({"repo": "acme/app"}, {"token": "t0ken"})
    slack = registry.factory("slack")({}, {"token": "xoxb-1"})
    assert asked == ["musubi.connectors"]
    assert isinstance(jira, Tracker) and not isinstance(jira, Pipelines)
    assert isinstance(gh, Tracker) and isinstance(gh, Pipelines)
    assert isinstance(slack, Notifier) and not isinstance(slack, Tracker)
    for name in ("gitlab", "ado"):
        assert registry.factory(name) is not None


def test_a_missing_or_broken_connector_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda *, group: _eps(("jira", "connectors.nothing_here:factory")))
    monkeypatch.delenv("MUSUBI_TEST_CONNECTORS", raising=False)
    with pytest.raises(MusubiError, match="no connector for 'gitlab' is installed"):
        registry.factory("gitlab")
    with pytest.raises(MusubiError, match="cannot be loaded"):
        registry.factory("jira")


def test_the_test_hook_adds_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda *, group: _eps())
    monkeypatch.setenv("MUSUBI_TEST_CONNECTORS", "teams=connectors.teams:factory, junk")
    assert registry.available() == {"teams": "connectors.teams:factory"}


def test_core_never_imports_connectors() -> None:
    core = Path(__file__).resolve().parents[2] / "core"
    offenders = [p for p in core.rglob("*.py")
                 if "import connectors" in p.read_text() or "from connectors" in p.read_text()]
    assert offenders == []


def test_store_keeps_secrets_apart_0600_and_answers_only_names(tmp_path: Path) -> None:
    store = IntegrationStore(lambda t: tmp_path / t)
    answer = store.update("acme", "jira", {"url": "https://x", "email": "a@b"}, {"token": "TOKEN-value-1"}, [])
    assert answer == {"system": "jira", "settings": {"url": "https://x", "email": "a@b"}, "secrets": ["token"]}
    d = tmp_path / "acme" / "integrations"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in ("settings.json", "secrets.json"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
    assert "TOKEN-value-1" not in (d / "settings.json").read_text()
    assert json.loads((d / "secrets.json").read_text()) == {"jira": {"token": "TOKEN-value-1"}}
    assert store.secrets("acme", "jira") == {"token": "TOKEN-value-1"}
    assert store.secret_names("acme") == {"jira": ["token"]}
    after = store.update("acme", "jira", {"email": ""}, {}, ["token"])  # empty value and --unset both remove
    assert after == {"system": "jira", "settings": {"url": "https://x"}, "secrets": []}
    assert store.secrets("other", "jira") == {}  # tenants are apart


def test_store_refuses_and_changes_nothing(tmp_path: Path) -> None:
    store = IntegrationStore(lambda t: tmp_path / t)
    store.update("acme", "jira", {"url": "https://x"}, {}, [])
    before = (tmp_path / "acme" / "integrations" / "settings.json").read_bytes()
    with pytest.raises(BadRequest, match="is a secret"):
        store.update("acme", "jira", {"token": "plain"}, {}, [])
    with pytest.raises(BadRequest, match="has no secret"):
        store.update("acme", "jira", {}, {"password": "x"}, [])
    with pytest.raises(BadRequest, match="unknown system"):
        store.update("acme", "bitbucket", {}, {}, [])
    assert (tmp_path / "acme" / "integrations" / "settings.json").read_bytes() == before
    (tmp_path / "acme" / "integrations" / "settings.json").write_text("{not json")
    with pytest.raises(BadRequest, match="cannot be read"):
        store.settings("acme")
