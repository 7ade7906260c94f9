"""Engine fixtures shared with tests/engine (a real engine on a short temporary home)."""

from tests.engine.conftest import eng  # noqa: F401  (module-scoped engine; see tests/engine/conftest.py)
