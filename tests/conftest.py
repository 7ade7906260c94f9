"""Suite-wide options: ``--soak`` runs the tests marked ``soak`` (kill -9 and restart tests that wait on
real work) at full size; ``make test`` runs them too, at a smaller size that still crosses every path.

Parallel runs (pytest-xdist, ``make test`` uses ``-n 4 --dist loadgroup``): every test module with a
module-, class- or package-scoped fixture is one scheduling group, so its module-scoped engine starts
once, on one worker; the tests of other modules are spread over the workers one by one.  A test marked
``@pytest.mark.xdist_group("name")`` joins that group instead, which runs on one worker, in order: for
tests that must not overlap.  A test using a fixture of ``SHARED`` joins that fixture's group, so the
costly session fixture starts once in the whole run rather than once per worker."""

from __future__ import annotations

import pytest

# Session fixtures worth starting only once: their users share one xdist group (one worker).
SHARED = {"real_worker": "rag-real-model"}  # tests/rag/conftest.py: all-MiniLM-L6-v2 loaded in a search worker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", default=False,
                     help="run the soak-marked kill -9/restart tests at full size (slower)")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into scheduling groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, put each test without an ``xdist_group`` mark in its shared fixture's group,
    else in its module's group."""
    if not getattr(config.option, "loadgroup", False):  # set on xdist workers under --dist loadgroup (xdist/remote.py)
        return
    root = config.rootpath
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        shared = [SHARED[f] for f in getattr(item, "fixturenames", ()) if f in SHARED]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))
        elif _uses_module_fixture(item):
            module = item.path.relative_to(root) if item.path.is_relative_to(root) else item.path
            item.add_marker(pytest.mark.xdist_group(module.with_suffix("").as_posix().removeprefix("tests/")))
        # else: no group, so xdist spreads the module's tests over the workers (a long module of independent
        # tests, e.g. the tutorial replays, would otherwise be one worker's tail at the end of the run)


def _uses_module_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a module-, class- or package-scoped fixture (one its module's tests share)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return True  # not a plain test function: keep the module together, as before
    return any(fd.scope in ("module", "class", "package") for defs in info.name2fixturedefs.values() for fd in defs)


@pytest.fixture(autouse=True)
def _no_inherited_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # xdist workers inherit COLUMNS/LINES from the controller (80 when it has no terminal), a serial run does
    # not: in-process CLI renders (tui/output.py) would wrap at 80 on workers only.  Tests that want a width
    # set it themselves (tests/cli/helpers.py gives its subprocesses COLUMNS=200).
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    """True under ``--soak``: a soak-marked test uses its full size."""
    return bool(request.config.getoption("--soak"))
