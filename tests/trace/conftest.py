from __future__ import annotations

from pathlib import Path

import pytest

# Fixtures shared with other suites: a CLI-started engine (cli), an engine process (eng),
# and the TUI's fake engine and config isolation (the Trace screen tests).
from tests.cli.conftest import cli  # noqa: F401
from tests.engine.conftest import eng  # noqa: F401
from tests.trace.fixture import build_repo
from tests.tui.conftest import _isolated_config, fake_api  # noqa: F401


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The fixture repository as a git work tree."""
    return build_repo(tmp_path / "repo", git=True)


@pytest.fixture
def plain_repo(tmp_path: Path) -> Path:
    """The same files without git: listed by the .gitignore-aware walk."""
    return build_repo(tmp_path / "plain", git=False)
