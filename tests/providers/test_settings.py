"""Provider settings: the conventional variables, [providers.NAME] tables, precedence, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError
from core.orchestration.provider_settings import (
    ollama_base,
    resolve_settings,
    serves,
    settings_from_env,
)
from core.orchestration.providers import read_provider_config

ENV = {
    "OPENAI_API_KEY": "sk-env-openai-111", "OPENAI_BASE_URL": "https://proxy.example/v1",
    "ANTHROPIC_API_KEY": "sk-ant-env-222", "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
    "AZURE_OPENAI_API_KEY": "az-key-333", "OPENAI_API_VERSION": "2024-10-21", "OLLAMA_HOST": "gpu-box",
}


def test_variables_make_one_provider_each() -> None:
    by = {s.name: s for s in settings_from_env(ENV)}
    assert set(by) == {"openai", "anthropic", "azure", "ollama"}
    assert by["openai"].kind == "openai" and by["openai"].base_url == "https://proxy.example/v1"
    assert by["openai"].api_key == "sk-env-openai-111" and by["openai"].source == "env:OPENAI_API_KEY"
    assert by["azure"].kind == "azure-openai" and by["azure"].api_version == "2024-10-21"
    assert by["ollama"].kind == "openai-compatible" and by["ollama"].base_url == "http://gpu-box:11434/v1"
    assert serves(by["ollama"]) == ("ollama",) and serves(by["azure"]) == ("azure",)
    assert settings_from_env({}) == [] and settings_from_env({"OPENAI_API_KEY": ""}) == []  # empty = unset
    assert "sk-env-openai-111" not in repr(by["openai"])


@pytest.mark.parametrize(("host", "base"), [
    ("127.0.0.1", "http://127.0.0.1:11434/v1"), ("0.0.0.0:8080", "http://127.0.0.1:8080/v1"),
    ("http://box", "http://box/v1"), ("https://ollama.example:443", "https://ollama.example:443/v1"),
    ("box:11435/", "http://box:11435/v1"),
])
def test_ollama_host_follows_ollamas_rules(host: str, base: str) -> None:
    assert ollama_base(host) == base


def test_config_wins_key_by_key_and_fills_from_variables() -> None:
    tables = {"openai": {"base_url": "https://gateway.example/v1", "timeout_s": 30},
              "anthropic": {"enabled": False},
              "local": {"kind": "openai-compatible", "base_url": "http://127.0.0.1:1234/v1",
                        "models": ["ollama/llama3.1:8b"]}}
    got = resolve_settings(tables, ENV, source="/cfg/config.toml")
    by = {s.name: s for s in got}
    assert [s.name for s in got] == ["openai", "local", "azure", "ollama"]  # file order first; anthropic off
    assert by["openai"].base_url == "https://gateway.example/v1"  # the file wins
    assert by["openai"].api_key == "sk-env-openai-111"  # the variable fills what the file left out
    assert by["openai"].source == "config:/cfg/config.toml + env:OPENAI_API_KEY"
    assert by["openai"].extra["timeout_s"] == 30.0
    assert by["local"].models == ("ollama/llama3.1:8b",)
    # a table that changes the kind takes nothing from the variables
    other = {s.name: s for s in resolve_settings({"openai": {"kind": "openai-compatible",
                                                             "base_url": "http://h:1/v1"}}, ENV)}
    assert other["openai"].api_key is None


@pytest.mark.parametrize(("table", "needle"), [
    ({"kind": "gemini"}, "kind: must name the provider kind (got 'gemini')"),
    ({"base_url": "ftp://x"}, "base_url: must be an http:// or https:// URL"),
    ({"timeout_s": 0}, "timeout_s: must be a number from 1 to 3600"),
    ({"max_attempts": 11}, "max_attempts: must be a whole number from 1 to 10"),
    ({"pool_size": 0}, "pool_size: must be a whole number from 1 to 1000"),
    ({"pool_size": 2.5}, "pool_size: must be a whole number from 1 to 1000"),
    ({"api_key": 5}, "api_key: must be non-empty text"),
    ({"serves": ["opneai"]}, "serves: unknown opneai"),
    ({"modles": ["x"]}, "modles: unknown setting"),
    ({"enabled": "no"}, "enabled: must be true or false"),
    ({"auth": "entra"}, "auth: must be \"key\" or, for kind azure-openai, \"entra\""),
])
def test_a_bad_value_names_file_key_line_and_fix(table: dict[str, object], needle: str) -> None:
    text = "theme = 'nord'\n\n[providers.openai]\n" + "".join(f"{k} = 1\n" for k in table)
    with pytest.raises(ConfigError) as info:
        resolve_settings({"openai": table}, {}, source="/home/u/.config/musubi/config.toml", text=text)
    msg = info.value.message
    assert msg.startswith("config file /home/u/.config/musubi/config.toml: [providers.openai] ")
    assert needle.replace(": ", ", line 4: ", 1) in msg and "docs/providers.md" in msg
    assert info.value.exit_code == 2


def test_a_custom_name_needs_a_kind_and_replay_needs_a_file() -> None:
    with pytest.raises(ConfigError, match=r"\[providers.work\] kind: must name the provider kind \(missing\)"):
        resolve_settings({"work": {"base_url": "https://x"}}, {})
    with pytest.raises(ConfigError, match="replay provider needs its file"):
        resolve_settings({"demo": {"kind": "replay"}}, {})
    with pytest.raises(ConfigError, match="provider name is lower-case"):
        resolve_settings({"Work Azure": {"kind": "openai"}}, {})


def test_read_provider_config_validates_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[providers.openai]\nbase_url = "https://gw.example/v1"\n', encoding="utf-8")
    settings, registry = read_provider_config(path, {"OPENAI_API_KEY": "sk-x-1234"})
    assert settings[0].base_url == "https://gw.example/v1" and settings[0].api_key == "sk-x-1234"
    assert "gpt-5.4" in registry
    path.write_text('[providers]\nopenai = "sk-oops"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="providers.openai"):
        read_provider_config(path, {})
    missing = tmp_path / "none.toml"
    assert read_provider_config(missing, {"ANTHROPIC_API_KEY": "k-1234"})[0][0].name == "anthropic"
