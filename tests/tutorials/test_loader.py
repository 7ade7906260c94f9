"""Malformed tutorial files are refused naming the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from tutorials.loader import CONTENT_DIR, TutorialFileError, line_of, load_all, load_file, parse

GOOD = '''id = "demo"
title = "Demo"
version = 1
summary = "A demo."

[[steps]]
id = "one"
kind = "key"
title = "Press F1"
key = "f1"
body = """
Press F1.
"""
solution = { keys = ["f1"] }

[[steps]]
id = "two"
kind = "state"
title = "Make a role"
body = "Make one."
check = { route = "/v1/roles", path = "$[*].name", op = "contains", value = "reviewer" }
solution = { argv = [["role", "create", "reviewer"]] }
'''


def refused(text: str, name: str = "demo.toml") -> str:
    with pytest.raises(TutorialFileError) as ei:
        parse(text, name)
    assert ei.value.exit_code == 2 and ei.value.code == "bad_tutorial"
    return ei.value.message


def test_the_good_file_loads() -> None:
    t = parse(GOOD, "demo.toml")
    assert [s.id for s in t.steps] == ["one", "two"]
    assert t.steps[1].kind == "state"


def test_toml_syntax_error_names_file_and_line() -> None:
    msg = refused(GOOD.replace('key = "f1"', 'key = '))
    assert msg.startswith("demo.toml:10: not valid TOML"), msg


def test_unknown_key_in_second_step_names_its_line() -> None:
    bad = GOOD.replace('body = "Make one."', 'body = "Make one."\nchekc = 1')
    msg = refused(bad)
    assert "demo.toml:21: steps[1].chekc: unknown key" in msg, msg


def test_bad_operator_in_inline_table_points_at_the_check_line() -> None:
    msg = refused(GOOD.replace('op = "contains"', 'op = "eval"'))
    assert "demo.toml:21: steps[1].check.op:" in msg and "contains" in msg, msg


def test_unknown_step_kind() -> None:
    msg = refused(GOOD.replace('kind = "key"', 'kind = "dance"'))
    assert "demo.toml:6: steps[0]: unknown step kind 'dance'" in msg, msg


def test_missing_solution_points_at_the_step() -> None:
    msg = refused(GOOD.replace('solution = { keys = ["f1"] }\n', ""))
    assert "demo.toml:6: steps[0].solution: Field required" in msg, msg


def test_duplicate_step_ids() -> None:
    msg = refused(GOOD.replace('id = "two"', 'id = "one"'))
    assert "used twice" in msg and "demo.toml:" in msg, msg


def test_id_must_match_the_file_name() -> None:
    msg = refused(GOOD, "other.toml")
    assert msg.startswith("other.toml:1: id 'demo' must be the file's name"), msg


def test_bad_json_path_and_value_rules() -> None:
    msg = refused(GOOD.replace('path = "$[*].name"', 'path = "roles.name"'))
    assert "demo.toml:21: steps[1].check.path: must be a JSON path" in msg, msg
    msg = refused(GOOD.replace('op = "contains", value = "reviewer"', 'op = "len_ge", value = -1'))
    assert "len_ge needs a whole number" in msg, msg
    msg = refused(GOOD.replace('op = "contains", value = "reviewer"', 'op = "exists", value = 1'))
    assert "takes no value" in msg, msg


def test_top_level_error_line() -> None:
    msg = refused(GOOD.replace("version = 1", "version = 0"))
    assert "demo.toml:3: version:" in msg, msg


def test_body_text_that_looks_like_a_key_is_not_a_line_hit() -> None:
    # 'key = ' inside a multi-line body must not be taken for the step's key line
    text = GOOD.replace("Press F1.\n", "key = nonsense\n").replace('key = "f1"', 'key = ""')
    assert line_of(text, ("steps", 0, "key", "key")) == 10


def test_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "demo.toml"
    p.write_bytes(b"\xff\xfe not utf8")
    with pytest.raises(TutorialFileError, match="not UTF-8"):
        load_file(p)
    with pytest.raises(TutorialFileError, match="cannot be read"):
        load_file(tmp_path / "missing.toml")


def test_a_later_folder_replaces_a_shipped_tutorial(tmp_path: Path) -> None:
    (tmp_path / "demo.toml").write_text(GOOD)
    shipped = load_all()
    both = load_all([CONTENT_DIR, tmp_path])
    assert "demo" in both and set(shipped) <= set(both)


def test_shipped_tutorials_are_the_six() -> None:
    assert list(load_all()) == ["first-steps", "ears", "design-tasks", "code-search", "workflow", "team"]


def test_fingerprint_changes_with_what_a_step_asks_not_with_its_prose() -> None:
    base = parse(GOOD, "demo.toml").steps[1].fingerprint()
    prose = GOOD.replace('title = "Make a role"', 'title = "Make the role"').replace("Make one.", "Make it.")
    assert parse(prose, "demo.toml").steps[1].fingerprint() == base
    asks = GOOD.replace('value = "reviewer"', 'value = "auditor"')
    assert parse(asks, "demo.toml").steps[1].fingerprint() != base
    bumped = GOOD.replace('body = "Make one."', 'body = "Make one."\nversion = 2')
    assert parse(bumped, "demo.toml").steps[1].fingerprint() != base
