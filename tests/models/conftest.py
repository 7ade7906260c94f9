"""Fixtures shared with tests/engine and tests/cli (a real engine on a short temporary home)."""

from tests.cli.conftest import cli  # noqa: F401  (module-scoped engine started through the CLI)
from tests.engine.conftest import eng  # noqa: F401  (module-scoped engine; see tests/engine/conftest.py)
from tests.tui.conftest import engine_home  # noqa: F401  (a real engine for the Cost screen test)
