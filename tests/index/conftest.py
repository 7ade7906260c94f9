"""Engines whose search worker runs the FakeEmbedder (MUSUBI_TEST_FAKE_EMBEDDER, docs/search.md#indexing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Home, home_fixture

from .helpers import FAKE_EMBEDDER


@pytest.fixture
def fhome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A private home (no engine yet) whose engines embed with the fake embedder."""
    with home_fixture(env=FAKE_EMBEDDER, monkeypatch=monkeypatch) as h:
        yield h
