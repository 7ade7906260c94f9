"""The three plug-in groups of docs/plugins.md, loaded through monkeypatched entry points.

tests/docs/test_doc_commands.py installs the example packages for real and runs the guide;
these tests pin the loaders' edges (a plug-in kind, a broken plug-in, precedence, an unknown
system) and the example classes themselves, without installing anything.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError
from core.errors import BadRequest
from core.integrations import registry
from core.integrations.contracts import IntegrationError, Message
from core.integrations.store import check_system
from core.orchestration import spec
from core.orchestration.contracts import (
    ChatMessage,
    ChatRequest,
    Finished,
    ProviderSettings,
    TextDelta,
)
from core.orchestration.provider_settings import known_kinds, resolve_settings
from core.orchestration.specfile import SpecError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[importlib.metadata.EntryPoint]]:
    """Entry points added here are what ``importlib.metadata.entry_points(group=...)`` returns."""
    added: list[importlib.metadata.EntryPoint] = []
    real = importlib.metadata.entry_points

    def fake(**kw: Any) -> Any:
        group = kw.get("group")
        return [*real(**kw), *(ep for ep in added if ep.group == group)]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    for example in EXAMPLES.iterdir():
        monkeypatch.syspath_prepend(str(example))
    registry.clear()
    yield added
    registry.clear()


def _ep(name: str, value: str, group: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, value, group)


def test_a_plugin_kind_is_accepted_only_once_installed(entry_points: list[importlib.metadata.EntryPoint]) -> None:
    text = '[providers.echo]\nkind = "example-echo"\nmodels = ["gpt-5.4-mini"]\n'
    tables = tomllib.loads(text)["providers"]
    with pytest.raises(ConfigError, match=r"got 'example-echo'.*Set kind to one of openai"):
        resolve_settings(tables, {}, text=text)
    entry_points.append(_ep("example-echo", "musubi_example_provider:echo_provider", "musubi.providers"))
    assert known_kinds()[-1] == "example-echo" and known_kinds()[:1] == ("openai",)
    (settings,) = resolve_settings(tables, {}, text=text)
    assert (settings.name, settings.kind, settings.models) == ("echo", "example-echo", ("gpt-5.4-mini",))


def test_agents_plugin_is_a_layer_between_shipped_and_user(entry_points: list[importlib.metadata.EntryPoint],
                                                           tmp_path: Path) -> None:
    assert "security-reviewer" not in spec.load_catalog().agents
    entry_points.append(_ep("example", "musubi_example_agents", "musubi.agents"))
    cat = spec.load_catalog()
    assert cat.agents["security-reviewer"].role == "Security reviewer"
    assert cat.agent_sources["security-reviewer"].endswith("musubi_example_agents/agents.toml")
    assert cat.workflows["secure-review"].agent_names() == ("code-reviewer", "security-reviewer")
    # The user's file still wins over the plug-in's, by name.
    (tmp_path / "agents.toml").write_text('[agent.security-reviewer]\nrole = "Mine"\ntask = "review"\n'
                                          'prompt = "Review {feature}."\n')
    assert spec.load_catalog(user_dir=tmp_path).agents["security-reviewer"].role == "Mine"


def test_a_broken_agents_plugin_is_refused_naming_it(entry_points: list[importlib.metadata.EntryPoint]) -> None:
    entry_points.append(_ep("ghost", "no_such_package_here", "musubi.agents"))
    with pytest.raises(SpecError, match=r"agents plug-in 'ghost' \(no_such_package_here\) cannot be loaded.*Reinstall"):
        spec.load_catalog()


def test_a_plugin_connector_is_a_system(entry_points: list[importlib.metadata.EntryPoint]) -> None:
    with pytest.raises(BadRequest, match="unknown system 'logbook'; one of jira, ado"):
        check_system("logbook")
    entry_points.append(_ep("logbook", "musubi_example_connector:factory", "musubi.connectors"))
    registry.clear()
    assert check_system("logbook") == "logbook"
    with pytest.raises(BadRequest, match=r"unknown system 'nope'; one of .*teams, logbook"):
        check_system("nope")
    conn = registry.factory("logbook")({"path": "/nonexistent-dir/book.jsonl"}, {})
    with pytest.raises(IntegrationError, match="cannot write in /nonexistent-dir"):
        asyncio.run(conn.test())


def test_the_example_classes(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES / "musubi-example-provider"))
    sys.path.insert(0, str(EXAMPLES / "musubi-example-connector"))
    try:
        from musubi_example_connector import factory  # type: ignore[import-not-found]
        from musubi_example_provider import echo_provider  # type: ignore[import-not-found]
    finally:
        del sys.path[:2]
    provider = echo_provider(ProviderSettings(name="echo", kind="example-echo"))
    request = ChatRequest("m", (ChatMessage("system", "be brief"), ChatMessage("user", "add a cart\nmore")), 100, "k")

    async def collect() -> list[Any]:
        return [e async for e in provider.stream(request)]

    events = asyncio.run(collect())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip() == "echo 1: add a cart"
    assert events[-1] == Finished(events[-1].usage, "end_turn") and events[-1].usage.input_tokens == 6
    with pytest.raises(IntegrationError, match="needs its file"):
        factory({}, {})
    book = factory({"path": str(tmp_path / "book.jsonl")}, {})
    assert asyncio.run(book.test())["writable"] is True
    asyncio.run(book.send(Message("Run done", "r-1 finished", facts=(("tokens", "262"),))))
    assert '"facts": {"tokens": "262"}' in (tmp_path / "book.jsonl").read_text()
