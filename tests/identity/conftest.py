"""Fixtures: a TLS fake identity provider per test (tests/identity/fake_idp.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake_idp import FakeIdp


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[FakeIdp]:
    with FakeIdp(tmp_path) as fake:
        yield fake
