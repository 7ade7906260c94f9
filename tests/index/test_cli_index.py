"""``musubi index`` and ``musubi search`` through the real CLI: happy and unhappy paths, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Cli

from .helpers import cli_with_project

CODE = {
    "src/app/config.py": "def load_config(path):\n    return open(path).read()\n",
    "src/app/retry.py": "def retry_with_backoff(fn, tries):\n    for _ in range(tries):\n        fn()\n",
    "README.md": "# Shop\n\nThe shop.\n",
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Path]]:
    with cli_with_project(tmp_path_factory.mktemp("cli"), CODE, "shop") as world:
        yield world


def test_search_before_indexing_says_how_to_index(cli: tuple[Cli, Path]) -> None:
    c, repo = cli
    r = c.fails(1, "search", "config", cwd=str(repo))
    assert "not indexed yet" in r.err and "musubi index" in r.err


def test_index_then_search(cli: tuple[Cli, Path]) -> None:
    c, repo = cli
    done = c.js("index", cwd=str(repo / "src"))  # from a subfolder: the project holding it
    assert done["state"] == "done" and done["result"]["files"] == 3
    again = c.js("index", str(repo))
    assert again["result"]["changed"] == 0 and again["result"]["embedded"] == 0
    d = c.js("search", "load_config path", "--k", "2", cwd=str(repo))
    assert len(d["results"]) <= 2 and d["complete"] is True
    top = d["results"][0]
    assert (top["path"], top["start_line"], top["end_line"]) == ("src/app/config.py", 1, 2)
    human = c.ok("search", "retry backoff", "--lang", "python", cwd=str(repo)).out
    assert "src/app/retry.py:1-3" in human and "retry_with_backoff" in human
    only_md = c.js("search", "shop", "--path", "*.md", cwd=str(repo))
    assert {x["path"] for x in only_md["results"]} == {"README.md"}


def test_queries_file_prints_json_lines(cli: tuple[Cli, Path], tmp_path: Path) -> None:
    c, repo = cli
    c.ok("index", cwd=str(repo))
    qf = tmp_path / "q.txt"
    qf.write_text("load_config path\n\nretry_with_backoff\n", encoding="utf-8")
    out = c.ok("search", "--queries", str(qf), "--k", "1", cwd=str(repo)).out.splitlines()
    rows = [json.loads(x) for x in out]
    assert [r["query"] for r in rows] == ["load_config path", "retry_with_backoff"]
    assert rows[0]["results"][0]["path"] == "src/app/config.py" and len(rows[1]["results"]) == 1


def test_detach_returns_the_job_at_once(cli: tuple[Cli, Path]) -> None:
    c, repo = cli
    j = c.js("index", "--detach", cwd=str(repo))
    assert j["kind"] == "index" and j["id"].startswith("j-")
    c.ok("jobs", "show", j["id"], "--follow")


@pytest.mark.parametrize(("args", "rc", "says"), [
    (("search", ""), 2, "empty"),
    (("search", "x", "--k", "0"), 2, "k"),
    (("search", "x", "--k", "500"), 2, "100"),
    (("search", "x", "--path", "/abs/*"), 2, "relative"),
    (("search", "x", "--path", "src/[a"), 2, "unclosed"),
    (("search",), 2, "QUERY"),
    (("search", "--queries", "/nonexistent/q.txt"), 2, "cannot read"),
    (("search", "x", "--queries", "/nonexistent/q.txt"), 2, "not both"),
    (("index", "relative/not/a/dir"), 2, "does not exist"),
])
def test_bad_input_is_a_message_and_an_exit_code(cli: tuple[Cli, Path], args: tuple[str, ...], rc: int,
                                                  says: str) -> None:
    c, repo = cli
    c.ok("index", cwd=str(repo))
    r = c.fails(rc, *args, cwd=str(repo))
    assert says in r.err


def test_no_project(cli: tuple[Cli, Path], tmp_path: Path) -> None:
    c, _repo = cli
    r = c.fails(1, "search", "config", cwd=str(tmp_path))
    assert "musubi project add" in r.err
    r = c.fails(1, "index", str(tmp_path))
    assert "musubi project add" in r.err
    r = c.fails(1, "search", "config", "--json", cwd=str(tmp_path))
    assert json.loads(r.out)["error"]["code"] == "not_found"
