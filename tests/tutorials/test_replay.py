"""Every tutorial, replayed from its solutions against a real engine in a temporary home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import Cli, cli_fixture
from tests.tutorials.replay import replay
from tutorials.loader import load_all

ENV = {"MUSUBI_TEST_FAKE_EMBEDDER": "32"}  # the code-search tutorial indexes: no torch model in tests


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    with cli_fixture(env=ENV) as c:
        yield c


@pytest.mark.parametrize("tutorial", list(load_all()))
def test_tutorial_replays_to_done(cli: Cli, tutorial: str) -> None:
    final = replay(cli, tutorial)
    p = final["progress"]
    assert p["state"] == "done" and p["current"] is None, p
    assert len(p["done"]) == p["total"] and not p["skipped"]
    assert p["sandbox"] is None  # cleaned on completion
    started = [t for t in cli.js("tenant", "list") if t["name"].startswith("tut-") and tutorial in t["name"]]
    assert started and all(t["status"] == "suspended" and t["projects"] == 0 for t in started), started
    assert not list((Path(cli.home) / "sandboxes").glob(f"*{tutorial}*/*")), "the sandbox folder is left"
