"""The model registry: shipped data, lookups, config overrides and bad config."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import NotFound
from core.models.registry import PROVIDERS, TASK_KINDS, ConfigError, load_registry, read_config


@pytest.fixture(scope="module")
def reg():  # type: ignore[no-untyped-def]
    return load_registry()


def test_at_least_15_models_across_every_provider_kind(reg) -> None:  # type: ignore[no-untyped-def]
    assert len(reg.models) >= 15
    providers = {m.provider for m in reg.all()}
    assert {"openai", "azure", "anthropic", "google", "mistral", "ollama"} <= providers
    assert providers <= set(PROVIDERS)


def test_every_model_names_its_source_and_date(reg) -> None:  # type: ignore[no-untyped-def]
    for m in reg.all():
        assert m.source.strip() and m.prices_checked.year >= 2026
        assert m.max_output <= m.context_window
        if m.is_local:
            assert m.input_per_mtok == m.output_per_mtok == m.cached_input_per_mtok == 0
        else:
            assert m.input_per_mtok > 0 and m.output_per_mtok > 0
            assert m.cached_input_per_mtok <= m.input_per_mtok


def test_prices_are_exact_decimals(reg) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    assert reg.get("gpt-5.4-mini").cached_input_per_mtok == Decimal("0.075")
    assert reg.get("gemini-2.5-pro").cached_input_per_mtok == Decimal("0.125")


def test_lookup_by_alias_is_case_insensitive(reg) -> None:  # type: ignore[no-untyped-def]
    assert reg.get("Sonnet").id == "claude-sonnet-5-5"
    assert reg.get("OPENAI/GPT-5.4").id == "gpt-5.4"
    assert "mistral-medium-latest" in reg


def test_unknown_model_lists_close_matches_and_never_defaults(reg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound) as ei:
        reg.get("gpt-5.44")
    err = ei.value
    assert err.code == "unknown_model"
    assert "gpt-5.4" in err.extra["suggestions"]
    assert "Did you mean" in err.message and "musubi models list" in err.message
    with pytest.raises(NotFound) as ei2:
        reg.get("totally-unknown-thing-xyz")
    assert ei2.value.extra["suggestions"] == []


def test_routing_and_output_defaults_cover_every_task_kind(reg) -> None:  # type: ignore[no-untyped-def]
    assert set(reg.routing.tasks) == set(TASK_KINDS)
    for t in TASK_KINDS:
        d = reg.output_default(t)
        assert d.ratio <= d.p90_ratio and d.floor < d.cap
    assert reg.routing.tasks["implementation"] in ("advanced", "frontier")


def test_config_overrides_fields_of_a_shipped_model() -> None:
    reg = load_registry({"models": [{"id": "azure/gpt-5.4", "deployment": "prod-54", "context_window": 400000}]})
    m = reg.get("azure/gpt-5.4")
    assert (m.deployment, m.context_window, m.origin) == ("prod-54", 400000, "config")
    assert str(m.input_per_mtok) == "2.5"


def test_config_adds_a_model_and_routing_rules() -> None:
    new = {
        "id": "ollama/qwen3-coder", "provider": "ollama", "aliases": ["qc"], "context_window": 65536,
        "max_output": 8192, "input_per_mtok": 0, "output_per_mtok": 0, "cached_input_per_mtok": 0,
        "tokenizer": "local", "tier": "standard", "prices_checked": "2026-11-01", "source": "local",
    }
    reg = load_registry({"models": [new], "routing": {"tasks": {"review": "frontier"}, "exclude_providers": []}})
    assert reg.get("qc").id == "ollama/qwen3-coder"
    assert reg.routing.tasks["review"] == "frontier"
    assert reg.routing.tasks["classify"] == "basic"  # untouched rules stay
    assert reg.routing.exclude_providers == ()


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ({"id": "x-new", "provider": "openai"}, "context_window"),
        ({"id": "gpt-5.4", "input_per_mtok": -1}, "input_per_mtok"),
        ({"id": "gpt-5.4", "tier": "genius"}, "tier"),
        ({"id": "gpt-5.4", "max_output": 10**9}, "max_output"),
        ({"id": "gpt-5.4", "colour": "blue"}, "colour"),
        ({"id": "gpt-5.4", "aliases": ["sonnet"]}, "already used"),
        ({"provider": "openai"}, "needs an id"),
    ],
)
def test_bad_model_config_names_the_problem(entry: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_registry({"models": [entry]}, "/home/u/.config/musubi/config.toml")
    assert needle in ei.value.message
    assert ei.value.exit_code == 2


def test_bad_routing_config() -> None:
    with pytest.raises(ConfigError, match="unknown task kind"):
        load_registry({"routing": {"tasks": {"dance": "basic"}}})
    with pytest.raises(ConfigError, match="routing"):
        load_registry({"routing": {"tasks": {"review": "godlike"}}})
    with pytest.raises(NotFound):
        load_registry({"routing": {"exclude_models": ["gpt-9000"]}})


def test_read_config(tmp_path: Path) -> None:
    assert read_config(tmp_path / "missing.toml") == {}
    p = tmp_path / "config.toml"
    p.write_text("[[models]]\nid = 'gpt-5.4'\ndeployment = 'd'\n")
    assert read_config(p)["models"][0]["deployment"] == "d"
    p.write_text("[[models]\nbroken")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config(p)
