"""Fixtures: one engine per test module (tests use separate tenants), or a private one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Home, home_fixture


@pytest.fixture(scope="module")
def eng() -> Iterator[Home]:
    """An engine shared by the tests of one module; isolate tests by tenant."""
    with home_fixture(start=True) as h:
        yield h


@pytest.fixture
def home() -> Iterator[Home]:
    """A private home with no engine running yet (for restarts, kills and tampering)."""
    with home_fixture() as h:
        yield h
