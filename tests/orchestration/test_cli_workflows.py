"""``musubi workflows`` and ``musubi agents``: shipped, user and project definitions; bad files without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui import cli as climod


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    user, proj = tmp_path / "cfg", tmp_path / "repo"
    user.mkdir()
    (proj / ".git").mkdir(parents=True)
    monkeypatch.setenv("MUSUBI_CONFIG_DIR", str(user))
    monkeypatch.chdir(proj)
    return user, proj


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = climod.run(list(argv))
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_list_and_show_shipped(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "workflows", "list", "--json")
    assert rc == 0
    names = [w["name"] for w in json.loads(out)["workflows"]]
    assert {"spec", "implement", "full", "review", "summarise"} <= set(names)
    rc, out, _ = _run(capsys, "workflows", "show", "implement")
    assert rc == 0 and "change: approval" in out and "implementation: agent [software-developer]" in out
    assert "an estimate counts these calls" in out and "change/implementation: software-developer" in out
    rc, out, _ = _run(capsys, "agents", "show", "requirements-analyst", "--json")
    assert rc == 0 and json.loads(out)["task"] == "requirements" and "EARS" in json.loads(out)["prompt"]
    rc, out, _ = _run(capsys, "agents", "list")
    assert rc == 0 and "code-reviewer" in out and "16,000 tokens" in out


def test_project_file_is_found_from_the_repository(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _user, proj = dirs
    (proj / ".musubi").mkdir()
    (proj / ".musubi" / "workflows.toml").write_text('[workflow.mine]\ndescription = "ours"\n'
                                                     'steps = [ { agent = "code-reviewer" } ]\n')
    (proj / "src").mkdir()
    import os

    os.chdir(proj / "src")
    rc, out, _ = _run(capsys, "workflows", "show", "mine", "--json")
    assert rc == 0 and json.loads(out)["source"] == str(proj / ".musubi" / "workflows.toml")


def test_bad_user_file_is_a_clear_usage_error(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    user, _ = dirs
    (user / "agents.toml").write_text('[agent.x]\nrole = "r"\ntask = "review"\nprompt = "p"\ncolour = "red"\n')
    rc, out, err = _run(capsys, "agents", "list")
    assert rc == 2 and "Traceback" not in out + err
    assert f"agents file {user / 'agents.toml'} is invalid" in err and "agent.x.colour (line 5): unknown key" in err
    rc, out, _ = _run(capsys, "--json", "workflows", "list")
    assert rc == 2 and json.loads(out)["error"]["code"] == "bad_workflow_file"


def test_unknown_names_and_bad_root(dirs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(capsys, "workflows", "show", "nope")
    assert rc == 1 and "known workflows are" in err
    rc, _, err = _run(capsys, "agents", "show", "nope")
    assert rc == 1 and "known agents are" in err
    rc, _, err = _run(capsys, "workflows", "list", "--root", "/no/such/dir")
    assert rc == 2 and "is not a directory" in err
