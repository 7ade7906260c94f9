"""Engines whose search worker runs the FakeEmbedder (MUSUBI_TEST_FAKE_EMBEDDER, docs/search.md#indexing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.helpers import Home

from .helpers import FAKE_DIM


@pytest.fixture
def fhome(monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A private home (no engine yet) whose engines embed with the fake embedder."""
    monkeypatch.setenv("MUSUBI_TEST_FAKE_EMBEDDER", FAKE_DIM)
    h = Home()
    try:
        yield h
    finally:
        h.cleanup()
