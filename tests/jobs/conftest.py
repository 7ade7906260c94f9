"""Engines started with the test hook MUSUBI_TEST_JOB_KINDS=1 (the ``test.count`` kind, docs/jobs.md#test-hook)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Home, home_fixture

from .helpers import JOB_KINDS


@pytest.fixture(scope="module")
def jeng() -> Iterator[Home]:
    """One engine for a module, with the test job kinds; isolate tests by tenant."""
    with home_fixture(start=True, env=JOB_KINDS) as h:
        yield h


@pytest.fixture
def jhome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A private home (no engine yet) whose engines get the test job kinds."""
    with home_fixture(env=JOB_KINDS, monkeypatch=monkeypatch) as h:
        yield h
