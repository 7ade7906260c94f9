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
