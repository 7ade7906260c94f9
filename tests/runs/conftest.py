"""Engines started with the runs test hook MUSUBI_TEST_RUNS=1 (scripted provider, test workflows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Home
from tests.runs.helpers import WORKFLOWS, write_json


@pytest.fixture
def rhome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A private home with the test workflows and a fast scripted provider, engine started."""
    monkeypatch.setenv("MUSUBI_TEST_RUNS", "1")
    h = Home()
    write_json(h, "test-workflows.json", WORKFLOWS)
    write_json(h, "test-provider.json", {"delay_s": 0.0})
    try:
        h.start()
        yield h
    finally:
        h.cleanup()
