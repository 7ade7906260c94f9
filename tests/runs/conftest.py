"""Engines started with the runs test hook MUSUBI_TEST_RUNS=1 (scripted provider, test workflows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Home
from tests.runs.helpers import runs_home


@pytest.fixture
def rhome() -> Iterator[Home]:
    """A private home with the test workflows and a fast scripted provider, engine started."""
    with runs_home() as h:
        yield h
