"""Engines started with the test hook MUSUBI_TEST_JOB_KINDS=1 (the ``test.count`` kind, docs/jobs.md#test-hook)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Home


@pytest.fixture(scope="module")
def jeng() -> Iterator[Home]:
    """One engine for a module, with the test job kinds; isolate tests by tenant."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSUBI_TEST_JOB_KINDS", "1")
        h = Home()
        try:
            h.start()
            yield h
        finally:
            h.cleanup()


@pytest.fixture
def jhome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A private home (no engine yet) whose engines get the test job kinds."""
    monkeypatch.setenv("MUSUBI_TEST_JOB_KINDS", "1")
    h = Home()
    try:
        yield h
    finally:
        h.cleanup()
