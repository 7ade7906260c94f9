"""Starting the engine (issue 9, item 9): a read-only home gets a clear message, and of two
concurrent starts exactly one says it started."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.client import start_engine
from core.errors import EngineUnavailable
from tests.cli.helpers import MUSUBI, base_env

from .helpers import Home


def test_two_concurrent_starts_one_started_one_joined(home: Home) -> None:
    procs = [
        subprocess.Popen([*MUSUBI, "engine", "start", "--json"], env=base_env(str(home.dir)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    answers = [json.loads(o) for o, _ in outs]
    assert sorted(a["started"] for a in answers) == [False, False, True], answers
    assert len({a["pid"] for a in answers}) == 1
    assert start_engine(home.paths)["started"] is False


@contextlib.contextmanager
def read_only(d: Path) -> Iterator[None]:
    """``d`` read-only: a read-only bind mount for root (who ignores modes), else mode 0500."""
    if os.geteuid() != 0:
        os.chmod(d, 0o500)
        try:
            yield
        finally:
            os.chmod(d, 0o700)
        return
    r = subprocess.run(["mount", "--bind", str(d), str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot make a read-only mount here")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(d)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(d)], check=True, capture_output=True)


@pytest.mark.parametrize("existing", [False, True])
def test_read_only_home_names_the_path_and_the_fix(home: Home, existing: bool) -> None:
    if existing:  # a home an engine ran in before
        home.start()
        home.stop()
    python = sys.executable
    with read_only(home.dir):
        r = subprocess.run([*MUSUBI, "engine", "start"], env=base_env(str(home.dir)),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r
        assert "bug in musubi" not in r.stderr and "Traceback" not in r.stderr + r.stdout
        assert "not writable" in r.stderr and str(home.dir) in r.stderr and "--home" in r.stderr, r.stderr
        rj = subprocess.run([*MUSUBI, "engine", "start", "--json"], env=base_env(str(home.dir)),
                            capture_output=True, text=True, timeout=120)
        assert json.loads(rj.stdout)["error"]["code"] == "home_not_writable"
        with pytest.raises(EngineUnavailable) as ei:
            start_engine(home.paths)
        assert ei.value.code == "home_not_writable"
        # The engine itself, started by hand, says the same instead of a traceback.
        e = subprocess.run([python, "-m", "core.engine", "--home", str(home.dir)], capture_output=True, text=True,
                           timeout=120, env=base_env(None) | {"PYTHONPATH": os.environ.get("PYTHONPATH", "")})
        assert e.returncode == 1 and "not writable" in e.stderr and "Traceback" not in e.stderr, e.stderr
    home.start()  # writable again: it starts
