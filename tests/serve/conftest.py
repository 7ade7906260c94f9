"""Fixtures: the engine tests' per-module engine (``eng``)."""

from tests.engine.conftest import eng

__all__ = ["eng"]
