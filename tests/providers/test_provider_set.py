"""Loading providers by entry point, choosing one per model, listing, the replay provider,
the no-provider message, reload keeping a call in flight, and the latency recorder."""

from __future__ import annotations

import asyncio
import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from core.errors import ProviderNotConfigured
from core.orchestration.contracts import PROVIDER_ENTRY_POINTS, ProviderSettings, TextDelta
from core.orchestration.metrics import LatencyRecorder
from core.orchestration.providers import REPLAY_LABEL, ProviderHub, ProviderSet, load_factories
from tests.fakes.llm_servers import FakeLLMServer, Reply
from tests.providers.helpers import ANTHROPIC_KEY, ENTRY_POINTS, OPENAI_KEY, collect, request

REPLIES = """
[[reply]]
match = "requirements"
text = "1. WHEN a user signs in THE SYSTEM SHALL greet them."
input_tokens = 40
output_tokens = 12

[[reply]]
text = "First recorded answer."
input_tokens = 5
output_tokens = 3

[[reply]]
text = "Second recorded answer."
input_tokens = 6
output_tokens = 3
"""


def fake_entry_points(extra: dict[str, str] | None = None) -> Any:
    table = {**ENTRY_POINTS, **(extra or {})}

    real = importlib.metadata.entry_points

    def entry_points(*, group: str) -> Any:
        if group != PROVIDER_ENTRY_POINTS:  # pydantic looks for its plug-ins too
            return real(group=group)
        return [importlib.metadata.EntryPoint(name, value, group) for name, value in table.items()]

    return entry_points


@pytest.fixture(autouse=True)
def _entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    # The shared venv sees pyproject's entry points only after a reinstall: stand them in.
    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points())


def build(*settings: ProviderSettings) -> ProviderSet:
    from core.models.registry import load_registry

    factories, problems = load_factories()
    return ProviderSet.build(settings, factories, load_problems=problems, registry=load_registry())


def test_entry_points_load_and_a_broken_one_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points({"broken": "connectors.nope:make"}))
    factories, problems = load_factories()
    assert set(factories) == set(ENTRY_POINTS)
    assert "connectors.nope:make failed to load (ModuleNotFoundError" in problems["broken"]
    pset = ProviderSet.build([ProviderSettings("b", "broken"), ProviderSettings("x", "unknown-kind")], factories,
                             load_problems=problems)
    assert [s.problem is not None for s in pset.slots] == [True, True]
    assert "no provider of kind 'unknown-kind' is installed" in str(pset.slots[1].problem)


def test_for_model_maps_registry_models_to_providers_and_their_own_ids() -> None:
    pset = build(
        ProviderSettings("openai", "openai", api_key=OPENAI_KEY),
        ProviderSettings("azure", "azure-openai", base_url="https://res.openai.azure.com", api_key="az-key-999"),
        ProviderSettings("anthropic", "anthropic", api_key=ANTHROPIC_KEY),
        ProviderSettings("ollama", "openai-compatible", base_url="http://127.0.0.1:11434/v1",
                         extra={"serves": ("ollama",)}),
    )
    cases = {"gpt-5.4": ("openai", "gpt-5.4"), "azure/gpt-5.4": ("azure", "gpt-5.4"),
             "opus": ("anthropic", "claude-opus-5-5"), "ollama/llama3.1:8b": ("ollama", "llama3.1:8b")}
    for model, (name, own) in cases.items():
        provider, own_id = pset.for_model(model)
        assert (provider.settings.name, own_id) == (name, own)
    # providers test gets the cheapest chat model each provider serves
    info = {row["name"]: row for row in pset.list()}
    assert info["openai"]["check_model"] and info["anthropic"]["check_model"]


def test_no_provider_says_exactly_what_to_set() -> None:
    pset = build(ProviderSettings("openai", "openai", api_key=OPENAI_KEY))
    with pytest.raises(ProviderNotConfigured) as info:
        pset.for_model("claude-sonnet-4-6")
    msg = info.value.message
    assert "no provider is configured for model claude-sonnet-4-6 (provider anthropic)" in msg
    assert "set ANTHROPIC_API_KEY" in msg and "[providers.anthropic]" in msg and "musubi engine reload" in msg
    assert info.value.exit_code == 1 and info.value.to_dict()["provider"] == "anthropic"
    with pytest.raises(ProviderNotConfigured, match="set AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_API_KEY"):
        pset.for_model("azure/gpt-4.1")
    with pytest.raises(ProviderNotConfigured, match="set OLLAMA_HOST"):
        pset.for_model("ollama/llama3.1:8b")
    hints = {h["provider"] for h in pset.setup_hints()}
    assert "anthropic" in hints and "openai" not in hints


def test_a_broken_provider_is_named_not_skipped_silently() -> None:
    pset = build(ProviderSettings("azure", "azure-openai", api_key="az-key-999"))  # no endpoint
    with pytest.raises(ProviderNotConfigured) as info:
        pset.for_model("azure/gpt-4.1")
    assert info.value.code == "provider_unavailable" and "azure-openai needs base_url" in info.value.message
    assert "az-key-999" not in info.value.message


def test_replay_is_labelled_and_never_chosen_silently(tmp_path: Path) -> None:
    replies = tmp_path / "replies.toml"
    replies.write_text(REPLIES, encoding="utf-8")
    pset = build(ProviderSettings("demo", "replay", extra={"file": str(replies), "serves": ("openai",)}))
    (row,) = pset.list()
    assert row["label"] == REPLAY_LABEL and row["is_replay"] is True
    with pytest.raises(ProviderNotConfigured):
        pset.for_model("gpt-5.4")  # even when it claims to serve the model, a real run never gets it
    provider, own = pset.for_model("gpt-5.4", replay=True)
    assert provider.is_replay and own == "gpt-5.4" and REPLAY_LABEL in repr(provider)
    with pytest.raises(ProviderNotConfigured, match="a replay run needs a replay provider"):
        build().for_model("gpt-5.4", replay=True)


async def test_the_replay_provider_replays_matched_then_in_turn(tmp_path: Path) -> None:
    from connectors.llm.replay import ReplayProvider, load_replies

    replies = tmp_path / "replies.toml"
    replies.write_text(REPLIES, encoding="utf-8")
    provider = ReplayProvider(ProviderSettings("demo", "replay", extra={"file": str(replies)}))
    text, done = await collect(provider, request(text="Write the requirements"))
    assert text.startswith("1. WHEN") and (done.usage.input_tokens, done.usage.output_tokens) == (40, 12)
    assert (await collect(provider, request(text="go")))[0] == "First recorded answer."
    assert (await collect(provider, request(text="go")))[0] == "Second recorded answer."
    assert (await collect(provider, request(text="go")))[0] == "First recorded answer."
    check = await provider.check()
    assert check.ok and REPLAY_LABEL in check.detail and "3 recorded replies" in check.detail
    as_json = tmp_path / "r.json"
    as_json.write_text('{"replies": [{"text": "hi", "input_tokens": 1, "output_tokens": 1}]}', encoding="utf-8")
    assert load_replies(as_json)[0].text == "hi"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[reply]]\ntext = "x"\ninput_tokens = -1\noutput_tokens = 1\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.toml, reply #1: 'input_tokens' must be a whole number >= 0"):
        load_replies(bad)
    with pytest.raises(ValueError, match="holds no replies"):
        empty = tmp_path / "e.toml"
        empty.write_text("", encoding="utf-8")
        load_replies(empty)


async def test_reload_keeps_a_call_in_flight_and_closes_the_old_set_after_it(
    tmp_path: Path, fake_openai: FakeLLMServer
) -> None:
    config = tmp_path / "config.toml"
    fake_openai.push(Reply(text=" ".join(f"w{i}" for i in range(20)), chunk_delay_s=0.02))
    hub = ProviderHub(lambda: config, environ={"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": fake_openai.base_url})
    old = hub.current
    provider, own = old.for_model("gpt-5.4")
    stream = provider.stream(request(own))
    first = await stream.__anext__()  # the call is under way
    assert isinstance(first, TextDelta) and old.in_flight == 1
    config.write_text('[providers.openai]\ntimeout_s = 30\n', encoding="utf-8")
    new = await hub.reload()
    assert hub.current is new and new.generation == 1 and old.retired
    inner = old.slots[0].provider.inner  # type: ignore[union-attr]
    assert inner.http._session is not None and not inner.http._session.closed  # not cut
    rest = [ev async for ev in stream]
    assert len(rest) == 20  # 19 more words and the Finished
    assert old.in_flight == 0 and inner.http._session is None  # closed once the call ended
    # the fake counts a completion on its own thread after its last byte: wait for that, bounded
    await asyncio.to_thread(fake_openai.wait_for, lambda f: f.completed == 1, "the stream's end")
    assert fake_openai.completed == 1 and fake_openai.disconnects == 0
    # a bad config file is refused and changes nothing
    config.write_text('[providers.openai]\ntimeout_s = "soon"\n', encoding="utf-8")
    from core.config import ConfigError
    with pytest.raises(ConfigError):
        await hub.reload()
    assert hub.current is new
    # new variables reach the engine through reload(environ): they replace the old ones
    config.write_text('[providers.openai]\ntimeout_s = 30\n', encoding="utf-8")
    await hub.reload({"ANTHROPIC_API_KEY": ANTHROPIC_KEY})
    assert [s.settings.name for s in hub.current.slots] == ["openai", "anthropic"]  # the file still says openai
    assert hub.current.slots[0].settings.api_key is None  # OPENAI_API_KEY is gone with the old variables
    config.unlink()
    await hub.reload()  # SIGHUP: the file again, the variables of the last reload
    assert [s.settings.name for s in hub.current.slots] == ["anthropic"]
    await hub.aclose()
    await asyncio.sleep(0)


def test_latency_recorder_percentiles_and_window() -> None:
    rec = LatencyRecorder(window=100)
    for ms in range(1, 201):  # only the last 100 (101..200) stay
        rec.record("acme", "openai", "gpt-5.4", float(ms))
    rec.record("acme", "anthropic", "claude-sonnet-4-6", 42.0)
    rec.record("globex", "openai", "gpt-5.4", 9000.0)  # another tenant's calls never mix in
    rows = rec.snapshot("acme")
    assert [r["provider"] for r in rows] == ["anthropic", "openai"]
    openai = rows[1]
    assert openai["count"] == 200 and (openai["p50_ms"], openai["p95_ms"], openai["p99_ms"]) == (150.0, 195.0, 199.0)
    assert rows[0]["p99_ms"] == 42.0 and rec.row("acme", "x", "y") is None
    assert [(r["tenant"], r["p95_ms"]) for r in rec.snapshot("globex")] == [("globex", 9000.0)]
    assert len(rec.snapshot()) == 3
    with pytest.raises(ValueError):
        LatencyRecorder(window=0)
