"""Fixtures for the CLI tests: the real ``musubi`` command against a real engine.

Each test module gets its own short ``MUSUBI_HOME`` under /tmp (Unix socket
paths are limited to 107 bytes) with an engine started through the CLI, and
stops it at the end, so no engine outlives the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Cli, cli_fixture


@pytest.fixture(scope="module")
def cli() -> Iterator[Cli]:
    """A running engine on a fresh short home, shared by the tests of one module."""
    with cli_fixture() as c:
        yield c


@pytest.fixture
def fresh_home() -> Iterator[Cli]:
    """A home of its own for tests that stop or break their engine."""
    with cli_fixture(start=False) as c:
        yield c
