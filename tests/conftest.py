"""Suite-wide options: ``--soak`` runs the tests marked ``soak`` (kill -9 and restart tests that wait on
real work) at full size; ``make test`` runs them too, at a smaller size that still crosses every path."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False,
                     help="run the soak-marked kill -9/restart tests at full size (slower)")


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """True under ``--soak``: a soak-marked test uses its full size."""
    return bool(request.config.getoption("--soak"))
