"""config.toml loading and colour detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BadRequest
from tui.app import run
from tui.config import ConfigError, Settings, detect_color_system, load_settings


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "none.toml") == Settings()


def test_valid_file_is_read(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text('theme = "nord"\ncolor_system = "256"\nanimations = false\n[keymap]\nquit = "ctrl+q"\n[engine]\nretry_max_s = 30\n')
    s = load_settings(p)
    assert (s.theme, s.color_system, s.animations, s.keymap, s.engine.retry_max_s) == ("nord", "256", False, {"quit": "ctrl+q"}, 30.0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("color_system = 'purple'", "color_system"),
        ("[keymap]\nquit = 5", "keymap.quit"),
        ("colour_system = '256'", "colour_system: unknown setting"),
        ("[engine]\nretry_max = 3", "engine.retry_max: unknown setting"),
        ("animations = 'sometimes'", "animations"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "config.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_settings(p)
    assert needle in exc.value.message and str(p) in exc.value.message
    assert "docs/tui.md" in exc.value.message


def test_broken_toml_names_line_and_file(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("[keymap\nquit = 'q'\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        load_settings(p)


def test_run_with_bad_config_prints_a_message_and_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.toml").write_text("color_system = 'purple'\n")
    assert run(home=str(tmp_path / "h")) == 2
    err = capsys.readouterr().err
    assert err.startswith("musubi: config file") and "Traceback" not in err


@pytest.mark.parametrize(
    ("env", "flag", "configured", "system"),
    [
        ({"COLORTERM": "truecolor", "TERM": "xterm-256color"}, None, "auto", "truecolor"),
        ({"TERM": "xterm-256color"}, None, "auto", "256"),  # SSH: COLORTERM dropped
        ({"TERM": "screen-256color", "TMUX": "/tmp/x"}, None, "auto", "256"),
        ({"TERM": "xterm-kitty"}, None, "auto", "truecolor"),
        ({"TERM": "xterm-direct"}, None, "auto", "truecolor"),
        ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, None, "auto", "truecolor"),
        ({"TERM": "xterm"}, None, "auto", "16"),
        ({"TERM": "linux"}, None, "auto", "16"),
        ({"TERM": "dumb"}, None, "auto", "none"),
        ({"TERM": "xterm-256color", "NO_COLOR": "1"}, None, "auto", "none"),
        ({"TERM": "xterm-256color", "NO_COLOR": "1"}, "16", "auto", "16"),  # the flag overrides NO_COLOR
        ({"TERM": "xterm-256color", "NO_COLOR": "1"}, None, "truecolor", "truecolor"),  # so does config
        ({"COLORTERM": "truecolor"}, "256", "truecolor", "256"),  # flag beats config
        ({"TERM": "xterm-256color", "NO_COLOR": ""}, None, "auto", "256"),  # empty NO_COLOR is unset
    ],
)
def test_colour_detection(env: dict[str, str], flag: str | None, configured: str, system: str) -> None:
    d = detect_color_system(env, flag, configured)
    assert d.system == system and d.reason


def test_bad_colour_flag_is_a_usage_error() -> None:
    with pytest.raises(BadRequest, match="--color-system 'sepia'"):
        detect_color_system({}, "sepia")


# -- one file, one loader: what the TUI accepts the engine accepts, and the other way round ------

MODELS_ENTRY = '[[models]]\nid = "azure/gpt-5.4"\ndeployment = "prod-gpt54"\ncontext_window = 400000\n'


def test_models_section_from_docs_is_accepted_by_the_tui(tmp_path: Path) -> None:
    # Issue 10's reproduction: the TUI refused this with "models: unknown setting".
    p = tmp_path / "config.toml"
    p.write_text('theme = "nord"\n' + MODELS_ENTRY + '[routing]\nfallbacks = 2\n')
    s = load_settings(p)
    assert s.theme == "nord" and s.models[0]["deployment"] == "prod-gpt54" and s.routing == {"fallbacks": 2}


def test_run_starts_with_a_models_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tui.app

    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path))
    (tmp_path / "config.toml").write_text(MODELS_ENTRY)
    monkeypatch.setattr(tui.app, "run_app", lambda app: 0)
    assert run(home=str(tmp_path / "h")) == 0


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        # a [[models]] entry the registry refuses: the entry, its line, the field, the docs
        ('theme = "nord"\n\n[[models]]\nid = "x/new"\nprovider = "ollama"\n', ["[[models]] #1 (line 3)", "context_window", "docs/models.md"]),
        ('[[models]]\nid = "gpt-5.4"\n\n[[models]]\nid = "gpt-5.4-mini"\ntier = "huge"\n', ["#2 (line 4)", "tier"]),
        ("[routing]\ntasks = { nap = 'basic' }\n", ["[routing]", "unknown task kind"]),
        ("[routing]\nfalbacks = 2\n", ["[routing]", "falbacks"]),
        ("models = 3\n", ["models", "line 1"]),
        ('[[models]]\ndeployment = "x"\n', ["needs an id"]),
        ("providers = 'openai'\n", ["providers"]),
        ("[search]\nk = 1\n[providers]\nopenai = 5\n", ["providers.openai", "line 4"]),
        ("[engine]\n\npoll_s = 'often'\n", ["engine.poll_s", "line 3"]),
    ],
)
def test_tui_and_engine_refuse_the_same_files_with_the_same_message(tmp_path: Path, text: str, needles: list[str]) -> None:
    from core.models.registry import ConfigError as RegistryConfigError
    from core.models.registry import read_config

    p = tmp_path / "config.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as tui_err:
        load_settings(p)
    with pytest.raises(RegistryConfigError) as engine_err:
        read_config(p)
    assert tui_err.value.message == engine_err.value.message
    assert tui_err.value.exit_code == 2 and str(p) in tui_err.value.message
    for needle in needles:
        assert needle in tui_err.value.message


def test_reserved_sections_are_accepted(tmp_path: Path) -> None:
    p = tmp_path / "config.toml"
    p.write_text("[providers.openai]\nbase_url = 'https://x'\n[connectors.jira]\nsite = 'y'\n[search]\nidle_s = 60\n")
    s = load_settings(p)
    assert s.providers == {"openai": {"base_url": "https://x"}} and s.search.idle_s == 60


def test_the_search_section_is_typed(tmp_path: Path) -> None:
    """[search] is no longer a free table: a misspelt key is refused with its line."""
    p = tmp_path / "config.toml"
    p.write_text("[search]\nidle_seconds = 60\n")
    with pytest.raises(ConfigError) as err:
        load_settings(p)
    assert "search.idle_seconds" in err.value.message and "line 2" in err.value.message


def test_a_tui_typo_is_also_refused_by_the_engine(tmp_path: Path) -> None:
    from core.models.registry import read_config

    p = tmp_path / "config.toml"
    p.write_text("colour_system = '256'\n" + MODELS_ENTRY)
    with pytest.raises(ConfigError, match="colour_system: unknown setting"):
        read_config(p)


def test_config_path_that_is_a_folder_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings(tmp_path / "config.toml")


def test_missing_file_imports_neither_pydantic_nor_tomllib(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from tui.config import load_settings; from pathlib import Path; "
        f"load_settings(Path({str(tmp_path / 'none.toml')!r})); "
        "print(sorted(m for m in ('pydantic', 'tomllib', 'core.models.registry') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_environment_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from core.config import config_dir, env, env_home, env_tenant

    monkeypatch.setenv("MUSUBI_TENANT", "acme")
    monkeypatch.setenv("MUSUBI_HOME", "/tmp/envhome")
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(tmp_path))
    assert (env_tenant(None), env_tenant("flag")) == ("acme", "flag")
    assert (env_home(None), env_home("/flag")) == ("/tmp/envhome", "/flag")
    assert config_dir() == tmp_path
    monkeypatch.setenv("MUSUBI_TENANT", "")  # empty counts as unset
    assert env_tenant(None) is None
    with pytest.raises(KeyError):
        env("MUSUBI_TENNANT")  # a variable nobody documented cannot be read by mistake


def test_an_unknown_section_lists_the_known_ones(tmp_path: Path) -> None:
    from dataclasses import fields

    from core.config import _TOP_LEVEL

    p = tmp_path / "config.toml"
    p.write_text('[model]\nid = "gpt-5.4"\n')
    with pytest.raises(ConfigError, match=r"model: unknown setting .*\[\[models\]\].*line 1"):
        load_settings(p)
    # The hint stays true when a section is added.
    assert {f.name for f in fields(Settings)} == {n.strip("[]") for n in _TOP_LEVEL}
