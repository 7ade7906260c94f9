"""Fixtures: one engine per test module (tests use separate tenants), or a private one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Home


@pytest.fixture(scope="module")
def eng() -> Iterator[Home]:
    """An engine shared by the tests of one module; isolate tests by tenant."""
    h = Home()
    try:
        h.start()
        yield h
    finally:
        h.cleanup()


@pytest.fixture
def home() -> Iterator[Home]:
    """A private home with no engine running yet (for restarts, kills and tampering)."""
    h = Home()
    try:
        yield h
    finally:
        h.cleanup()
